"""What is measured of each (question, sentence) pair, for the fitted scorer to weigh.

Every feature is general: similarity of meaning (MiniLM), shared words (same lemma, or a WordNet
relative), whether the thing asked about is there, and whether the *kind* of answer asked for
(a date, an amount, a name, a reason) is there and not merely restated from the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from assistant.answer.collection import Collection
from assistant.answer.reading import Reading

FEATURES = (
    "cosine",  # question and sentence embeddings
    "cosine_gap",  # how far below the best candidate's cosine
    "exact",  # weighted share of the question's words in the sentence, as written
    "related",  # ... or as a WordNet relative
    "with_context",  # ... in the sentence or the one it leans on
    "unknown",  # weighted share of the question's words the collection never uses
    "focus_here",  # the thing asked about is in the sentence
    "focus_unknown",  # the thing asked about is nowhere in the collection
    "typed",  # the question wants a kind of answer (a date, an amount, a name ...)
    "type_missing",  # ... and the sentence holds none that the question does not give itself
    "reason_missing",  # a "why" question, and the sentence gives no reason or purpose
    "verb_here",  # the question's main verb (or a relative) is in the sentence
    "headline",
    "boilerplate",  # "About the company", forward-looking statements, contacts
    "retrieval_rank",  # rank of the chunk it came from, 0 for the first
    "length",  # log of its length in characters: headings and fragments say little
    "place",  # where it stands in its document, 0 at the top to 1 at the bottom
    "related_and_typed",  # shared words in a sentence that also holds the wanted kind
    "chunk_cosine",  # the retrieved chunk around it, against the question
    "top_document",  # it is in the document retrieval ranked first
    "unknown_name",  # the question names something ("Europe") the collection never mentions
    "type_near_focus",  # a wanted answer within a few words of the thing asked about
)
DESIGNATION = re.compile(r"(?:[ivx]{1,4}|\d+[a-z]?|[a-z])$")  # "I", "IV", "2", "2b", "B"
NEAR = 6  # tokens: "said *Jane Doe*, *CEO* of Acme" puts the name beside what was asked


def _coverage(reading: Reading, found: frozenset[str] | set[str], collection: Collection):
    """Weighted shares of the question's words present as written, and with their kin."""
    exact = related = 0.0
    for word, weight in reading.words:
        if word in found:
            exact += weight
            related += weight
        elif collection.matches(word) & found:
            related += weight
    return exact / reading.total, related / reading.total


def features(
    reading: Reading,
    collection: Collection,
    candidates: Sequence[int],
    cosines: np.ndarray,
    ranks: Sequence[int],
    chunk_scores: Sequence[float],
    top_source: str,
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate sentence."""
    unknown = sum(w for word, w in reading.words if not collection.matches(word)) / reading.total
    focus_kin = collection.matches(reading.focus) if reading.focus else set()
    verb_kin = collection.matches(reading.verb) if reading.verb else set()
    best = float(cosines.max()) if len(cosines) else 0.0
    unknown_name = float(any(not collection.knows(name) for name in reading.given))
    rows = []
    for position, cosine, rank, chunk_cosine in zip(
        candidates, cosines.tolist(), ranks, chunk_scores, strict=True
    ):
        sentence = collection.read[position]
        lemmas = sentence.lemmas
        lead = collection.previous(position)
        around = lemmas | collection.read[lead].lemmas if lead is not None else lemmas
        exact, related = _coverage(reading, lemmas, collection)
        with_context = related if lead is None else _coverage(reading, around, collection)[1]
        typed = bool(reading.wanted)
        answers = [
            (start, end)
            for label, text, start, end in sentence.entities
            if label in reading.wanted and not _given(text, reading)
        ] + (_designated(sentence.tokens, reading.focus) if typed else [])
        holds = bool(answers)
        anchors = [i for i, lemma in enumerate(sentence.tokens) if lemma in (focus_kin or verb_kin)]
        near = any(start - NEAR <= i < end + NEAR for start, end in answers for i in anchors)
        rows.append(
            [
                cosine,
                cosine - best,
                exact,
                related,
                with_context,
                unknown,
                float(bool(focus_kin & around)) if reading.focus else 1.0,
                float(bool(reading.focus) and not focus_kin),
                float(typed),
                float(typed and not holds),
                float(reading.wants_reason and not sentence.reason),
                float(bool(verb_kin & lemmas)) if reading.verb else 1.0,
                float(sentence.headline),
                float(sentence.boilerplate),
                float(rank),
                float(np.log1p(len(collection.spans[position].text))),
                collection.place(position),
                related * float(typed and holds),
                chunk_cosine,
                float(collection.spans[position].source == top_source),
                unknown_name,
                float(near),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def _designated(tokens: Sequence[str], focus: str | None) -> list[tuple[int, int]]:
    """Where the thing asked about stands with its designation: "which phase" is answered by
    "Phase I" and "which series" by "Series B", whatever kind of entity the question's noun
    would otherwise want (WordNet files "phase" under time)."""
    return [
        (i, i + 2)
        for i, token in enumerate(tokens[:-1])
        if token == focus and DESIGNATION.match(tokens[i + 1])
    ]


def _given(entity: str, reading: Reading) -> bool:
    """The question itself names this ("when did *Acme* ..." is not answered by "Acme")."""
    words = [w for w in entity.lower().split() if w.isalnum()]
    return bool(words) and all(word in reading.given for word in words)
