"""Words as the lexical side of search sees them: lower-cased, stop words out, stemmed.

BM25 retrieval and the answerer's word overlap must agree on what a word is, so both use this.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import cache

from bm25s.stopwords import STOPWORDS_EN_PLUS

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(STOPWORDS_EN_PLUS)


_per_thread = threading.local()


def _stemmer():
    """One Snowball stemmer per thread: PyStemmer's must not be called concurrently."""
    if not hasattr(_per_thread, "stemmer"):
        import Stemmer

        _per_thread.stemmer = Stemmer.Stemmer("english")
    return _per_thread.stemmer


ABBREVIATED = re.compile(r"\b([A-Z])\.([A-Z])\.")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric runs of two or more characters ("U.S." counts as "us")."""
    text = ABBREVIATED.sub(r"\1\2", text)
    return [word for word in WORD.findall(text.lower()) if len(word) > 1]


def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def terms(text: str) -> list[str]:
    """The stems of the content words of ``text``, in order."""
    return [stem(word) for word in words(text) if word not in STOPWORDS]


# How people type in a chat box (general English, not any document's words).
SHORTHAND = {
    "u": "you", "r": "are", "ur": "your", "wat": "what", "wot": "what", "wut": "what",
    "frm": "from", "abt": "about", "b4": "before", "w": "with", "hw": "how", "wen": "when",
    "whn": "when", "wher": "where", "whr": "where", "nd": "and", "n": "and", "thru": "through",
    "wich": "which", "teh": "the", "kinda": "kind of", "gonna": "going to", "wanna": "want to",
    "cuz": "because", "bc": "because", "ppl": "people", "yr": "year", "yrs": "years",
    "approx": "about", "whos": "who is", "whats": "what is", "wheres": "where is",
    "hows": "how is", "whens": "when is", "pls": "please", "plz": "please", "thx": "thanks",
    "info": "information", "co": "company", "mgmt": "management", "govt": "government",
}  # fmt: skip
INSTRUCTION = re.compile(
    r"^\s*(ignore|disregard|forget|pretend|you are|you're|act as|system\s*:|assistant\s*:|"
    r"from now on|do not|don't|never|always)\b",
    re.IGNORECASE,
)


def spelling_words(texts: Sequence[str]) -> frozenset[str]:
    """The words of ``texts`` that a keyboard slip may be corrected to (four letters or more).

    Retrieval and the answerer both correct questions against this, from the same text, so
    they build the same query and the question is embedded once."""
    return frozenset(w for text in texts for w in re.findall(r"[a-z]{4,}", text.lower()))


def plain_question(question: str) -> str:
    """The question itself: markup removed, injected instructions set aside.

    "Ignore all previous instructions. In which year ...?" is answered as "In which year ...?";
    text with no question in it beside the instructions is kept whole (and then refused).
    """
    if "<" in question:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(question, "html.parser")
        for hidden in soup(["script", "style"]):
            hidden.decompose()
        question = soup.get_text(" ")
    parts = [part for part in re.split(r"(?<=[.!?;])\s+|\s*--\s*", question.strip()) if part]
    if len(parts) > 1:
        asked = [part for part in parts if part.endswith("?") and not INSTRUCTION.match(part)]
        if asked:
            return " ".join(asked)
    return question


RARE_ZIPF = 3.5  # only words rarer than this in English (per billion words: ~3) may be slips
NOT_ENGLISH_ZIPF = 2.0  # rarer than this: not an English word at all
COMMONER = 1.0  # a rare word is a slip of a collection word ten times commoner


@cache
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


def corrected(question: str, vocabulary: frozenset[str]) -> str:
    """Shorthand expanded, and a slip of the keyboard replaced by the collection word one edit
    away (two for long words): "hosptial" -> "hospital".  A rare English word counts as a slip
    too when the collection's word is much commoner ("devise" -> "device", "hart" -> "heart");
    a common word is never changed ("cost" stays, whatever the collection says)."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    out = []
    for token in re.findall(r"[\w'’.-]+|[^\w\s]", question):
        lowered = token.lower()
        if lowered in SHORTHAND:
            out.append(SHORTHAND[lowered])
            continue
        own = zipf(lowered) if token.isalpha() else 9.0
        if len(token) >= 4 and token.islower() and lowered not in vocabulary and own < RARE_ZIPF:
            allowed = 2 if len(token) >= 8 else 1
            near = process.extract(
                lowered, vocabulary, scorer=OSA.distance, score_cutoff=allowed, limit=None
            )
            # The nearest, then the commonest in English ("modles": "models", not "modes"),
            # then the first alphabetically: never the set's order, which differs by process.
            match = min(near, key=lambda m: (m[1], -zipf(m[0]), m[0]), default=None)
            if match and (own < NOT_ENGLISH_ZIPF or zipf(match[0]) >= own + COMMONER):
                token = match[0]
        out.append(token)
    return re.sub(r"\s+([?.!,;:])", r"\1", " ".join(out))


FOLLOW_UP = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her)\b", re.I)


def follow_up_context(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The question before, when this one leans on it ("When did *it* start?") or is too short
    to stand alone; otherwise nothing."""
    if history and (FOLLOW_UP.search(question) or len(question.split()) <= 3):
        return str(history[-1][0])
    return ""
