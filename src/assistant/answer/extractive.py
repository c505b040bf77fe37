"""The default answerer: quotes the source sentences that answer the question, or refuses.

No language model writes anything, so nothing is said that the documents do not say.  The
decision, in the order it is made:

1. read the question (``reading``): its intent, the kind of answer it wants, what it is about;
2. an overview question gets the headline and most central sentences (``compose.overview``); a
   question about what a term means gets the sentence that spells it out or defines it;
3. otherwise every sentence of the retrieved chunks is measured against the question
   (``features``) and a fitted ranker (``scorer``) shortlists the best few;
4. the reader (``reader``, a MiniLM cross-encoder trained on our QA corpus) reads the question
   against each shortlisted sentence and gives each a chance that it holds the answer;
5. by the best chance and the thresholds chosen on dev documents (``reader.Decision``):
   quote the best sentence (and a second that reads nearly as well, and any sentence a quoted
   one leans on, or that names the company it calls "it"); or, unsure, quote the closest
   sentence as unconfirmed (a hedged answer); or, sure the documents are silent, refuse,
   showing the closest passages.
Without the reader's files (while the training script measures its data), the fitted judge
of ``scorer`` decides between answering and refusing instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.answer.collection import Collection
from assistant.answer.compose import REFUSAL, combine, hedge, overview, quote, refusal
from assistant.answer.features import FEATURES, features
from assistant.answer.reader import Decision, Reader, shipped_decision
from assistant.answer.reading import WHO, Reading, read
from assistant.answer.scorer import Scorer, default_scorer
from assistant.answer.types import Answer
from assistant.question import Question

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
        reader: Callable[[], Reader | None] | None = None,
        decision: Decision | None = None,
    ) -> None:
        self.collection = collection
        self.embeddings = embeddings
        self.max_sentences = max_sentences
        self._scorer = scorer
        self._reader = reader or (lambda: None)
        self._decision = decision

    @property
    def scorer(self) -> Scorer:
        return self._scorer or default_scorer()

    @property
    def decision(self) -> Decision:
        return self._decision or shipped_decision()

    def answer(self, question: Question, documents: Sequence[Document]) -> Answer:
        parts = question.parts()
        if len(parts) > 1:
            answers = [self.answer(part, documents) for part in parts]
            return combine(answers, [part.cleaned for part in parts])
        reading = read(question, self.collection)
        direct = self.direct(reading, documents)
        if direct is not None:
            return direct
        candidates, rows, asked = self.measure(question, documents, reading)
        reader = self._reader()
        if reader is None:
            return self.decide(reading, documents, candidates, rows, asked, self.scorer)
        picks = self.shortlist(rows)
        shortlisted = [candidates[i] for i in picks]
        texts = [self.collection.spans[p].text for p in shortlisted]
        chances = reader.probabilities(question.query, texts, rows[picks])
        prior = self.scorer.question_prior(asked)
        return self.conclude(reading, documents, shortlisted, chances, self.decision, prior)

    def shortlist(self, rows: np.ndarray, size: int | None = None) -> list[int]:
        """The rows the reader reads: the ranker's best ``size``, best first."""
        size = size or self.decision.shortlist
        if not len(rows):
            return []
        return [int(i) for i in np.argsort(-self.scorer.probability(rows))[:size]]

    def conclude(
        self,
        reading: Reading,
        documents: Sequence[Document],
        positions: list[int],
        chances: np.ndarray,
        decision: Decision,
        prior: float,
    ) -> Answer:
        """Answer, hedge or refuse by the reader's ``chances`` for ``positions`` and the
        question's ``prior`` (see the module docstring); the training script replays this with
        other decisions."""
        if not positions:
            return Answer(REFUSAL, refused=True)
        order = [int(i) for i in np.argsort(-chances)]
        best = float(chances[order[0]])
        sure = decision.confidence(best, prior)
        if sure < decision.hedge:
            return refusal(self.collection, documents, positions, chances)
        if sure < decision.answer:
            return hedge(self.collection, documents, positions, chances)
        chosen = [positions[order[0]]]
        for index in order[1 : self.max_sentences]:
            if chances[index] >= best - decision.margin:
                chosen.append(positions[index])
        return quote(self.collection, self._named(chosen, reading), best)

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
        if not scorer.answers(rows, probabilities, asked, reading.polar):
            return refusal(self.collection, documents, candidates, probabilities)
        confidence = scorer.confidence(rows, probabilities, reading.polar)
        order = [int(i) for i in np.argsort(-probabilities)]
        best = probabilities[order[0]]
        chosen = [candidates[order[0]]]
        for index in order[1 : self.max_sentences]:
            if probabilities[index] >= best - scorer.margin:
                chosen.append(candidates[index])
        return quote(self.collection, self._named(chosen, reading), confidence)

    def measure(
        self, question: Question, documents: Sequence[Document], reading: Reading | None = None
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The sentences of ``documents``, their ``FEATURES`` rows, and the question's own
        embedding: what the scorer weighs."""
        if reading is None:
            reading = read(question, self.collection)
        positions, ranks, chunk_scores = [], [], []
        for rank, document in enumerate(documents):
            source, start, end = (document.metadata[key] for key in ("source", "start", "end"))
            for position in self.collection.by_source.get(source, []):
                span = self.collection.spans[position]
                if span.start < end and start < span.end and position not in positions:
                    positions.append(position)
                    ranks.append(rank)
                    chunk_scores.append(float(document.metadata.get("dense", 0.0)))
        vector = np.asarray(self.embeddings.embed_query(question.query), dtype=np.float32)
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
