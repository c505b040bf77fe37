"""What the answerer knows of a collection: each sentence read once, and the words it uses.

Read when a generation's snapshot is written (spaCy over each new sentence, WordNet over each
new word; rows of unchanged documents keep their reading), and stored in it, so a process opens
a collection of any size in milliseconds and a question costs one short parse, a few rows read
and dictionary lookups.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from assistant.answer.language import nlp, noun_category, relatives
from assistant.answer.store import SentenceDraft, SentenceRows, SentenceStore
from assistant.snapshot import ByPosition

logger = logging.getLogger(__name__)
ANALYSIS_VERSION = "6"  # bump when what is read of a sentence changes: snapshots are made anew
# A heading that opens the boilerplate every press release ends with: not news, rarely answers.
BOILERPLATE_HEADING = re.compile(
    r"^\s*(about\b|forward[- ]looking|safe harbou?r|media contact|investor contact|contacts?\b|"
    r"source\b|cautionary)",
    re.IGNORECASE,
)
ACRONYM = re.compile(r"((?:[\w'’-]+[\s-]+){1,8}?)\(([A-Za-z][A-Za-z0-9-]{1,9})\)")
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV", "X"}
# An amount written with its ISO 4217 code ("USD 1 million", "EUR 40m"), which spaCy's small
# English model seldom labels MONEY, so "how much ..." found no amount in the sentence.
CODED_AMOUNT = re.compile(
    r"\b(?:USD|EUR|GBP|JPY|CNY|RMB|CHF|CAD|AUD|NZD|HKD|SGD|INR|KRW|SEK|NOK|DKK|BRL|MXN|ZAR|TWD)"
    r"\s?\d[\d,.]*(?:\s?(?:thousand|million|billion|trillion|bn|[mkb])\b)?"
)


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


def _sentence(saved: str) -> Sentence:
    lemmas, entities, tokens, *flags = json.loads(saved)[:8]
    return Sentence(frozenset(lemmas), tuple(tuple(e) for e in entities), tuple(tokens), *flags)


class Readings(ByPosition[Sentence]):
    """Each sentence's reading by position, read from the snapshot when first asked for."""

    def __init__(self, snapshot: SentenceStore) -> None:
        self._snapshot = snapshot
        super().__init__(len(snapshot.sentences), self._read)

    def _read(self, position: int) -> Sentence:
        return _sentence(self._snapshot.reading(position))


@dataclass
class Collection:
    """Sentences of one index generation, their reading, and the collection's vocabulary."""

    snapshot: SentenceStore
    read: Readings
    frequency: dict[str, int]
    kin: dict[str, set[str]]  # a word WordNet relates to collection words -> those words
    acronyms: dict[str, int]  # acronym (lower case) -> the sentence that spells it out
    written: dict[str, str]  # acronym (lower case) -> as that sentence writes it ("iPSC")
    by_source: dict[str, range]
    spelling: frozenset[str]

    @classmethod
    def open(cls, snapshot: SentenceStore) -> Collection:
        """The collection as ``prepare`` stored it in ``snapshot``."""
        saved = snapshot.extra("answerer")
        by_source = {
            path: range(place.first_sentence, place.first_sentence + place.sentences)
            for path, place in snapshot.documents.items()
            if place.sentences
        }
        return cls(
            snapshot,
            Readings(snapshot),
            saved["frequency"],
            {word: set(words) for word, words in saved["kin"].items()},
            saved["acronyms"],
            saved["written"],
            by_source,
            snapshot.spelling,
        )

    @staticmethod
    def prepare(draft: SentenceDraft) -> None:
        """Read the draft's new sentences (rows copied from an earlier snapshot keep their
        reading), then store the collection's vocabulary."""
        new = draft.unread()
        docs = nlp().pipe((text for _, _, text in new), batch_size=64)
        readings = []
        for (position, _, text), doc, boilerplate, first in zip(
            new, docs, _boilerplate(new), _firsts(new), strict=True
        ):
            readings.append((position, json.dumps(_reading(doc, text, first, boilerplate))))
        draft.store_readings(readings)
        frequency: Counter = Counter()
        kinds: dict[str, str] = {}
        acronyms: dict[str, int] = {}
        written: dict[str, str] = {}
        for position, saved in draft.readings():
            reading = json.loads(saved)
            frequency.update(reading[0])
            for lemma, pos in reading[8]:
                kinds.setdefault(lemma, pos)
            for short in reading[9]:
                acronyms.setdefault(short.lower(), position)
                written.setdefault(short.lower(), short)
        known = draft.previous.extra("relatives") if draft.previous else {}
        related: dict[str, list[str]] = {}
        for lemma, pos in kinds.items():  # WordNet loads only for a word new to the collection
            key = f"{lemma} {pos}"
            related[key] = known[key] if key in known else sorted(relatives(lemma, pos))
        kin: dict[str, set[str]] = {}
        for key, words in related.items():
            for relative in words:
                kin.setdefault(relative, set()).add(key.split(" ")[0])
        draft.save("relatives", related)
        draft.save(
            "answerer",
            {
                "frequency": dict(frequency),
                "kin": {word: sorted(words) for word, words in kin.items()},
                "acronyms": acronyms,
                "written": written,
            },
        )

    @property
    def spans(self) -> SentenceRows:
        return self.snapshot.sentences

    @property
    def size(self) -> int:
        return len(self.snapshot.sentences)

    def knows(self, word: str) -> bool:
        return word in self.frequency or word in self.dotted

    def matches(self, word: str) -> set[str]:
        """The collection's words that stand for ``word``: itself (or its dotted spelling:
        "us" for "u.s."), or its WordNet kin."""
        found = {word} if word in self.frequency else set()
        found |= self.dotted.get(word, set())
        return found | self.kin.get(word, set())

    @cached_property
    def dotted(self) -> dict[str, set[str]]:
        """The collection's dotted abbreviations by their spelling without dots."""
        spelt: dict[str, set[str]] = {}
        for word in self.frequency:
            if "." in word.strip(".") and word.replace(".", "").isalpha():
                spelt.setdefault(word.replace(".", ""), set()).add(word)
        return spelt

    def idf(self, word: str) -> float:
        return math.log(1 + self.size / (1 + self.frequency.get(word, 0)))

    def vectors(self, positions: list[int]) -> np.ndarray:
        return np.asarray(self.snapshot.vectors[positions], dtype=np.float32)

    def containing(self, fragment: str) -> list[int]:
        """Sentences whose text holds ``fragment`` (ignoring case), in order."""
        return self.spans.containing(fragment)

    def place(self, position: int) -> float:
        """Where a sentence stands in its document: 0 at the top, 1 at the bottom."""
        positions = self.by_source[self.spans[position].source]
        return (position - positions[0]) / max(1, len(positions) - 1)

    def previous(self, position: int) -> int | None:
        """The sentence a leaning sentence leans on, in the same paragraph."""
        span = self.spans[position]
        if not self.read[position].leans_back or span.opens_paragraph or position == 0:
            return None
        if self.spans[position - 1].source != span.source:
            return None
        return position - 1


