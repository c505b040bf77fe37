"""Rendering ``assistant eval``: the terminal table and the Markdown report.

The golden set is shown in full (metrics, thresholds, failing cases, every case).  The held-out
set (``evals/holdout.yaml``) is shown as aggregates only: the same metrics, the counts behind
them and failures counted by kind, never its individual cases, so nobody tunes against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.evals import Case, CaseResult, Check, Report

HOLDOUT_TITLE = "held-out set: no thresholds"
HOLDOUT_NOTE = (
    "Scored like the golden set but never gated: it does not change the exit code. Its cases "
    "are not listed here; do not tune the answerer against them."
)


@dataclass
class HeldOut:
    """The held-out set's reports (ours first), and the file they came from."""

    file: str
    reports: list[Report]


ROWS = [  # (metric, label, format)
    ("fact_accuracy", "fact accuracy", "{:.3f}"),
    ("refusal_precision", "refusal precision", "{:.3f}"),
    ("refusal_recall", "refusal recall", "{:.3f}"),
    ("groundedness", "citation groundedness", "{:.3f}"),
    ("citation_support", "citation support", "{:.3f}"),
    ("hit_at_1", "retrieval hit@1", "{:.3f}"),
    ("hit_at_k", "retrieval hit@k", "{:.3f}"),
    ("mrr", "retrieval MRR", "{:.3f}"),
    ("mean_chars", "answer length (chars)", "{:.0f}"),
    ("mean_words", "answer length (words)", "{:.1f}"),
    ("latency_p50_ms", "latency p50 (ms)", "{:.1f}"),
    ("latency_p95_ms", "latency p95 (ms)", "{:.1f}"),
]


def _fmt(value: float | None, spec: str = "{:.3f}") -> str:
    return "n/a" if value is None else spec.format(value)


def summary_rows(
    reports: Sequence[Report], checks: Sequence[Check] | None = None
) -> list[list[str]]:
    """One row per metric: label, each report's value, then threshold and pass/fail (first
    report) unless ``checks`` is None (the held-out set: no threshold columns)."""
    by_metric = {check.metric: check for check in checks or ()}
    rows = []
    for metric, label, spec in ROWS:
        row = [label] + [_fmt(getattr(r.metrics, metric), spec) for r in reports]
        check = by_metric.get(metric)
        if checks is not None:
            row += (
                [f"{check.op} {check.limit:g}", "pass" if check.ok else "FAIL"]
                if check
                else ["", ""]
            )
        rows.append(row)
    return rows


def summary_header(reports: Sequence[Report], thresholds: bool = True) -> list[str]:
    return ["metric"] + [r.name for r in reports] + (["threshold", "status"] if thresholds else [])


def count_line(report: Report) -> str:
    """The counts behind the ratios, so a 1.0 on three cases is not mistaken for more."""
    c = report.metrics.counts
    return (
        f"{report.name}: facts {c['facts_ok']}/{c['answerable']}, refused {c['refused']} "
        f"({c['correct_refusals']} of {c['to_refuse']} to refuse), supported "
        f"{c['supported']}/{c['answered']} answered, grounded {c['grounded']}/{c['citations']} "
        f"citations, retrieval measured on {c['retrieval_measured']}, errors {c['errors']}"
    )


def failures_by_kind(report: Report) -> dict[str, dict[str, int]]:
    """Per kind, in the order kinds first appear: how many cases failed of how many."""
    kinds: dict[str, dict[str, int]] = {}
    for result in report.results:
        tally = kinds.setdefault(result.kind, {"failed": 0, "cases": 0})
        tally["cases"] += 1
        tally["failed"] += not result.passed
    return kinds


def kind_line(report: Report) -> str:
    """Pass count and failures by kind, without naming a case."""
    c = report.metrics.counts
    by_kind = ", ".join(
        f"{kind} {t['failed']}/{t['cases']}" for kind, t in failures_by_kind(report).items()
    )
    return (
        f"{report.name}: {c['passed']}/{c['cases']} cases pass; "
        f"failed by kind (failed/cases): {by_kind}"
    )


def _set_line(report: Report) -> str:
    c = report.metrics.counts
    return f"{c['cases']} cases ({c['answerable']} answerable, {c['to_refuse']} to refuse)"


def _expected(case: Case) -> str:
    if not case.answerable:
        return "refusal"
    return "; ".join(" | ".join(alts) for alts in case.facts)


