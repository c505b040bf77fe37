"""Rendering ``assistant eval``: the terminal text, the Markdown report and the JSON payload.

All three are made here from the same ``SetRun`` so the held-out rule lives in one place: a set
with ``per_case=False`` is shown as aggregates, per-document aggregates, confusion counts and
failures counted by kind, never case by case (no ids, questions or answers), so nobody tunes
against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.evals.cases import Case
from assistant.evals.metrics import Check, Report, failures_by_kind, per_brief, per_document
from assistant.evals.scoring import OUTCOMES, CaseResult

HELD_OUT_NOTE = (
    "Held out: scored like the others but never gated, and its cases are never listed; "
    "do not tune the answerer against it."
)


@dataclass
class SetRun:
    """Every system's report on one set (ours first, then the baseline, then any others)."""

    name: str
    cases_file: str
    corpus_dir: str
    reports: list[Report]
    cases: list[Case]
    checks: list[Check] | None = None  # None: the set is not gated
    thresholds_file: str | None = None
    per_case: bool = True  # False for the held-out set
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks or ())


ROWS = [  # (metric, label, format)
    ("cases_right", "cases right", "{:.3f}"),
    ("fact_accuracy", "fact accuracy", "{:.3f}"),
    ("fact_shown", "fact shown (answer or closest)", "{:.3f}"),
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


def fmt(value: float | None, spec: str = "{:.3f}") -> str:
    return "n/a" if value is None else spec.format(value)


# ---------------------------------------------------------------- tables, as rows of cells


def metric_rows(run: SetRun) -> list[list[str]]:
    """Header, then one row per metric: each system's value, then threshold and status when
    the set is gated (thresholds apply to the first system)."""
    gated = run.checks is not None
    rows = [["metric"] + [r.name for r in run.reports] + (["threshold", "status"] * gated)]
    by_metric = {check.metric: check for check in run.checks or ()}
    for metric, label, spec in ROWS:
        row = [label] + [fmt(getattr(r.metrics, metric), spec) for r in run.reports]
        if gated:
            check = by_metric.get(metric)
            row += (
                [f"{check.op} {check.limit:g}", "pass" if check.ok else "FAIL"]
                if check
                else ["", ""]
            )
        rows.append(row)
    return rows


def confusion_rows(run: SetRun) -> list[list[str]]:
    rows = [["outcome"] + [r.name for r in run.reports]]
    for cell in OUTCOMES:
        rows.append(
            [cell.replace("_", " ")] + [str(r.metrics.confusion[cell]) for r in run.reports]
        )
    return rows


Column = tuple[str, Callable[[dict], str]]  # a per-system column: its title and its cell
RIGHT: Column = ("right", lambda d: f"{d['cases_right']}/{d['cases']}")
DOCUMENT_COLUMNS: list[Column] = [
    RIGHT,
    ("facts", lambda d: fmt(d["fact_accuracy"])),
    ("refusal recall", lambda d: fmt(d["refusal_recall"])),
]
BRIEF_COLUMNS: list[Column] = [
    RIGHT,
    ("hedged", lambda d: str(d["hedged"])),
    ("facts", lambda d: fmt(d["fact_accuracy"])),
    ("shown", lambda d: fmt(d["fact_shown"])),
    ("refusal P/R", lambda d: f"{fmt(d['refusal_precision'])} / {fmt(d['refusal_recall'])}"),
]


def grouped_rows(
    run: SetRun,
    group: Callable[[list], dict[str, dict]],
    label: str,
    columns: list[Column],
    named: Callable[[str], str] = str,
) -> list[list[str]]:
    """One row per group of cases (``group`` maps results to figures per key): the key, its
    cases, then ``columns`` for each system in turn."""
    tables = [group(r.results) for r in run.reports]
    header = [label, "cases"] + [f"{r.name} {title}" for r in run.reports for title, _ in columns]
    rows = [header]
    for key, ours in tables[0].items():
        cells = [cell(table[key]) for table in tables for _, cell in columns]
        rows.append([named(key), str(ours["cases"]), *cells])
    return rows


def document_rows(run: SetRun) -> list[list[str]]:
    """Per source file: cases, then per system cases right, fact accuracy, refusal recall."""
    return grouped_rows(run, per_document, "document", DOCUMENT_COLUMNS, lambda s: Path(s).name)


def brief_rows(run: SetRun) -> list[list[str]]:
    """Per question brief: cases, then per system cases right, hedged, facts, fact shown,
    refusal precision and recall; only a header when no case names its brief."""
    return grouped_rows(run, per_brief, "brief", BRIEF_COLUMNS)


def count_line(report: Report) -> str:
    """The counts behind the ratios, so a 1.0 on three cases is not mistaken for more."""
    c = report.metrics.counts
    return (
        f"{report.name}: right {c['cases_right']}/{c['cases']}, facts "
        f"{c['facts_ok']}/{c['answerable']} (shown {c['fact_shown']}), refused {c['refused']} "
        f"({c['correct_refusals']} of {c['to_refuse']} to refuse), hedged {c['hedged']}, "
        f"supported "
        f"{c['supported']}/{c['answered']} answered, grounded {c['grounded']}/{c['citations']} "
        f"citations, retrieval measured on {c['retrieval_measured']}, errors {c['errors']}"
    )


def kind_line(report: Report) -> str:
    """Pass count and failures by kind, without naming a case."""
    c = report.metrics.counts
    by_kind = ", ".join(
        f"{kind} {t['failed']}/{t['cases']}" for kind, t in failures_by_kind(report.results).items()
    )
    return f"{report.name}: {c['passed']}/{c['cases']} cases pass; failed by kind: {by_kind}"


def set_line(run: SetRun) -> str:
    c = run.reports[0].metrics.counts
    gate = f"gated by {run.thresholds_file}" if run.checks is not None else "not gated"
    return (
        f"{run.name} set: {run.cases_file} over {run.corpus_dir}, {c['cases']} cases "
        f"({c['answerable']} answerable, {c['to_refuse']} to refuse); {gate}"
    )


def verdict(run: SetRun) -> str:
    missed = [check for check in run.checks or () if not check.ok]
    if not missed:
        return "all thresholds met"
    return "missed: " + ", ".join(
        f"{c.metric} {fmt(c.value)} (needs {c.op} {c.limit:g})" for c in missed
    )


def failure_rows(run: SetRun) -> list[list[str]]:
    """The first system's failing cases; empty for a held-out set."""
    if not run.per_case:
        return []
    by_id = {case.id: case for case in run.cases}
    return [
        [r.id, r.kind, r.question, _why(r), _expected(by_id[r.id]), _got(r)]
        for r in run.reports[0].failures()
    ]


def _expected(case: Case) -> str:
    return "; ".join(" | ".join(alts) for alts in case.facts) if case.answerable else "refusal"


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
        reasons.append("refused" + (" (fact shown)" if result.fact_shown else ""))
    if result.missing_facts and not result.refused:
        reasons.append("missing " + ", ".join(result.missing_facts))
    if result.supported is False:
        reasons.append("citations do not support")
    if result.grounded != result.citations:
        reasons.append(f"{result.citations - result.grounded} ungrounded citation(s)")
    if result.error:
        reasons.append("error")
    return "; ".join(reasons)


# ---------------------------------------------------------------- the terminal


def _text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_text(runs: Sequence[SetRun]) -> str:
    lines: list[str] = []
    for run in runs:
        lines += [f"== {set_line(run)}", *_text_table(metric_rows(run)), ""]
        lines += [*(count_line(r) for r in run.reports), *(kind_line(r) for r in run.reports)]
        lines += ["", *_text_table(confusion_rows(run)), "", *_text_table(document_rows(run))]
        if len(brief_rows(run)) > 1:
            lines += ["", *_text_table(brief_rows(run))]
        lines += [""] + [note for note in run.notes]
        for why in failure_rows(run):
            lines.append(f"  FAIL {why[0]} [{why[1]}] {why[2]!r}: {why[3]}")
            lines.append(f"       expected: {why[4]}")
            lines.append(f"       got:      {why[5]}")
        if not run.per_case:
            lines.append(HELD_OUT_NOTE)
        if run.checks is not None:
            lines.append(f"thresholds ({run.reports[0].name}, {run.name}): {verdict(run)}")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(c) for c in rows[0]) + " |"]
    out.append("|" + "|".join(" --- " for _ in rows[0]) + "|")
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows[1:]]
    return out


