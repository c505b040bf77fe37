"""How well a source sentence supports a sentence an LLM wrote: the LLM answerer's citations.

An LLM marks a reply sentence with the chunk it drew on (``[2]``), but a chunk is some 800
characters; the reader wants the sentence that says it.  Each sentence of the marked chunk is
measured against the reply sentence as the extractive answerer measures a question against a
sentence (``features``: meaning, shared words and their kin, the thing talked about, its main
verb), and a sibling of its ranker, fitted on claim-sentence pairs rather than
question-sentence ones, gives the chance that the sentence supports the claim.  The best one is
cited; below ``threshold`` the reply sentence is weakly supported and flagged.

The model and threshold are data: ``python -m assistant.evals.fit_support`` fits them on the
``fit`` documents, chooses the threshold on the ``dev`` ones and writes ``support.json`` beside
this module (never edited by hand).  Only the features that say how a claim and a sentence
agree are weighed: those about retrieval (a chunk's rank, its score) or about which sentence
leads among candidates say nothing about whether one sentence says what another says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.answer.collection import Collection
from assistant.answer.compose import closest_passages
from assistant.answer.features import FEATURES, features
from assistant.answer.reading import read
from assistant.answer.scorer import Linear
from assistant.answer.types import MARKER, Passage
from assistant.question import Question

SUPPORT_FILE = Path(__file__).with_name("support.json")
SUPPORT_FEATURES = (
    "cosine",
    "exact",
    "related",
    "with_context",
    "unknown",
    "focus_here",
    "verb_here",
    "headline",
    "boilerplate",
    "length",
    "unknown_name",
)
SUPPORT_COLUMNS = [FEATURES.index(name) for name in SUPPORT_FEATURES]  # of a FEATURES row


@dataclass(frozen=True)
class SupportModel:
    """A logistic model over ``SUPPORT_FEATURES``; a claim whose best sentence scores below
    ``threshold`` is weakly supported."""

    linear: Linear
    threshold: float

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` hold every one of ``FEATURES``; only the support columns are weighed."""
        return self.linear(rows[:, SUPPORT_COLUMNS]) if len(rows) else np.zeros(0)

    def to_dict(self, **about: object) -> dict:
        return {
            "features": list(SUPPORT_FEATURES),
            "model": self.linear.to_dict(),
            "threshold": self.threshold,
            **about,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SupportModel:
        if tuple(data["features"]) != SUPPORT_FEATURES:
            raise ValueError(
                "support.json was fitted on other features: "
                "run python -m assistant.evals.fit_support"
            )
        return cls(Linear.from_dict(data["model"]), float(data["threshold"]))


@cache
def default_support_model() -> SupportModel:
    return SupportModel.from_dict(json.loads(SUPPORT_FILE.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Support:
    """The sentence of a chunk that best supports a claim, and how well (0 to 1)."""

    position: int
    score: float


class SupportMeasure:
    """Measures reply sentences against the sentences of one index generation's collection."""

    def __init__(
        self,
        collection: Collection,
        embeddings: Embeddings,
        model: SupportModel | None = None,
    ) -> None:
        self.collection = collection
        self.embeddings = embeddings
        self._model = model

    @property
    def model(self) -> SupportModel:
        return self._model or default_support_model()

    def within(self, document: Document) -> list[int]:
        """The collection's sentences that overlap a retrieved chunk, in document order."""
        source, start, end = (document.metadata[key] for key in ("source", "start", "end"))
        spans = self.collection.spans
        return [
            position
            for position in self.collection.by_source.get(source, ())
            if spans[position].start < end and start < spans[position].end
        ]

    def rows(self, claim: str, positions: Sequence[int]) -> np.ndarray:
        """``FEATURES`` rows of (``claim``, sentence) pairs, as the extractive answerer measures
        (question, sentence) ones; retrieval's columns are zero (no chunk rank applies)."""
        positions = list(positions)
        if not positions:
            return np.zeros((0, len(FEATURES)))
        claim = " ".join(MARKER.sub(" ", claim).split())
        reading = read(Question.read(claim, (), self.collection.spelling), self.collection)
        vector = np.asarray(self.embeddings.embed_query(claim), dtype=np.float32)
        cosines = self.collection.vectors(positions) @ vector
        zeros = [0] * len(positions)
        return features(reading, self.collection, positions, cosines, zeros, zeros, "")

    def best(self, claim: str, chunks: Sequence[Document]) -> list[Support | None]:
        """For each of ``chunks`` (retrieved chunks), its sentence that best supports ``claim``;
        None for a chunk that holds no sentence of this collection.  The claim is read and
        embedded once, however many chunks it marks."""
        within = [self.within(chunk) for chunk in chunks]
        positions = list(dict.fromkeys(p for found in within for p in found))
        probabilities = self.model.probability(self.rows(claim, positions))
        scores = dict(zip(positions, probabilities, strict=True))
        found: list[Support | None] = []
        for candidates in within:
            best = max(candidates, key=scores.__getitem__, default=None)
            found.append(None if best is None else Support(best, float(scores[best])))
        return found

    def weak(self, score: float) -> bool:
        return score < self.model.threshold

    def closest(self, question: str, documents: Sequence[Document]) -> list[Passage]:
        """The passages of ``documents`` that come closest to ``question``, shown beside a
        refusal as the extractive answerer shows them (never citations)."""
        positions = list(dict.fromkeys(p for d in documents for p in self.within(d)))
        scores = self.model.probability(self.rows(question, positions))
        return closest_passages(self.collection, documents, positions, scores)
