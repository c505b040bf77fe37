"""The default answerer: quotes the source sentences that answer the question, or refuses.

No language model writes anything, so nothing is said that the documents do not say.  The
decision, in the order it is made:

1. read the question (``reading``): its intent, the kind of answer it wants, what it is about;
2. an overview question gets the headline and most central sentences (``compose.overview``); a
   question about what a term means gets the sentence that spells it out or defines it;
3. otherwise every sentence of the retrieved chunks is measured against the question
   (``features``) and fitted models (``scorer``) rank them and say whether to answer at all;
4. not answering: refuse, showing the closest passages; answering: quote the best sentence
   (and a second that scores nearly as well, and any sentence a quoted one leans on, or that
   names the company it calls "it").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.answer.collection import Collection
from assistant.answer.compose import REFUSAL, combine, overview, quote, refusal
from assistant.answer.features import FEATURES, features
from assistant.answer.protocol import History
from assistant.answer.reading import WHO, Reading, read, split_question
from assistant.answer.scorer import Scorer, default_scorer
from assistant.answer.types import Answer
from assistant.text import follow_up_context, plain_question, question_query

__all__ = ["REFUSAL", "ExtractiveAnswerer"]

DEFINING = r"(?:\s*\(|,\s+(?:an?|the)\b|\s+(?:is|are|was)\s+(?:an?|the)\b|\s+(?:stands|refers)\b)"


class ExtractiveAnswerer:
    """Answers from the sentences of the retrieved chunks; see the module docstring."""

    name = "extractive"

    def __init__(
        self,
        collection: Collection,
        embeddings: Embeddings,
        max_sentences: int = 3,
        scorer: Scorer | None = None,
    ) -> None:
        self.collection = collection
        self.embeddings = embeddings
        self.max_sentences = max_sentences
        self._scorer = scorer

    @property
    def scorer(self) -> Scorer:
        return self._scorer or default_scorer()

    def answer(self, question: str, documents: Sequence[Document], history: History = ()) -> Answer:
        parts = split_question(plain_question(question))
        if len(parts) > 1:
            return combine([self.answer(part, documents, history) for part in parts], parts)
        context = follow_up_context(question, history)
        reading = read(question, self.collection, context)
        direct = self.direct(reading, documents)
        if direct is not None:
            return direct
        candidates, rows, asked = self.measure(question, documents, history, reading)
        return self.decide(reading, documents, candidates, rows, asked, self.scorer)

    def direct(self, reading: Reading, documents: Sequence[Document]) -> Answer | None:
        """The answer to a question the scorer need not weigh: an overview, or what a term
        the documents define means; None for every other question."""
        if reading.intent == "overview":
            return overview(self.collection, self._sources(documents, reading))
        if reading.intent == "definition" and (found := self._definition(reading)) is not None:
            return quote(self.collection, [found], 1.0)
        return None

    def decide(
        self,
        reading: Reading,
        documents: Sequence[Document],
        candidates: list[int],
        rows: np.ndarray,
        asked: np.ndarray,
        scorer: Scorer,
    ) -> Answer:
        """Refuse unless ``scorer.answers``; else quote the best sentence, and those within
        ``scorer.margin`` of it (the fitting script replays this with other thresholds)."""
        if not candidates:
            return Answer(REFUSAL, refused=True)
        probabilities = scorer.probability(rows)
        if not scorer.answers(rows, probabilities, asked):
            return refusal(self.collection, documents, candidates, probabilities)
        confidence = scorer.confidence(rows, probabilities)
        order = [int(i) for i in np.argsort(-probabilities)]
        best = probabilities[order[0]]
        chosen = [candidates[order[0]]]
        for index in order[1 : self.max_sentences]:
            if probabilities[index] >= best - scorer.margin:
                chosen.append(candidates[index])
        return quote(self.collection, self._named(chosen, reading), confidence)

    def measure(
        self,
        question: str,
        documents: Sequence[Document],
        history: History = (),
        reading: Reading | None = None,
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The sentences of ``documents``, their ``FEATURES`` rows, and the question's own
        embedding: what the scorer weighs."""
        if reading is None:
            reading = read(question, self.collection, follow_up_context(question, history))
        positions, ranks, chunk_scores = [], [], []
        for rank, document in enumerate(documents):
            source, start, end = (document.metadata[key] for key in ("source", "start", "end"))
            for position in self.collection.by_source.get(source, []):
                span = self.collection.spans[position]
                if span.start < end and start < span.end and position not in positions:
                    positions.append(position)
                    ranks.append(rank)
                    chunk_scores.append(float(document.metadata.get("dense", 0.0)))
        query = question_query(question, history, self.collection.spelling)
        vector = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        if not positions:
            return [], np.zeros((0, len(FEATURES))), vector
        cosines = self.collection.vectors(positions) @ vector
        top_source = documents[0].metadata["source"]
        rows = features(
            reading, self.collection, positions, cosines, ranks, chunk_scores, top_source
        )
        return positions, rows, vector

    def _sources(self, documents: Sequence[Document], reading: Reading) -> list[str]:
        """What an overview covers: the whole collection, unless the question names a subject
        (then the document retrieved first)."""
        sources = list(self.collection.by_source)
        if len(sources) > 1 and reading.words and documents:
            return [documents[0].metadata["source"]]
        return sources

    def _definition(self, reading: Reading) -> int | None:
        """The sentence that spells out an acronym, or says what a term is."""
        term = reading.term or ""
        for key in (term, re.sub(r"s$", "", term)):  # "iPSCs" is the plural of "iPSC"
            if key in self.collection.acronyms:
                return self.collection.acronyms[key]
        if not term:
            return None
        escaped = re.escape(term)
        patterns = (  # "CdTe, a ...", "CdTe is a ...", then "cadmium telluride (CdTe)"
            re.compile(rf"\b{escaped}s?{DEFINING}", re.IGNORECASE),
            re.compile(rf"\(\s*{escaped}s?\s*[),;]", re.IGNORECASE),
        )
        for pattern in patterns:
            for position in self.collection.containing(term):
                text = self.collection.spans[position].text
                if pattern.search(text) and not self.collection.read[position].headline:
                    return position
        return None

    def _named(self, chosen: list[int], reading: Reading) -> list[int]:
        """A who/which answer whose sentence says only "the company" or "it" brings the
        document's headline, which names it."""
        if not (reading.wanted & WHO or reading.intent == "name"):
            return chosen
        first = chosen[0]
        if not self.collection.read[first].subject_is_pronoun:
            return chosen
        source = self.collection.spans[first].source
        headline = self.collection.by_source[source][0]
        return chosen if headline in chosen else [headline, *chosen]