def render_markdown(runs: Sequence[SetRun], notes: Sequence[str] = ()) -> str:
    lines = [
        "# Eval report",
        "",
        "Generated by `assistant eval --markdown evals/report.md`; refresh it when answers change.",
        "Thresholds apply to `ours` on gated sets only. Definitions: `src/assistant/evals/`.",
        "",
        *[line for note in notes for line in (note, "")],
    ]
    for run in runs:
        lines += [f"## {run.name.capitalize()} set", "", set_line(run) + ".", ""]
        lines += [*_md_table(metric_rows(run)), ""]
        lines += [*(f"- {count_line(r)}" for r in run.reports)]
        lines += [*(f"- {kind_line(r)}" for r in run.reports), ""]
        if run.checks is not None:
            lines += [f"Thresholds: {verdict(run)}.", ""]
        lines += ["### Outcomes", "", *_md_table(confusion_rows(run)), ""]
        lines += ["### Per document", "", *_md_table(document_rows(run)), ""]
        if len(brief_rows(run)) > 1:
            lines += ["### Per question brief", "", *_md_table(brief_rows(run)), ""]
        lines += [line for note in run.notes for line in (note, "")]
        if not run.per_case:
            lines += [HELD_OUT_NOTE, ""]
            continue
        lines += [f"### Failing cases ({run.reports[0].name})", ""]
        failures = failure_rows(run)
        header = ["id", "kind", "question", "why", "expected", "got"]
        lines += [*(_md_table([header, *failures]) if failures else ["None."]), ""]
        if run.name == "golden":
            lines += ["### Per case", "", *_md_table(_per_case_rows(run)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _per_case_rows(run: SetRun) -> list[list[str]]:
    ours = run.reports[0]
    header = ["id", "kind", "refuse? exp/got"]
    for report in run.reports[:2]:
        header += [f"{report.name} facts", f"{report.name} support", f"{report.name} hit rank"]
    rows = [[*header, f"{ours.name} ms", f"{ours.name} pass"]]
    others = [{r.id: r for r in report.results} for report in run.reports[1:2]]
    for result in ours.results:
        row = [result.id, result.kind, f"{_yn(result.should_refuse)}/{_yn(result.refused)}"]
        for r in [result] + [o[result.id] for o in others]:
            hit = str(r.hit_rank or "-") if not r.should_refuse else ""
            row += [_mark(r.facts_ok), _mark(r.supported), hit]
        rows.append([*row, f"{result.latency_ms:.0f}", "pass" if result.passed else "FAIL"])
    return rows


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _mark(flag: bool | None) -> str:
    return "" if flag is None else ("ok" if flag else "FAIL")


# ---------------------------------------------------------------- JSON


def to_json(runs: Sequence[SetRun], notes: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON payload: per set, per system, metrics and aggregates; cases only where
    ``per_case`` (never for the held-out set)."""
    return {
        "passed": all(run.passed for run in runs),
        "sets": {run.name: _set_dict(run) for run in runs},
        "notes": list(notes),
    }


def _set_dict(run: SetRun) -> dict[str, Any]:
    by_id = {case.id: case for case in run.cases}
    systems = {}
    for report in run.reports:
        system: dict[str, Any] = {
            "metrics": asdict(report.metrics),
            "per_document": per_document(report.results),
            "per_brief": per_brief(report.results),
            "failures_by_kind": failures_by_kind(report.results),
        }
        if run.per_case:
            system["cases"] = [
                {
                    **asdict(r),
                    "passed": r.passed,
                    "outcome": r.outcome,
                    "expected_facts": [list(alts) for alts in by_id[r.id].facts],
                }
                for r in report.results
            ]
        systems[report.name] = system
    checks = run.checks
    return {
        "cases_file": run.cases_file,
        "corpus_dir": run.corpus_dir,
        "gated": checks is not None,
        "thresholds_file": run.thresholds_file,
        "passed": run.passed,
        "thresholds": None if checks is None else [{**asdict(c), "ok": c.ok} for c in checks],
        "systems": systems,
        "notes": list(run.notes),
    }
