"""The default answerer: picks source sentences that answer the question, or refuses.

No language model is involved, so nothing is said that the documents do not say: the answer is
made of whole source sentences (a trailing aside may be cut), each quoted at its exact offsets.
The hard part is knowing when *not* to answer.  The checks, each cheap:

1. what the question asks for must be known to the collection (after shorthand, spelling
   correction and everyday synonyms): a question about a CEO in a collection that never says
   "CEO" is unanswerable, however close its embedding lands.  Unknown words count by their
   rarity in English, so "someone" or "later" weigh nothing and "dose" weighs fully; a
   capitalised name the collection never mentions ("Europe") refuses at once;
2. the kind of answer asked for (a date, a number, money, a name, a place) must be in the
   chosen sentence, about the thing asked about: "how many patients will be enrolled" is not
   answered by a sentence that merely mentions patients;
3. the best sentence must be close enough, by embedding and by rarity-weighted word overlap.

The held-out set (evals/holdout.yaml) shows the limit of this: users' own words are often not
the document's, and then check 1 refuses questions the document does answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.documents import Document

from assistant.answer.question import (
    DATE,
    FRAME_WORDS,
    Expectation,
    expectation_of,
    focus_word,
    is_headline,
    normalised_words,
    plain_question,
    rarity,
    split_question,
    synonyms_of,
)
from assistant.answer.types import Answer, Citation
from assistant.index import SpanTable
from assistant.text import STOPWORDS, stem, terms, words

REFUSAL = "The documents do not say. I found no passage that answers this question."
MIN_SCORE = 0.45
LEXICAL_WEIGHT = 1.0
HEADLINE_PENALTY = 0.3
NEAR_TIE = 0.05
MIN_OVERLAP = 0.2
MIN_TYPED_OVERLAP = 0.6
MAX_UNKNOWN_SHARE = 0.34  # above this share of unknown words, refuse unless the overlap is
HARD_UNKNOWN_SHARE = 0.5  # near-complete (>= 0.9), and above this one refuse regardless
DEPENDENT_OPENERS = re.compile(
    r"^(the following|this|these|that|those|they|their|it|its|such|furthermore|moreover|also|"
    r"however|in addition|additionally|meanwhile|then)\b",
    re.IGNORECASE,
)
LEANING_WORDS = re.compile(r"\b(these|those|such|this|that)\s+\w+", re.IGNORECASE)
ABOUT_THE_DOCUMENT = re.compile(
    r"\b(press release|announcement|article|document|news|report)\b", re.IGNORECASE
)
FINITE_VERB = re.compile(
    r"\b(is|are|was|were|will|would|has|have|had|be|been|can|could|may|might|does|did)\b", re.I
)
AFTERWARDS = re.compile(r"\b(after|afterwards|next|then|subsequently)\b", re.IGNORECASE)
STANDS_FOR = re.compile(
    r"\b(stand|stands|short|abbreviation|abbreviate[sd]?|acronym|spelled out|mean|means)\b", re.I
)
ACRONYM = re.compile(r"((?:[\w'’-]+\s+){1,6}?)\(([A-Za-z][A-Z][A-Za-z]{0,8})\)")


def acronyms(texts: list[str]) -> dict[str, set[str]]:
    """Acronyms defined in the text ("spinal cord injury (SCI)", "stem cells (iPSCs)") mapped
    to the stems of the words they stand for."""
    found: dict[str, set[str]] = {}
    for text in texts:
        for match in ACRONYM.finditer(text):
            short = re.sub(r"(?<=[A-Z])s$", "", match.group(2))  # "iPSCs": a plural
            spelled = match.group(1).split()
            tail = spelled[-len(short) :]
            if len(tail) == len(short) and all(
                word[0].lower() == letter.lower() for word, letter in zip(tail, short, strict=True)
            ):
                found[short.lower()] = {stem(word.lower()) for word in tail}
    return found


@dataclass
class Reading:
    """A question as the answerer understands it."""

    question: str
    terms: list[frozenset[str]]
    unknown: list[str]
    weights: list[float]
    expectation: Expectation
    question_words: frozenset[str] = field(default_factory=frozenset)
    focus: str | None = None
    own: int = 0  # how many of ``terms`` come from the question itself, not earlier turns

    @property
    def total(self) -> float:
        return sum(self.weights) or 1.0

    def overlap(self, found: set[str]) -> float:
        covered = sum(w for t, w in zip(self.terms, self.weights, strict=True) if t & found)
        return covered / self.total


class ExtractiveAnswerer:
    """Answers from the sentences of the retrieved chunks; see the module docstring."""

    def __init__(self, sentences: SpanTable, max_sentences: int = 3) -> None:
        self.sentences = sentences
        self.max_sentences = max_sentences
        texts = [span.text for span in sentences.spans]
        self.acronyms = acronyms(texts)
        self.sentence_terms = [self._expanded(set(terms(text))) for text in texts]
        frequency = Counter(term for found in self.sentence_terms for term in found)
        count = max(len(texts), 1)
        self.idf = {term: math.log(1 + count / seen) for term, seen in frequency.items()}
        self.unknown_idf = math.log(1 + count)
        self.vocabulary = sorted({w for text in texts for w in words(text)} - STOPWORDS)
        self.stems = set(frequency)
        # Title-case lines ("FDA Approves ... Trial") restate; a sentence in the body says more.
        self.headline = [is_headline(text) for text in texts]
        self.by_source: dict[str, list[int]] = {}
        self.paragraph_of: list[int] = []
        self.paragraph_terms: list[set[str]] = []
        for position, span in enumerate(sentences.spans):
            self.by_source.setdefault(span.source, []).append(position)
            if (
                span.opens_paragraph
                or not position
                or sentences.spans[position - 1].source != span.source
            ):
                self.paragraph_terms.append(set())
            self.paragraph_of.append(len(self.paragraph_terms) - 1)
            self.paragraph_terms[-1] |= self.sentence_terms[position]

    def _expanded(self, found: set[str]) -> set[str]:
        for short, spelled in self.acronyms.items():
            if short in found:
                found |= spelled
            elif spelled <= found:
                found.add(short)
        return found

    def read(self, question: str, context: str = "") -> Reading:
        """Split ``question`` into terms the collection knows and words it does not."""
        question = plain_question(question)
        fixed = normalised_words(question, self.vocabulary, self.stems)
        found_terms, unknown = [], []
        for word in fixed:
            if word in STOPWORDS or word in FRAME_WORDS:
                continue
            alternatives = {stem(w) for w in (word, *synonyms_of(word))} & self.stems
            if alternatives:
                found_terms.append(frozenset(alternatives))
            elif not word.isdigit():
                unknown.append(word)
        weights = [max(self.idf[t] for t in term) for term in found_terms]
        own = len(found_terms)
        if context:
            # Earlier turns only steer, unless the question has no words of its own
            # ("What did they do after that?"): then they say what it is about.
            steer = 0.15 if own else 1.0
            for term in self.read(context).terms:
                if term not in found_terms:
                    found_terms.append(term)
                    weights.append(steer * max(self.idf[t] for t in term))
        return Reading(
            question,
            found_terms,
            unknown,
            weights,
            expectation_of(" ".join(fixed)),
            frozenset(fixed),
            focus_word(fixed),
            own,
        )

    def search_text(self, question: str) -> str:
        """The question as retrieval should see it: markup out, shorthand and slips fixed,
        and the collection's words for its everyday ones added (query expansion)."""
        plain = plain_question(question)
        fixed = normalised_words(plain, self.vocabulary, self.stems)
        expansions = [
            synonym
            for word in fixed
            for synonym in synonyms_of(word)
            if stem(synonym) in self.stems and synonym not in fixed
        ]
        return " ".join(fixed + list(dict.fromkeys(expansions))) or plain

    def answer(
        self,
        question: str,
        documents: Sequence[Document],
        query_vector: Sequence[float],
        context: str = "",
    ) -> Answer:
        """Answer ``question`` from ``documents`` (ranked chunks); ``context`` is earlier turns.

        A question in several parts ("where ..., and what ...?") is answered part by part; the
        parts the documents do not answer are named in the text, and cite nothing.
        """
        candidates = self._candidates(documents)
        plain = plain_question(question)
        parts = split_question(plain)
        chosen: list[int] = []
        unanswered: list[str] = []
        best = 0.0
        for i, part in enumerate(parts):
            found = self._choose(part, candidates, query_vector, context if i == 0 else parts[0])
            if found is None:
                unanswered.append(part.strip(" ,?"))
                continue
            best = max(best, found[1])
            chosen += [position for position in found[0] if position not in chosen]
        if not chosen:
            return Answer(REFUSAL, refused=True)
        asked = self.read(plain)
        answer = self._compose(chosen, best, asked)
        if unanswered:
            missing = "; ".join(f'"{part}"' for part in unanswered)
            answer = Answer(
                f"{answer.text} The documents do not answer {missing}.", answer.citations
            )
        return answer

    def _choose(
        self, question: str, candidates: list[int], query_vector: Sequence[float], context: str
    ) -> tuple[list[int], float] | None:
        """The sentences answering one question, with the best score; None to refuse."""
        reading = self.read(question, context)
        if ABOUT_THE_DOCUMENT.search(reading.question) and reading.expectation.kind == "date":
            return self._dateline(candidates)
        if STANDS_FOR.search(reading.question):
            defined = [a for a in self.acronyms if a in reading.question_words]
            if defined:
                return self._definition(defined[0])
        focus_unknown = reading.focus in reading.unknown and rarity(reading.focus) >= 0.5
        if not reading.terms or focus_unknown or self._names_unknown(reading):
            return None
        typed = reading.expectation.kind in ("date", "money", "count", "who")
        fitting = [
            item
            for item in self.score(reading, candidates, query_vector)
            if item[3] and (not typed or self._about_the_subject(item[2], reading))
        ]
        if not fitting:
            return None
        score, overlap, _, _ = fitting[0]
        unknown_weight = self.unknown_idf * sum(rarity(word) for word in reading.unknown)
        unknown_share = unknown_weight / (unknown_weight + reading.total)
        if (
            score < MIN_SCORE
            or overlap < (MIN_TYPED_OVERLAP if typed else MIN_OVERLAP)
            or (
                unknown_share > MAX_UNKNOWN_SHARE
                and (overlap < 0.9 or unknown_share > HARD_UNKNOWN_SHARE)
            )
        ):
            return None
        chosen = self._select(reading, fitting)
        successor = chosen[0] + 1
        if (
            AFTERWARDS.search(reading.question)
            and successor < len(self.sentences.spans)
            and self._lead(successor) == chosen[0]
        ):
            chosen[0] = successor  # "what happened after X": the sentence that follows X
        return chosen, score

    def score(
        self, reading: Reading, candidates: list[int], query_vector: Sequence[float]
    ) -> list[tuple[float, float, int, bool]]:
        """(score, overlap, sentence, fits the expected kind), best first."""
        if not candidates:
            return []
        dense = self.sentences.vectors[candidates] @ np.asarray(query_vector, dtype=np.float32)
        similarity = dict(zip(candidates, dense.tolist(), strict=True))
        scored = []
        for position in candidates:
            lead = self._lead(position)
            found = self._terms_with_lead(position)
            own = similarity[position]
            if lead is not None and lead in similarity:
                own = max(own, similarity[lead])
            overlap = reading.overlap(found)
            fits = reading.expectation.met_by(self._with_lead(position), reading.question_words)
            penalty = HEADLINE_PENALTY if self.headline[position] else 0.0
            scored.append((own + LEXICAL_WEIGHT * overlap - penalty, overlap, position, fits))
        # On a tie, a sentence that stands alone beats one that leans on it.
        standalone = {p: reading.overlap(self.sentence_terms[p]) for p in candidates}
        scored.sort(key=lambda item: (round(item[0], 6), standalone[item[2]]), reverse=True)
        return scored

    def _select(self, reading: Reading, fitting: list[tuple[float, float, int, bool]]) -> list[int]:
        """The best sentence, then others that cover question terms it leaves out; a second
        sentence scoring within a hair of the best is shown too, rather than guessed between."""
        best_score, _, best, _ = fitting[0]
        chosen, covered = [best], set(self._terms_with_lead(best))
        for score, _, position, _ in fitting[1:]:
            if len(chosen) == self.max_sentences:
                break
            found = self._terms_with_lead(position)
            gain = sum(
                w
                for t, w in zip(reading.terms, reading.weights, strict=True)
                if t & found and not t & covered
            )
            near_tie = len(chosen) == 1 and score >= best_score - NEAR_TIE
            if (gain >= 0.15 * reading.total and score >= best_score - 0.35) or near_tie:
                chosen.append(position)
                covered |= found
        return chosen

    @staticmethod
    def _names_unknown(reading: Reading) -> bool:
        """The question names something (a capitalised word mid-sentence: "Australia",
        "Europe") that the collection never mentions: whatever else matches, it is not this."""
        names = {word.lower() for word in re.findall(r"(?<=[\w,;:] )[A-Z][\w-]+", reading.question)}
        return bool(names & set(reading.unknown))

    def _about_the_subject(self, position: int, reading: Reading) -> bool:
        """A date, number or amount answers only if what it is about is there too: each of
        the question's own terms in the sentence, the one it leans on, or its paragraph
        ("how much will the therapy cost" is not answered by what the injury costs)."""
        around = self._terms_with_lead(position) | self.paragraph_terms[self.paragraph_of[position]]
        return all(term & around for term in reading.terms[: reading.own or len(reading.terms)])

    def _candidates(self, documents: Sequence[Document]) -> list[int]:
        positions: list[int] = []
        for document in documents:
            source, start, end = (document.metadata[key] for key in ("source", "start", "end"))
            for position in self.by_source.get(source, []):
                span = self.sentences.spans[position]
                if span.start < end and start < span.end and position not in positions:
                    positions.append(position)
        return positions

    def _definition(self, acronym: str) -> tuple[list[int], float] | None:
        """The sentence that spells out ``acronym``, wherever it is in the collection."""
        pattern = re.compile(rf"\({re.escape(acronym)}s?\)", re.IGNORECASE)
        for position, span in enumerate(self.sentences.spans):
            if pattern.search(span.text):
                return [position], 1.0
        return None

    def _dateline(self, candidates: list[int]) -> tuple[list[int], float] | None:
        """When a document is dated by a line holding only a date, that line answers."""
        for position in sorted(candidates):
            span = self.sentences.spans[position]
            if span.opens_paragraph and len(span.text) < 40 and DATE.search(span.text):
                return [position], 1.0
        return None

    def _lead(self, position: int) -> int | None:
        """The sentence before ``position`` when this one leans on it ("They ...")."""
        span = self.sentences.spans[position]
        if span.opens_paragraph or position == 0:
            return None
        opening = " ".join(span.text.split()[:8])
        if not (DEPENDENT_OPENERS.match(span.text) or LEANING_WORDS.search(opening)):
            return None
        return position - 1

    def _terms_with_lead(self, position: int) -> set[str]:
        lead = self._lead(position)
        own = self.sentence_terms[position]
        return own if lead is None else own | self.sentence_terms[lead]

    def _with_lead(self, position: int) -> str:
        lead = self._lead(position)
        text = self.sentences.spans[position].text
        return text if lead is None else f"{self.sentences.spans[lead].text} {text}"

    def _trimmed_end(self, position: int, asked: Reading) -> int:
        """Where to end the quote of a chosen sentence: before a trailing aside
        (", recognized for ...") that holds none of the question's words nor the kind of
        answer it wants; the quote stays an exact prefix of the sentence."""
        span = self.sentences.spans[position]
        comma = span.text.rfind(", ")
        if comma < 0.4 * len(span.text):
            return span.end
        tail = span.text[comma + 2 :]
        if re.match(r"(and|or|but|nor|etc)\b", tail):  # the end of a list, not an aside
            return span.end
        if not FINITE_VERB.search(span.text[:comma]):  # the head is no clause: keep it all
            return span.end
        tail_terms = self._expanded(set(terms(tail)))
        if any(term & tail_terms for term in asked.terms) or (
            asked.expectation.kind != "any" and asked.expectation.met_by(tail)
        ):
            return span.end
        return span.start + comma

    def _compose(self, chosen: list[int], score: float, asked: Reading | None = None) -> Answer:
        ordered: list[int] = []
        for position in chosen:
            for needed in (self._lead(position), position):
                if needed is not None and needed not in ordered:
                    ordered.append(needed)
        ordered.sort(key=lambda p: (self.sentences.spans[p].source, self.sentences.spans[p].start))
        pieces, citations = [], []
        for n, position in enumerate(ordered, start=1):
            span = self.sentences.spans[position]
            end = self._trimmed_end(position, asked) if asked and position in chosen else span.end
            text = span.text[: end - span.start]
            citations.append(Citation(n, span.source, span.start, end, text, round(score, 4)))
            body, stop = (text[:-1], text[-1]) if text[-1] in ".!?" else (text, ".")
            pieces.append(f"{body} [{n}]{stop}")
        return Answer(" ".join(pieces), citations)
