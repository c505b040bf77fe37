"""What the answerer knows of a collection: each sentence read once, and the words it uses.

Built once per index generation from the sentence spans (spaCy over every sentence, WordNet over
every word the collection uses), so a question costs one short parse and dictionary lookups.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answer.language import nlp, noun_category, relatives
from assistant.index import SpanTable
from assistant.text import spelling_words

logger = logging.getLogger(__name__)
ANALYSIS_VERSION = "1"  # bump when what is read of a sentence changes: saved readings are redone
# A heading that opens the boilerplate every press release ends with: not news, rarely answers.
BOILERPLATE_HEADING = re.compile(
    r"^\s*(about\b|forward[- ]looking|safe harbou?r|media contact|investor contact|contacts?\b|"
    r"source\b|cautionary)",
    re.IGNORECASE,
)
ACRONYM = re.compile(r"((?:[\w'’-]+[\s-]+){1,8}?)\(([A-Za-z][A-Za-z0-9-]{1,9})\)")
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV", "X"}


@dataclass(frozen=True)
class Sentence:
    """One sentence as the answerer reads it."""

    lemmas: frozenset[str]
    entities: tuple[tuple[str, str, int, int], ...]  # (label, text, first token, end token)
    tokens: tuple[str, ...]  # each token's lemma, lower case, in order
    headline: bool
    boilerplate: bool
    leans_back: bool  # opens with a word pointing at the sentence before ("They", "This ...")
    subject_is_pronoun: bool  # its subject is "it", "they" or "the company": no name given
    reason: bool  # holds a reason or purpose clause ("because", "to ...", "so that")


@dataclass
class Collection:
    """Sentences of one index generation, their reading, and the collection's vocabulary."""

    sentences: SpanTable
    read: list[Sentence]
    frequency: Counter
    kin: dict[str, set[str]]  # a word WordNet relates to collection words -> those words
    acronyms: dict[str, int]  # acronym (lower case) -> the sentence that spells it out
    by_source: dict[str, list[int]] = field(default_factory=dict)
    spelling: frozenset[str] = frozenset()

    @classmethod
    def open(cls, sentences: SpanTable, cache: Path | None = None) -> Collection:
        """The collection read from ``cache`` when it holds these sentences' reading, else
        built (spaCy over every sentence, WordNet over every word) and saved there, so a new
        process on an unchanged index needs neither."""
        texts = [span.text for span in sentences.spans]
        key = hashlib.sha256("\x00".join([ANALYSIS_VERSION, *texts]).encode()).hexdigest()
        if cache is not None and cache.exists():
            try:
                saved = json.loads(cache.read_text(encoding="utf-8"))
                if saved.get("key") == key:
                    return cls._assemble(sentences, saved)
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                logger.warning("the answerer's cache %s is unreadable: reading anew", cache)
        built = cls.build(sentences)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                for old in cache.parent.glob("*.json"):
                    old.unlink(missing_ok=True)  # the reading of generations no longer served
                partial = cache.with_name(f"{cache.name}.{os.getpid()}")
                partial.write_text(json.dumps({"key": key, **built._saved()}), encoding="utf-8")
                partial.replace(cache)
            except OSError as error:  # a read-only index still answers, just opens slower
                logger.warning("could not save the answerer's reading in %s: %s", cache, error)
        return built

    def _saved(self) -> dict:
        return {
            "read": [
                [sorted(r.lemmas), [list(e) for e in r.entities], list(r.tokens), r.headline,
                 r.boilerplate, r.leans_back, r.subject_is_pronoun, r.reason]
                for r in self.read
            ],
            "kin": {word: sorted(words) for word, words in self.kin.items()},
            "acronyms": self.acronyms,
        }  # fmt: skip

    @classmethod
    def _assemble(cls, sentences: SpanTable, saved: dict) -> Collection:
        read = [
            Sentence(frozenset(lemmas), tuple(tuple(e) for e in entities), tuple(tokens), *flags)
            for lemmas, entities, tokens, *flags in saved["read"]
        ]
        if len(read) != len(sentences.spans):
            raise IndexError("the saved reading is of other sentences")
        return cls._with_vocabulary(
            sentences,
            read,
            {word: set(words) for word, words in saved["kin"].items()},
            {short: int(position) for short, position in saved["acronyms"].items()},
        )

    @classmethod
    def _with_vocabulary(cls, sentences, read, kin, acronyms) -> Collection:
        by_source: dict[str, list[int]] = {}
        for position, span in enumerate(sentences.spans):
            by_source.setdefault(span.source, []).append(position)
        frequency: Counter = Counter()
        for sentence in read:
            frequency.update(sentence.lemmas)
        spelling = spelling_words([span.text for span in sentences.spans])
        return cls(sentences, read, frequency, kin, acronyms, by_source, spelling)

    @classmethod
    def build(cls, sentences: SpanTable) -> Collection:
        texts = [span.text for span in sentences.spans]
        docs = list(nlp().pipe(texts, batch_size=64))
        spans = sentences.spans
        boiler = _boilerplate(sentences)
        read, kinds = [], {}
        for position, doc in enumerate(docs):
            lemmas = set()
            for token in doc:
                if token.is_punct or token.is_space or token.is_stop:
                    continue
                lemma = token.lemma_.lower()
                lemmas |= {lemma, token.lower_}
                kinds.setdefault(lemma, token.pos_)
            for entity in doc.ents:
                lemmas.add(entity.text.lower())
            first = position == 0 or spans[position - 1].source != spans[position].source
            read.append(
                Sentence(
                    frozenset(lemmas),
                    tuple((e.label_, e.text, e.start, e.end) for e in doc.ents),
                    tuple(t.lemma_.lower() for t in doc),
                    first or _title_case(texts[position]),
                    boiler[position],
                    _leans_back(doc),
                    _unnamed_subject(doc),
                    _has_reason(doc),
                )
            )
        kin: dict[str, set[str]] = {}
        for lemma, pos in kinds.items():
            for relative in relatives(lemma, pos):
                kin.setdefault(relative, set()).add(lemma)
        acronyms = {}
        for position, text in enumerate(texts):
            for short in _defined_acronyms(text):
                acronyms.setdefault(short, position)
        return cls._with_vocabulary(sentences, read, kin, acronyms)

    @property
    def size(self) -> int:
        return len(self.read)

    def knows(self, word: str) -> bool:
        return word in self.frequency

    def matches(self, word: str) -> set[str]:
        """The collection's words that stand for ``word``: itself, or its WordNet kin."""
        found = {word} if word in self.frequency else set()
        return found | self.kin.get(word, set())

    def idf(self, word: str) -> float:
        return math.log(1 + self.size / (1 + self.frequency.get(word, 0)))

    def vectors(self, positions: list[int]) -> np.ndarray:
        return self.sentences.vectors[positions]

    def place(self, position: int) -> float:
        """Where a sentence stands in its document: 0 at the top, 1 at the bottom."""
        positions = self.by_source[self.sentences.spans[position].source]
        return (position - positions[0]) / max(1, len(positions) - 1)

    def previous(self, position: int) -> int | None:
        """The sentence a leaning sentence leans on, in the same paragraph."""
        span = self.sentences.spans[position]
        if not self.read[position].leans_back or span.opens_paragraph or position == 0:
            return None
        if self.sentences.spans[position - 1].source != span.source:
            return None
        return position - 1


