"""From per-case results to the numbers a set is judged by, and the checks against limits.

Over a set:

- fact accuracy: the share of answerable cases whose answer holds every fact;
  fact shown: the share whose facts appear in the answer or its closest passages.
- cases right: answerable cases answered with every fact plus cases to refuse that were
  refused (count in ``counts``, share here).
- refusal precision: of the refused cases, the share that should be refused (1.0 when nothing
  is refused and nothing should be; n/a when nothing is refused but something should be);
  refusal recall: of the cases to refuse, the share refused.
- groundedness: the share of all citations that are grounded; citation support: the share of
  answered answerable cases that are supported.
- retrieval: hit@1, hit@k (k = chunks the system retrieved) and MRR over the answerable cases.
- answer length (characters and words of answered cases) and latency of ``ask`` (p50, p95).
- confusion: cases per ``OUTCOMES`` cell; ``per_document``: the same per source file, so a
  weak document is seen rather than averaged away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.evals.scoring import OUTCOMES, CaseResult

NOT_THRESHOLDS = ("counts", "confusion")  # Metrics fields that are not single numbers


@dataclass
class Metrics:
    fact_accuracy: float | None
    fact_shown: float | None
    cases_right: float | None
    refusal_precision: float | None
    refusal_recall: float | None
    groundedness: float | None
    citation_support: float | None
    hit_at_1: float | None
    hit_at_k: float | None
    mrr: float | None
    mean_chars: float | None
    mean_words: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    counts: dict[str, int] = field(default_factory=dict)
    confusion: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    """One system's scored results on one set."""

    name: str
    results: list[CaseResult]
    metrics: Metrics

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]


def aggregate(results: Sequence[CaseResult]) -> Metrics:
    answerable = [r for r in results if not r.should_refuse]
    to_refuse = [r for r in results if r.should_refuse]
    refused = [r for r in results if r.refused]
    answered = [r for r in answerable if not r.refused]
    replied = [r for r in results if not r.refused]
    measured = [r for r in answerable if r.retrieved is not None]
    citations = sum(r.citations for r in results)
    correct_refusals = sum(r.should_refuse for r in refused)
    # Nothing refused: precision is 1.0 if nothing had to be, else undefined (n/a).
    precision = correct_refusals / len(refused) if refused else (None if to_refuse else 1.0)
    latencies = sorted(r.latency_ms for r in results)
    return Metrics(
        fact_accuracy=share([bool(r.facts_ok) for r in answerable]),
        fact_shown=share([bool(r.fact_shown) for r in answerable]),
        cases_right=share([r.right for r in results]),
        refusal_precision=precision,
        refusal_recall=share([r.refused for r in to_refuse]) if to_refuse else 1.0,
        groundedness=sum(r.grounded for r in results) / citations if citations else 1.0,
        citation_support=share([bool(r.supported) for r in answered]),
        hit_at_1=share([r.hit_rank == 1 for r in measured]),
        hit_at_k=share([r.hit_rank is not None for r in measured]),
        mrr=mean([1 / r.hit_rank if r.hit_rank else 0.0 for r in measured]),
        mean_chars=mean([r.chars for r in replied]),
        mean_words=mean([r.words for r in replied]),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        counts={
            "cases": len(results),
            "answerable": len(answerable),
            "to_refuse": len(to_refuse),
            "refused": len(refused),
            "correct_refusals": correct_refusals,
            "facts_ok": sum(bool(r.facts_ok) for r in answerable),
            "fact_shown": sum(bool(r.fact_shown) for r in answerable),
            "cases_right": sum(r.right for r in results),
            "answered": len(answered),
            "supported": sum(bool(r.supported) for r in answered),
            "citations": citations,
            "grounded": sum(r.grounded for r in results),
            "retrieval_measured": len(measured),
            "passed": sum(r.passed for r in results),
            "errors": sum(r.error is not None for r in results),
            "hedged": sum(r.hedged for r in results),
        },
        confusion=confusion(results),
    )


def confusion(results: Sequence[CaseResult]) -> dict[str, int]:
    cells = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        cells[result.outcome] += 1
    return cells


def per_brief(results: Sequence[CaseResult]) -> dict[str, dict[str, float | int | None]]:
    """Per question brief (the instructions the questions were written to), in the order
    briefs first appear: cases, cases right, hedged, fact accuracy, fact shown, refusal
    precision and recall. Empty when no case names its brief."""
    table: dict[str, list[CaseResult]] = {}
    for result in results:
        if result.brief:
            table.setdefault(result.brief, []).append(result)
    rows = {}
    for brief, group in table.items():
        metrics = aggregate(group)
        rows[brief] = {
            "cases": len(group),
            "cases_right": sum(r.right for r in group),
            "hedged": sum(r.hedged for r in group),
            "fact_accuracy": metrics.fact_accuracy,
            "fact_shown": metrics.fact_shown,
            "refusal_precision": metrics.refusal_precision,
            "refusal_recall": metrics.refusal_recall,
        }
    return rows


def per_document(results: Sequence[CaseResult]) -> dict[str, dict[str, float | int | None]]:
    """Per source file, in the order sources first appear: cases, cases right, fact accuracy
    and refusal recall (None where the document has no case of that sort)."""
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(result.source or "(no source)", []).append(result)
    table = {}
    for source, group in groups.items():
        answerable = [r for r in group if not r.should_refuse]
        to_refuse = [r for r in group if r.should_refuse]
        table[source] = {
            "cases": len(group),
            "cases_right": sum(r.right for r in group),
            "fact_accuracy": share([bool(r.facts_ok) for r in answerable]),
            "refusal_recall": share([r.refused for r in to_refuse]),
        }
    return table


def failures_by_kind(results: Sequence[CaseResult]) -> dict[str, dict[str, int]]:
    """Per kind, in the order kinds first appear: how many cases failed of how many."""
    kinds: dict[str, dict[str, int]] = {}
    for result in results:
        tally = kinds.setdefault(result.kind, {"failed": 0, "cases": 0})
        tally["cases"] += 1
        tally["failed"] += not result.passed
    return kinds


def share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---------------------------------------------------------------- limits


@dataclass(frozen=True)
class Check:
    """One threshold on one metric; a metric that is n/a fails its check."""

    metric: str
    op: str  # ">=" or "<="
    limit: float
    value: float | None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.op == ">=" else self.value <= self.limit


def check_thresholds(metrics: Metrics, thresholds: dict[str, dict[str, float]]) -> list[Check]:
    checks = [Check(m, ">=", float(v), getattr(metrics, m)) for m, v in thresholds["min"].items()]
    checks += [Check(m, "<=", float(v), getattr(metrics, m)) for m, v in thresholds["max"].items()]
    return checks
