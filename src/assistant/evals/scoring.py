"""Scoring one answer against its case, so every system is judged by the same rules.

Per case:

- facts: the answer is not refused and holds every fact (one alternative of each),
  case-insensitive, after ``[n]`` markers are removed and whitespace is collapsed.
- fact shown: every fact appears in the answer text or in its ``closest`` passages, so a
  refusal that still puts the fact in front of the reader is told apart from one that does not.
- outcome: the confusion cell (see ``OUTCOMES``).
- grounded citations: the quote equals the cited file's text at ``[start:end]`` (read from disk,
  like a reader checking it would).
- supported: the cited spans cover the supporting passage (whitespace gaps between cited spans
  count as covered) or the quotes hold all the facts.
- retrieval: a retrieved chunk is a hit when its span covers more than half of the supporting
  passage in the chunk's own source text; ``hit_rank`` is the first hit's 1-based rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answer.types import Answer
from assistant.evals.cases import Case, norm, read_source

HIT_COVERAGE = 0.5  # a chunk must cover more than this share of the supporting passage
OUTCOMES = (
    "answered_right",  # answerable, answered with every fact
    "hedged_right",  # ... in a hedged answer ("I could not confirm this ...")
    "answered_wrong",  # answerable, answered without every fact
    "hedged_wrong",
    "answered_unanswerable",  # to refuse, answered
    "hedged_unanswerable",  # to refuse, given a hedged answer: not refused
    "refused_right",  # to refuse, refused
    "refused_wrong",  # answerable, refused
)


@dataclass
class CaseResult:
    id: str
    kind: str
    question: str
    should_refuse: bool
    refused: bool
    answer: str
    source: str = ""
    brief: str = ""
    hedged: bool = False  # an answer the answerer said it could not confirm
    facts_ok: bool | None = None  # None for cases to refuse
    fact_shown: bool | None = None  # None for cases to refuse
    missing_facts: list[str] = field(default_factory=list)
    citations: int = 0
    grounded: int = 0
    supported: bool | None = None  # None unless an answerable case was answered
    hit_rank: int | None = None  # 1-based rank of the first hit; None: no hit or not measured
    retrieved: int | None = None  # chunks retrieved; None when retrieval was not measured
    latency_ms: float = 0.0
    chars: int = 0
    words: int = 0
    error: str | None = None
    cited: list[dict[str, Any]] = field(default_factory=list)  # each citation, with `grounded`
    retrieved_spans: list[list[int]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        if self.error or self.grounded != self.citations:
            return False
        if self.should_refuse:
            return self.refused
        return bool(self.facts_ok and self.supported)

    @property
    def outcome(self) -> str:
        """The confusion cell; a hedged answer is an answer, counted in its own cells."""
        answered = "hedged" if self.hedged else "answered"
        if self.should_refuse:
            return "refused_right" if self.refused else f"{answered}_unanswerable"
        if self.refused:
            return "refused_wrong"
        return f"{answered}_right" if self.facts_ok else f"{answered}_wrong"

    @property
    def right(self) -> bool:
        """Answerable and answered (hedged or not) with every fact, or to refuse and refused."""
        return self.outcome in ("answered_right", "hedged_right", "refused_right")


class Sources:
    """Source texts read from disk once per run, keyed by the path a citation names."""

    def __init__(self, corpus_dir: Path | None = None):
        self.corpus_dir = corpus_dir
        self.texts: dict[str, str | None] = {}

    def text(self, source: str) -> str | None:
        if source not in self.texts:
            candidates = [Path(source)]
            if self.corpus_dir is not None:
                candidates += [self.corpus_dir / source, self.corpus_dir / Path(source).name]
            found = next((p for p in candidates if p.is_file()), None)
            self.texts[source] = read_source(found) if found else None
        return self.texts[source]

    def spans(self, source: str, passage: str) -> list[tuple[int, int]]:
        text = self.text(source) or ""
        found, at = [], text.find(passage)
        while passage and at >= 0:
            found.append((at, at + len(passage)))
            at = text.find(passage, at + 1)
        return found


def score_case(
    case: Case,
    answer: Answer,
    retrieved: Sequence[Any] | None = None,
    latency_ms: float = 0.0,
    sources: Sources | None = None,
) -> CaseResult:
    """Score one answer (and, when given, the ranked chunks behind it) against its case."""
    sources = sources or Sources()
    result = CaseResult(
        case.id,
        case.kind,
        case.question,
        not case.answerable,
        answer.refused,
        answer.text,
        source=case.source,
        brief=case.brief,
        hedged=bool(getattr(answer, "hedged", False)),
        latency_ms=latency_ms,
    )
    for c in answer.citations:
        source_text = sources.text(c.source)
        grounded = source_text is not None and source_text[c.start : c.end] == c.quote
        grounded = grounded and 0 <= c.start <= c.end
        where = {"n": c.n, "source": c.source, "start": c.start, "end": c.end}
        result.cited.append({**where, "grounded": grounded})
    result.citations = len(result.cited)
    result.grounded = sum(c["grounded"] for c in result.cited)
    if not answer.refused:
        result.chars, result.words = len(answer.text), len(answer.text.split())
    if not case.answerable:
        return result
    text = norm(answer.text)
    result.missing_facts = [alts[0] for alts in case.facts if not has_any(text, alts)]
    result.facts_ok = not answer.refused and not result.missing_facts
    shown = norm(" ".join([answer.text, *(p.text for p in getattr(answer, "closest", ()))]))
    result.fact_shown = all(has_any(shown, alts) for alts in case.facts)
    if not answer.refused:
        quotes = norm(" ".join(c.quote for c in answer.citations))
        result.supported = all(has_any(quotes, alts) for alts in case.facts) or _covered(
            case, answer, sources
        )
    if retrieved is not None:
        result.retrieved = len(retrieved)
        result.retrieved_spans = [[d.metadata["start"], d.metadata["end"]] for d in retrieved]
        for rank, chunk in enumerate(retrieved, start=1):
            meta = chunk.metadata
            spans = sources.spans(meta["source"], case.support)
            if any(_overlap((meta["start"], meta["end"]), s) > HIT_COVERAGE for s in spans):
                result.hit_rank = rank
                break
    return result


def has_any(text: str, alternatives: Sequence[str]) -> bool:
    """Does normalised ``text`` hold one of the alternatives?"""
    return any(norm(a) in text for a in alternatives)


def _overlap(chunk: tuple[int, int], span: tuple[int, int]) -> float:
    """The share of ``span`` that ``chunk`` covers."""
    inside = min(chunk[1], span[1]) - max(chunk[0], span[0])
    return max(inside, 0) / max(span[1] - span[0], 1)


def _covered(case: Case, answer: Answer, sources: Sources) -> bool:
    """Do the cited spans of one source, joined across whitespace gaps, cover the support?"""
    for source in {c.source for c in answer.citations}:
        text = sources.text(source) or ""
        cited = sorted((c.start, c.end) for c in answer.citations if c.source == source)
        merged = [list(cited[0])]
        for start, end in cited[1:]:
            if text[merged[-1][1] : start].strip() == "":
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for s_start, s_end in sources.spans(source, case.support):
            if any(m_start <= s_start and s_end <= m_end for m_start, m_end in merged):
                return True
    return False
