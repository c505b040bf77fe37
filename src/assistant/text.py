"""Words as the lexical side of search sees them: lower-cased, stop words out, stemmed.

BM25 retrieval and the answerer's word overlap must agree on what a word is, so both use this.
"""

from __future__ import annotations

import re
import threading

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