def _title_case(text: str) -> bool:
    tokens = [t for t in text.split() if t[:1].isalpha()]
    return len(tokens) >= 3 and sum(t[:1].isupper() for t in tokens) > 0.6 * len(tokens)


def _boilerplate(sentences: SpanTable) -> list[bool]:
    """Sentences from a boilerplate heading ("About ...", "Forward-Looking Statements") to the
    next paragraph that is not one, within a document."""
    flags, inside, source = [], False, None
    for span in sentences.spans:
        if span.source != source:
            inside, source = False, span.source
        short_line = len(span.text) < 80 and not span.text.rstrip().endswith(".")
        if short_line and BOILERPLATE_HEADING.match(span.text):
            inside = True
        flags.append(inside)
    return flags


def _leans_back(doc) -> bool:
    """It opens with a word pointing back ("This", "They", "However, ...") or its subject is a
    pronoun standing for something named before ("The following year, *they* ...")."""
    first = next((t for t in doc if not t.is_punct), None)
    if first is None:
        return False
    if first.pos_ == "PRON" and first.lower_ not in ("i", "we", "you"):
        return True
    if first.lower_ in ("this", "these", "that", "those", "such") or first.dep_ == "cc":
        return True
    return any(
        t.dep_ in ("nsubj", "nsubjpass")
        and t.head.dep_ == "ROOT"
        and t.lower_ in ("it", "they", "he", "she", "this", "these", "those")
        for t in doc
    )


def _unnamed_subject(doc) -> bool:
    """Its subject is a pronoun ("it", "they") or "the company" (a noun for an organisation,
    by WordNet's category), so the sentence alone does not say who."""
    for token in doc:
        if token.dep_ in ("nsubj", "nsubjpass") and token.head.dep_ == "ROOT":
            if token.pos_ == "PRON":
                return token.lower_ not in ("i", "we", "you")
            the = any(child.lower_ == "the" for child in token.children)
            return token.pos_ == "NOUN" and the and noun_category(token.lemma_) == "noun.group"
    return False


def _has_reason(doc) -> bool:
    """A reason or purpose clause: "because ...", "so that ...", "due to ...", "(in order) to"."""
    for token in doc:
        if token.dep_ == "mark" and token.lower_ in ("because", "since", "so", "as"):
            return True
        if token.lower_ == "to" and token.dep_ == "aux" and token.head.dep_ in ("advcl", "xcomp"):
            return True
        following = doc[token.i + 1].lower_ if token.i + 1 < len(doc) else ""
        if token.lower_ in ("due", "owing", "thanks") and following == "to":
            return True
    return False


def _defined_acronyms(text: str) -> list[str]:
    """Acronyms spelled out in ``text``: "acute myeloid leukemia (AML)" defines "aml", and
    "age-related macular degeneration (AMD)" defines "amd" (a word may be skipped)."""
    found = []
    for match in ACRONYM.finditer(text):
        short = re.sub(r"(?<=[A-Z])s$", "", match.group(2))  # "iPSCs": a plural
        letters = re.sub(r"[^A-Za-z]", "", short).lower()
        if len(letters) < 2 or not any(c.isupper() for c in short):
            continue
        initials = [w[0].lower() for w in re.split(r"[\s-]+", match.group(1).strip()) if w]
        if initials and initials[-1] == letters[-1] and _subsequence(letters, initials):
            found.append(short.lower())
    return found


def _subsequence(letters: str, initials: list[str]) -> bool:
    remaining = iter(initials)
    return all(any(letter == initial for initial in remaining) for letter in letters)
