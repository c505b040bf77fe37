"""Evals: score any answerer on the eval sets, next to the tutorial baseline.

One module per step, each importing only those above it: ``cases`` (labels, checked on
load) → ``scoring`` (one answer against its case) → ``metrics`` (a set's numbers, limits) →
``baseline`` (the tutorial pipeline) → ``report`` (text, Markdown, JSON) → ``runner``
(systems on sets, the ``assistant eval`` command).  ``collect`` gives a fitting script each
case with the answer and the retrieved documents.
"""

from assistant.evals.baseline import TutorialBaseline
from assistant.evals.cases import KINDS, Case, CaseError, load_cases, read_source
from assistant.evals.metrics import (
    Check,
    Metrics,
    Report,
    aggregate,
    check_thresholds,
    confusion,
    failures_by_kind,
    per_brief,
    per_document,
    percentile,
)
from assistant.evals.report import SetRun, render_markdown, render_text, to_json
from assistant.evals.runner import (
    DEFAULT_SETS,
    FAKE_LLM_REPLY,
    SET_NAMES,
    EvalSet,
    collect,
    eval_set,
    evaluate,
    load_thresholds,
    run_eval_command,
)
from assistant.evals.scoring import OUTCOMES, CaseResult, score_case

__all__ = [
    "DEFAULT_SETS",
    "FAKE_LLM_REPLY",
    "KINDS",
    "OUTCOMES",
    "SET_NAMES",
    "Case",
    "CaseError",
    "CaseResult",
    "Check",
    "EvalSet",
    "Metrics",
    "Report",
    "SetRun",
    "TutorialBaseline",
    "aggregate",
    "check_thresholds",
    "collect",
    "confusion",
    "eval_set",
    "evaluate",
    "failures_by_kind",
    "load_cases",
    "load_thresholds",
    "per_brief",
    "per_document",
    "percentile",
    "read_source",
    "render_markdown",
    "render_text",
    "run_eval_command",
    "score_case",
    "to_json",
]