def _got(result: CaseResult, limit: int = 160) -> str:
    if result.error:
        return f"error: {result.error}"
    text = " ".join(result.answer.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return ("(refused) " if result.refused else "") + text


def _why(result: CaseResult) -> str:
    reasons = []
    if result.should_refuse and not result.refused:
        reasons.append("not refused")
    if not result.should_refuse and result.refused:
        reasons.append("refused")
    if result.missing_facts and not result.refused:
        reasons.append("missing " + ", ".join(result.missing_facts))
    if result.supported is False:
        reasons.append("citations do not support")
    if result.grounded != result.citations:
        reasons.append(f"{result.citations - result.grounded} ungrounded citation(s)")
    if result.error:
        reasons.append("error")
    return "; ".join(reasons)


def _text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_text(
    reports: Sequence[Report],
    checks: Sequence[Check],
    cases: Sequence[Case],
) -> str:
    lines = _text_table([summary_header(reports), *summary_rows(reports, checks)])
    ours = reports[0]
    by_id = {case.id: case for case in cases}
    counts = ours.metrics.counts
    lines += ["", *(count_line(report) for report in reports), ""]
    lines.append(f"{ours.name}: {counts['passed']}/{counts['cases']} cases pass")
    for result in ours.failures():
        lines.append(f"  FAIL {result.id} [{result.kind}] {result.question!r}: {_why(result)}")
        lines.append(f"       expected: {_expected(by_id[result.id])}")
        lines.append(f"       got:      {_got(result)}")
    missed = [check for check in checks if not check.ok]
    verdict = (
        "all thresholds met"
        if not missed
        else "missed: "
        + ", ".join(f"{c.metric} {_fmt(c.value)} (needs {c.op} {c.limit:g})" for c in missed)
    )
    lines.append(f"thresholds ({ours.name}): {verdict}")
    return "\n".join(lines) + "\n"


def render_holdout_text(holdout: HeldOut) -> str:
    """The held-out section of the terminal report: aggregates only."""
    reports = holdout.reports
    lines = ["", f"{HOLDOUT_TITLE} - {holdout.file}, {_set_line(reports[0])}"]
    lines += _text_table([summary_header(reports, False), *summary_rows(reports)])
    lines += ["", *(count_line(r) for r in reports), *(kind_line(r) for r in reports)]
    lines.append(HOLDOUT_NOTE)
    return "\n".join(lines) + "\n"


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(c) for c in rows[0]) + " |"]
    out.append("|" + "|".join(" --- " for _ in rows[0]) + "|")
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows[1:]]
    return out


def render_markdown(
    reports: Sequence[Report],
    checks: Sequence[Check],
    cases: Sequence[Case],
    notes: Sequence[str],
    holdout: HeldOut | None = None,
) -> str:
    ours, others = reports[0], reports[1:]
    lines = [
        "# Eval report",
        "",
        "Generated by `assistant eval --markdown evals/report.md`; refresh it when answers change.",
        "",
        f"Golden set: {_set_line(ours)}. Thresholds apply to `{ours.name}` on the golden set "
        "only. Definitions: `src/assistant/evals.py`.",
        "",
        *_md_table([summary_header(reports), *summary_rows(reports, checks)]),
        "",
        *(f"- {count_line(report)}" for report in reports),
        "",
        *[line for note in notes for line in (note, "")],
    ]
    if holdout is not None:
        lines += [
            f"## {HOLDOUT_TITLE[0].upper()}{HOLDOUT_TITLE[1:]}",
            "",
            f"`{holdout.file}`: {_set_line(holdout.reports[0])}. {HOLDOUT_NOTE}",
            "",
            *_md_table([summary_header(holdout.reports, False), *summary_rows(holdout.reports)]),
            "",
            *(f"- {count_line(report)}" for report in holdout.reports),
            *(f"- {kind_line(report)}" for report in holdout.reports),
            "",
        ]
    lines += [f"## Failing cases ({ours.name}, golden set)", ""]
    by_id = {case.id: case for case in cases}
    failures = ours.failures()
    if failures:
        lines += _md_table(
            [["id", "kind", "question", "why", "expected", "got"]]
            + [
                [r.id, r.kind, r.question, _why(r), _expected(by_id[r.id]), _got(r)]
                for r in failures
            ]
        )
    else:
        lines.append("None.")
    lines += ["", "## Per case (golden set)", ""]
    header = ["id", "kind", "refuse? exp/got"]
    for report in reports[:2]:
        header += [f"{report.name} facts", f"{report.name} support", f"{report.name} hit rank"]
    header += [f"{ours.name} ms", f"{ours.name} pass"]
    rows = [header]
    others_by_id = [{r.id: r for r in report.results} for report in others[:1]]
    for result in ours.results:
        row = [result.id, result.kind, f"{_yn(result.should_refuse)}/{_yn(result.refused)}"]
        for r in [result] + [o[result.id] for o in others_by_id]:
            row += [
                _mark(r.facts_ok),
                _mark(r.supported),
                str(r.hit_rank or "-") if not r.should_refuse else "",
            ]
        row += [f"{result.latency_ms:.0f}", "pass" if result.passed else "FAIL"]
        rows.append(row)
    lines += _md_table(rows)
    return "\n".join(lines) + "\n"


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _mark(flag: bool | None) -> str:
    return "" if flag is None else ("ok" if flag else "FAIL")
