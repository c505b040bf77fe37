"""The default answerer: picks source sentences that answer the question, or refuses.

No language model is involved, so nothing is ever said that the documents do not say: the answer
is made of whole source sentences, each quoted at its exact offsets.  The hard part is knowing
when *not* to answer.  Three checks, each cheap:

1. the question's content words must be known to the collection (after typo correction and a
   small table of everyday synonyms): a question about a CEO in a collection that never says
   "CEO" is unanswerable, however close its embedding lands;
2. the kind of answer asked for (a date, a number, an amount of money, a name) must be in the
   chosen sentence: "how many patients will be enrolled" is not answered by a sentence that
   merely mentions patients;
3. the best sentence must be similar enough, by embedding and by word overlap.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document

from assistant.answer.types import Answer, Citation
from assistant.index import SpanTable
from assistant.text import STOPWORDS, stem, terms, words

REFUSAL = "The documents do not say. I found no passage that answers this question."

# Words that frame a question rather than say what it is about.
FRAME_WORDS = frozenset(
    [
        "tell",
        "know",
        "please",
        "info",
        "information",
        "explain",
        "describe",
        "give",
        "detail",
        "details",
        "mention",
        "mentioned",
        "say",
        "says",
        "said",
        "document",
        "documents",
        "press",
        "release",
        "article",
        "text",
        "announcement",
        "anything",
        "thing",
        "things",
        "something",
        "happen",
        "happened",
        "happening",
        "kind",
        "sort",
        "type",
        "like",
        "also",
        "get",
        "got",
        "much",
        "many",
        "long",
        "ever",
        "exactly",
        "specifically",
        "briefly",
        "summary",
        "summarize",
        "summarise",
        "main",
        "key",
        "currently",
        "according",
        "would",
        "could",
        "might",
        "may",
        "must",
        "shall",
        "can",
        "one",
    ]
)
# Everyday words a reader uses for what a document says otherwise; each maps to candidates.
SYNONYMS = {
    "ppl": ["people"],
    "folks": ["people"],
    "persons": ["people"],
    "individuals": ["people"],
    "sci": ["sci"],
    "pd": ["parkinson"],
    "yr": ["year"],
    "yrs": ["years"],
    "host": ["conducted"],
    "hosting": ["conducted"],
    "run": ["conducted"],
    "running": ["conducted"],
    "held": ["conducted"],
    "hold": ["conducted"],
    "perform": ["conducted"],
    "carry": ["conducted"],
    "center": ["hospital"],
    "centre": ["hospital"],
    "clinic": ["hospital"],
    "site": ["hospital"],
    "study": ["trial"],
    "studies": ["trials"],
    "test": ["evaluate"],
    "testing": ["evaluate"],
    "assess": ["evaluate"],
    "measure": ["evaluate"],
    "start": ["commence", "launched", "initiated"],
    "begin": ["commence", "launched"],
    "started": ["launched", "initiated"],
    "began": ["launched", "initiated"],
    "clear": ["approval"],
    "cleared": ["approval"],
    "clearance": ["approval"],
    "authorized": ["approval"],
    "authorised": ["approval"],
    "authorization": ["approval"],
    "greenlight": ["approval"],
    "permission": ["approval"],
    "ok": ["approval"],
    "approve": ["approval"],
    "approves": ["approval"],
    "approving": ["approval"],
    "illness": ["disease"],
    "illnesses": ["diseases"],
    "conditions": ["diseases"],
    "sickness": ["disease"],
    "disorder": ["disorders"],
    "firm": ["company"],
    "business": ["company"],
    "biotech": ["company"],
    "startup": ["company"],
    "funding": ["investment"],
    "funded": ["investment"],
    "investors": ["venture", "investment"],
    "money": ["investment"],
    "backers": ["investment"],
    "financing": ["investment"],
    "treatment": ["therapy"],
    "treatments": ["therapies"],
    "cure": ["therapy"],
    "paralyzed": ["paralysis"],
    "paralysed": ["paralysis"],
    "global": ["worldwide"],
    "globally": ["worldwide"],
    "world": ["worldwide"],
    "goal": ["aims"],
    "purpose": ["aims"],
    "objective": ["aims"],
    "aim": ["aims"],
    "effectiveness": ["efficacy"],
    "effective": ["efficacy"],
    "safe": ["safety"],
    "manufacture": ["manufacturing"],
    "make": ["produced"],
    "made": ["produced"],
    "regulator": ["administration"],
    "regulators": ["administration"],
    "agency": ["administration"],
    "agencies": ["administration"],
    "chinese": ["china"],
    "american": ["u"],
    "usa": ["u"],
    "america": ["u"],
    "expense": ["costs"],
    "expenses": ["costs"],
    "expensive": ["costs"],
    "young": ["young"],
    "age": ["aged"],
    "ages": ["aged"],
}
DEPENDENT_OPENERS = re.compile(
    r"^(the following|this|these|that|those|they|their|it|its|such|furthermore|moreover|also|"
    r"however|in addition|additionally|meanwhile|then|the company also)\b",
    re.IGNORECASE,
)
NUMBER = (
    r"(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
    r"dozen|hundred|thousand)(\s+(million|billion|thousand|hundred))?"
)
MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
DATE = re.compile(
    rf"\b(1[89]\d\d|20\d\d)\b|\b({MONTHS})\s+\d|\b\d{{1,2}}\s+({MONTHS})\b|"
    r"\b(past|next|following|previous|last|coming)\s+(\w+\s+)?(years?|months?|weeks?|days?)\b",
    re.IGNORECASE,
)
MONEY = re.compile(r"(\bUSD\b|\bEUR\b|\bRMB\b|[$€£¥]|\bdollars?\b|\byuan\b|\beuros?\b)", re.I)
PROPER_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’.-]*[A-Za-z]")


@dataclass(frozen=True)
class Expectation:
    """What kind of words an answer needs, read off the question."""

    kind: str
    focus: str | None = None

    def met_by(self, text: str) -> bool:
        if self.kind == "date":
            return bool(DATE.search(text))
        if self.kind == "money":
            return bool(MONEY.search(text))
        if self.kind == "count":
            if self.focus is None:
                return bool(re.search(rf"\b{NUMBER}\b", text, re.I))
            counted = rf"\b{NUMBER}\s+(?:(?!per\b)[\w-]+\s+){{0,2}}{re.escape(stem(self.focus))}"
            return bool(re.search(counted, text, re.I))
        if self.kind == "name":
            return bool(PROPER_NAME.search(text))
        return True


def expectation_of(question: str) -> Expectation:
    lowered = question.lower()
    if re.search(r"^\s*when\b|\b(what|which) (year|date|month|day)\b|\bhow long ago\b", lowered):
        return Expectation("date")
    if re.search(r"\b(cost|costs|price|priced|pricing|charge|fee|afford|pay)\b", lowered):
        return Expectation("money")
    if match := re.search(r"\bhow many\s+(?:\w+\s+)??(\w+)", lowered):
        focus = match.group(1)
        return Expectation("count", None if focus in STOPWORDS else focus)
    if re.search(r"\bhow much\b|\bnumber of\b|\bwhat (percentage|proportion|share)\b", lowered):
        return Expectation("count")
    if re.search(r"^\s*(who|whom|whose)\b|\bwhich (person|people)\b", lowered):
        return Expectation("name")
    return Expectation("any")


def plain_question(question: str) -> str:
    """The question's words, with markup and its scripts removed (they carry no meaning here)."""
    from bs4 import BeautifulSoup

    if "<" not in question:
        return question
    soup = BeautifulSoup(question, "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    return soup.get_text(" ")


class ExtractiveAnswerer:
    """Answers from the sentences of the retrieved chunks; see the module docstring."""

    def __init__(self, sentences: SpanTable, max_sentences: int = 3) -> None:
        self.sentences = sentences
        self.max_sentences = max_sentences
        self.sentence_terms = [set(terms(span.text)) for span in sentences.spans]
        frequency = Counter(term for found in self.sentence_terms for term in found)
        count = max(len(sentences.spans), 1)
        self.idf = {term: math.log(1 + count / seen) for term, seen in frequency.items()}
        self.unknown_idf = math.log(1 + count)
        self.vocabulary = sorted({word for span in sentences.spans for word in words(span.text)})
        self.stems = set(frequency)
        self.by_source: dict[str, list[int]] = {}
        for position, span in enumerate(sentences.spans):
            self.by_source.setdefault(span.source, []).append(position)

    # -- reading the question -------------------------------------------------------------

    def question_terms(self, question: str) -> tuple[list[str], list[str]]:
        """Stems the collection knows, and content words it does not know at all."""
        known, unknown = [], []
        for word in words(question):
            if word in STOPWORDS or word in FRAME_WORDS:
                continue
            candidates = [word, *SYNONYMS.get(word, [])]
            if len(word) >= 4:
                candidates += difflib.get_close_matches(word, self.vocabulary, n=1, cutoff=0.8)
            matched = [stem(candidate) for candidate in candidates if stem(candidate) in self.stems]
            if matched:
                known.append(matched[0])
            elif not word.isdigit():
                unknown.append(word)
        return known, unknown

    # -- answering ------------------------------------------------------------------------

    def answer(
        self,
        question: str,
        documents: Sequence[Document],
        query_vector: Sequence[float],
        context: str = "",
    ) -> Answer:
        """Answer ``question`` from ``documents`` (ranked chunks); ``context`` is earlier turns."""
        question = plain_question(question)
        known, unknown = self.question_terms(question)
        context_terms = set(self.question_terms(context)[0]) - set(known) if context else set()
        weights = {term: self.idf.get(term, self.unknown_idf) for term in known}
        unknown_weight = self.unknown_idf * len(unknown)
        total_weight = sum(weights.values()) + unknown_weight
        if not known or unknown_weight / total_weight > 0.34:
            return Answer(REFUSAL, refused=True)

        candidates = self._candidates(documents)
        if not candidates:
            return Answer(REFUSAL, refused=True)
        vector = np.asarray(query_vector, dtype=np.float32)
        dense = self.sentences.vectors[candidates] @ vector
        expectation = expectation_of(question)
        scored = []
        for position, similarity in zip(candidates, dense, strict=True):
            found = self.sentence_terms[position]
            overlap = sum(weights[t] for t in set(known) & found) / total_weight
            overlap += 0.1 * len(context_terms & found) / max(len(context_terms), 1)
            scored.append((float(similarity) + 0.6 * overlap, overlap, position))
        scored.sort(reverse=True)
        fitting = [item for item in scored if expectation.met_by(self._with_lead(item[2]))]
        if not fitting:
            return Answer(REFUSAL, refused=True)
        best_score, best_overlap, _ = fitting[0]
        if best_score < 0.45 or best_overlap < 0.2:
            return Answer(REFUSAL, refused=True)
        chosen = [p for s, o, p in fitting if s >= best_score - 0.08 and o >= 0.5 * best_overlap]
        return self._compose(chosen[: self.max_sentences], best_score)

    def _candidates(self, documents: Sequence[Document]) -> list[int]:
        positions: list[int] = []
        for document in documents:
            source, start, end = (document.metadata[key] for key in ("source", "start", "end"))
            for position in self.by_source.get(source, []):
                span = self.sentences.spans[position]
                if start <= span.start and span.end <= end and position not in positions:
                    positions.append(position)
        return positions

    def _lead(self, position: int) -> int | None:
        """The sentence before ``position`` when this one leans on it ("They ...")."""
        span = self.sentences.spans[position]
        if position == 0 or not DEPENDENT_OPENERS.match(span.text):
            return None
        before = self.sentences.spans[position - 1]
        return position - 1 if before.source == span.source else None

    def _with_lead(self, position: int) -> str:
        lead = self._lead(position)
        text = self.sentences.spans[position].text
        return text if lead is None else f"{self.sentences.spans[lead].text} {text}"

    def _compose(self, chosen: list[int], score: float) -> Answer:
        ordered: list[int] = []
        for position in chosen:
            lead = self._lead(position)
            for needed in (lead, position):
                if needed is not None and needed not in ordered:
                    ordered.append(needed)
        ordered.sort(key=lambda p: (self.sentences.spans[p].source, self.sentences.spans[p].start))
        pieces, citations = [], []
        for n, position in enumerate(ordered, start=1):
            span = self.sentences.spans[position]
            citations.append(
                Citation(n, span.source, span.start, span.end, span.text, round(score, 4))
            )
            body, end = (
                (span.text[:-1], span.text[-1]) if span.text[-1] in ".!?" else (span.text, ".")
            )
            pieces.append(f"{body} [{n}]{end}")
        return Answer(" ".join(pieces), citations)