def _reading(doc, text: str, first: bool, boilerplate: bool) -> list:
    """What is stored of one sentence: the fields of ``Sentence``, then the (lemma, part of
    speech) pairs the collection's WordNet kin is built from, and the acronyms it defines."""
    lemmas, kinds = set(), {}
    for token in doc:
        if token.is_punct or token.is_space or token.is_stop:
            continue
        lemma = token.lemma_.lower()
        lemmas |= {lemma, token.lower_}
        kinds.setdefault(lemma, token.pos_)
    entities = _entities(doc, text)
    for entity in entities:
        lemmas.add(entity.text.lower())
    return [
        sorted(lemmas),
        [[e.label_, e.text, e.start, e.end] for e in entities],
        [t.lemma_.lower() for t in doc],
        first or _title_case(text),
        boilerplate,
        _leans_back(doc),
        _unnamed_subject(doc),
        _has_reason(doc),
        sorted(kinds.items()),
        _defined_acronyms(text),
    ]


def _entities(doc, text: str) -> list:
    """spaCy's entities, with amounts in a currency code as MONEY in place of what they
    overlap."""
    coded = [doc.char_span(*m.span(), label="MONEY", alignment_mode="expand")
             for m in CODED_AMOUNT.finditer(text)]  # fmt: skip
    coded = [span for span in coded if span is not None]
    kept = [e for e in doc.ents if not any(e.start < c.end and c.start < e.end for c in coded)]
    return sorted(kept + coded, key=lambda span: span.start)


def _firsts(rows: list[tuple[int, str, str]]) -> list[bool]:
    """Whether each row opens its document (rows are whole documents, in order)."""
    return [i == 0 or rows[i - 1][1] != source for i, (_, source, _) in enumerate(rows)]


def _title_case(text: str) -> bool:
    tokens = [t for t in text.split() if t[:1].isalpha()]
    return len(tokens) >= 3 and sum(t[:1].isupper() for t in tokens) > 0.6 * len(tokens)


def _boilerplate(rows: list[tuple[int, str, str]]) -> list[bool]:
    """Sentences from a boilerplate heading ("About ...", "Forward-Looking Statements") to the
    next paragraph that is not one, within a document (rows: position, source, text)."""
    flags, inside, current = [], False, None
    for _, source, text in rows:
        if source != current:
            inside, current = False, source
        short_line = len(text) < 80 and not text.rstrip().endswith(".")
        if short_line and BOILERPLATE_HEADING.match(text):
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
    """Acronyms spelled out in ``text``, as written: "acute myeloid leukemia (AML)" defines
    "AML", and "age-related macular degeneration (AMD)" defines "AMD" (a word may be skipped);
    "induced pluripotent stem cells (iPSCs)" defines "iPSC" (a plural read as its singular)."""
    found = []
    for match in ACRONYM.finditer(text):
        short = re.sub(r"(?<=[A-Z])s$", "", match.group(2))  # "iPSCs": a plural
        letters = re.sub(r"[^A-Za-z]", "", short).lower()
        if len(letters) < 2 or not any(c.isupper() for c in short):
            continue
        initials = [w[0].lower() for w in re.split(r"[\s-]+", match.group(1).strip()) if w]
        if initials and initials[-1] == letters[-1] and _subsequence(letters, initials):
            found.append(short)
    return found


def _subsequence(letters: str, initials: list[str]) -> bool:
    remaining = iter(initials)
    return all(any(letter == initial for initial in remaining) for letter in letters)
