"""Evals: score any answerer on the golden set in ``evals/``, next to the tutorial baseline.

``evals/cases.yaml`` is the golden set, gated by ``evals/thresholds.yaml``.  When
``evals/holdout.yaml`` exists, the same metrics are also reported on it for ours and the
baseline, as aggregates only and with no thresholds (it never changes the exit code): a set
nobody tunes against, to show whether gains on the golden set generalise.  Rendering is in
``assistant.evals_report``.

A *case* is a question (with optional history) that is either answerable, with the facts the
answer must contain and the supporting passage copied verbatim from the source, or must be
refused.  A *system* is anything with ``ask(question, history) -> Answer`` and, optionally,
``retrieve(question, history) -> list[Document]`` (``Assistant`` and ``TutorialBaseline``).

Definitions (per case, then over the set):

- facts: the answer is not refused and holds every fact (one alternative of each),
  case-insensitive, after ``[n]`` markers are removed and whitespace is collapsed;
  fact accuracy is the share of answerable cases that do.
- refusal precision: of the refused cases, the share that should be refused (1.0 when nothing
  is refused and nothing should be; n/a when nothing is refused but something should be);
  refusal recall: of the cases to refuse, the share refused.
- groundedness: of all citations, the share whose quote equals the cited file's text at
  ``[start:end]`` (read from disk as UTF-8, like a reader checking it would).
- citation support: of the answerable cases answered, the share whose cited spans cover the
  supporting passage (gaps of whitespace between cited spans count as covered) or whose quotes
  hold all the facts.
- retrieval: a retrieved chunk is a hit when its span covers more than half of the supporting
  passage in the chunk's own source text; hit@1, hit@k (k = chunks the system retrieved) and
  MRR over the answerable cases.
- answer length (characters and words of answered cases) and latency of ``ask`` (p50, p95 in
  ms; one untimed warm-up question first, so model loading is not counted).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from assistant.answer.types import Answer
from assistant.evals_report import (
    HeldOut,
    failures_by_kind,
    render_holdout_text,
    render_markdown,
    render_text,
)

KINDS = (
    "fact", "paraphrase", "typo", "list", "span", "multiturn", "unanswerable", "hostile",
    "overview", "name", "definition",
)
HIT_COVERAGE = 0.5  # a chunk must cover more than this share of the supporting passage
DEFAULT_CASES = Path("evals/cases.yaml")
DEFAULT_THRESHOLDS = Path("evals/thresholds.yaml")
DEFAULT_HOLDOUT = Path("evals/holdout.yaml")


class CaseError(ValueError):
    """The golden set is malformed; the message names the case."""


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    question: str
    answerable: bool
    facts: tuple[tuple[str, ...], ...] = ()
    support: str = ""
    source: str = ""
    history: tuple[tuple[str, str], ...] = ()


def load_cases(path: Path | str = DEFAULT_CASES, root: Path | None = None) -> list[Case]:
    """Read and validate the golden set; relative sources resolve against ``root``.

    ``root`` defaults to the folder above the cases file's folder (the project root for
    ``evals/cases.yaml``).  Raises ``CaseError`` naming the case when a label cannot hold.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.resolve().parent.parent
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, list):
        data = {"cases": data}
    default_source = (data.get("defaults") or {}).get("source", "")
    cases, seen = [], set()
    for number, raw in enumerate(data.get("cases") or [], start=1):
        cid = str(raw.get("id") or f"#{number}")
        if cid in seen:
            raise CaseError(f"case {cid}: duplicate id")
        seen.add(cid)
        case = _parse_case(cid, raw, default_source, root)
        cases.append(case)
    if not cases:
        raise CaseError(f"{path} holds no cases")
    return cases


def _parse_case(cid: str, raw: dict[str, Any], default_source: str, root: Path) -> Case:
    def fail(message: str) -> CaseError:
        return CaseError(f"case {cid}: {message}")

    missing = {"question", "kind", "answerable"} - set(raw)
    if missing:
        raise fail(f"missing {', '.join(sorted(missing))}")
    if raw["kind"] not in KINDS:
        raise fail(f"kind {raw['kind']!r} is not one of {', '.join(KINDS)}")
    history = tuple(tuple(turn) for turn in raw.get("history") or ())
    if any(len(turn) != 2 or not all(isinstance(t, str) for t in turn) for turn in history):
        raise fail("history must be a list of [user, assistant] string pairs")
    facts = tuple(
        tuple(str(a) for a in (fact if isinstance(fact, list) else [fact]))
        for fact in raw.get("facts") or ()
    )
    support = str(raw.get("support") or "")
    source = str(raw.get("source") or default_source)
    if raw["answerable"]:
        if not facts or not support or not source:
            raise fail("an answerable case needs facts, support and a source")
        text = read_source(_resolve(source, root))
        if support not in text:
            raise fail(f"support is not a verbatim substring of {source}: {support!r}")
        for alternatives in facts:
            if not any(_norm(a) in _norm(support) for a in alternatives):
                raise fail(f"no alternative of fact {list(alternatives)} is in the support")
    elif facts or support:
        raise fail("a case to refuse has no facts or support")
    return Case(
        cid,
        raw["kind"],
        str(raw["question"]),
        bool(raw["answerable"]),
        facts,
        support,
        source,
        history,
    )


def _resolve(source: str, root: Path) -> Path:
    path = Path(source)
    if path.is_absolute() or path.exists():
        return path
    return root / path


def read_source(path: Path | str) -> str:
    """A source's text as citations index it: UTF-8 with universal newlines for text files,
    the loader's extraction for other formats (PDF, HTML)."""
    from assistant.load import load_document

    return load_document(Path(path)).text


def _norm(text: str) -> str:
    text = re.sub(r"\[\d+\]", " ", text).replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- scoring one case


@dataclass
class CaseResult:
    id: str
    kind: str
    question: str
    should_refuse: bool
    refused: bool
    answer: str
    facts_ok: bool | None = None  # None for cases to refuse
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


class _Sources:
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
    sources: _Sources | None = None,
) -> CaseResult:
    """Score one answer (and, when given, the ranked chunks behind it) against its case."""
    sources = sources or _Sources()
    text = _norm(answer.text)
    result = CaseResult(
        case.id,
        case.kind,
        case.question,
        not case.answerable,
        answer.refused,
        answer.text,
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
    result.missing_facts = [alts[0] for alts in case.facts if not _has_any(text, alts)]
    result.facts_ok = not answer.refused and not result.missing_facts
    if not answer.refused:
        quotes = _norm(" ".join(c.quote for c in answer.citations))
        result.supported = all(_has_any(quotes, alts) for alts in case.facts) or _covered(
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


def _has_any(text: str, alternatives: Sequence[str]) -> bool:
    return any(_norm(a) in text for a in alternatives)


def _overlap(chunk: tuple[int, int], span: tuple[int, int]) -> float:
    """The share of ``span`` that ``chunk`` covers."""
    inside = min(chunk[1], span[1]) - max(chunk[0], span[0])
    return max(inside, 0) / max(span[1] - span[0], 1)


def _covered(case: Case, answer: Answer, sources: _Sources) -> bool:
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


# ---------------------------------------------------------------- running a system


@dataclass
class Metrics:
    fact_accuracy: float | None
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


@dataclass
class Report:
    name: str
    results: list[CaseResult]
    metrics: Metrics

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self, cases: Sequence[Case] = ()) -> dict[str, Any]:
        by_id = {case.id: case for case in cases}
        rows = []
        for r in self.results:
            row = {**asdict(r), "passed": r.passed}
            if r.id in by_id:
                row["expected_facts"] = [list(alts) for alts in by_id[r.id].facts]
            rows.append(row)
        return {"name": self.name, "metrics": asdict(self.metrics), "cases": rows}


AnswerFn = Callable[[str, Sequence[tuple[str, str]]], Answer]


def evaluate(
    system: Any,
    cases: Sequence[Case],
    name: str = "ours",
    corpus_dir: Path | None = None,
    warm_up: bool = True,
) -> Report:
    """Run every case through ``system`` (an object with ``ask``, or a function
    ``(question, history) -> Answer``) and score it; retrieval is scored when it has
    ``retrieve``.  An exception from the system fails that case, not the run.  ``warm_up``
    asks the first question once, untimed, before the run."""
    ask: AnswerFn = system.ask if hasattr(system, "ask") else system
    retrieve = getattr(system, "retrieve", None)
    if corpus_dir is None and hasattr(system, "settings"):
        corpus_dir = Path(system.settings.corpus_dir)
    sources = _Sources(corpus_dir)
    if cases and warm_up:
        with contextlib.suppress(Exception):  # warm-up: load models, open the index
            ask(cases[0].question, cases[0].history)
    results = []
    for case in cases:
        started = time.perf_counter()
        try:
            answer, error = ask(case.question, case.history), None
        except Exception as exc:
            answer, error = (
                Answer(text="", citations=[], refused=False),
                f"{type(exc).__name__}: {exc}",
            )
        latency = (time.perf_counter() - started) * 1000
        retrieved = None
        if retrieve is not None and case.answerable and error is None:
            try:
                retrieved = retrieve(case.question, case.history)
            except Exception as exc:
                error = f"retrieve: {type(exc).__name__}: {exc}"
        result = score_case(case, answer, retrieved, latency, sources)
        result.error = error
        results.append(result)
    return Report(name, results, aggregate(results))


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
        fact_accuracy=_share([bool(r.facts_ok) for r in answerable]),
        refusal_precision=precision,
        refusal_recall=_share([r.refused for r in to_refuse]) if to_refuse else 1.0,
        groundedness=sum(r.grounded for r in results) / citations if citations else 1.0,
        citation_support=_share([bool(r.supported) for r in answered]),
        hit_at_1=_share([r.hit_rank == 1 for r in measured]),
        hit_at_k=_share([r.hit_rank is not None for r in measured]),
        mrr=_mean([1 / r.hit_rank if r.hit_rank else 0.0 for r in measured]),
        mean_chars=_mean([r.chars for r in replied]),
        mean_words=_mean([r.words for r in replied]),
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        counts={
            "cases": len(results),
            "answerable": len(answerable),
            "to_refuse": len(to_refuse),
            "refused": len(refused),
            "correct_refusals": correct_refusals,
            "facts_ok": sum(bool(r.facts_ok) for r in answerable),
            "answered": len(answered),
            "supported": sum(bool(r.supported) for r in answered),
            "citations": citations,
            "grounded": sum(r.grounded for r in results),
            "retrieval_measured": len(measured),
            "passed": sum(r.passed for r in results),
            "errors": sum(r.error is not None for r in results),
        },
    )


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Check:
    metric: str
    op: str  # ">=" or "<="
    limit: float
    value: float | None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.op == ">=" else self.value <= self.limit


def load_thresholds(path: Path | str = DEFAULT_THRESHOLDS) -> dict[str, dict[str, float]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    known = set(Metrics.__dataclass_fields__) - {"counts"}
    for bound in ("min", "max"):
        unknown = set(data.get(bound) or {}) - known
        if unknown:
            raise ValueError(
                f"{path}: unknown metric(s) under {bound}: {', '.join(sorted(unknown))}"
            )
    return {"min": dict(data.get("min") or {}), "max": dict(data.get("max") or {})}


def check_thresholds(metrics: Metrics, thresholds: dict[str, dict[str, float]]) -> list[Check]:
    checks = [Check(m, ">=", float(v), getattr(metrics, m)) for m, v in thresholds["min"].items()]
    checks += [Check(m, "<=", float(v), getattr(metrics, m)) for m, v in thresholds["max"].items()]
    return checks


# ---------------------------------------------------------------- the command

FAKE_LLM_REPLY = (
    "The clinical trial will be conducted at the Third Affiliated Hospital of Sun Yat-sen "
    "University [1]."
)


def fake_chat_model():
    """A chat model that always gives the same cited reply: it exercises the LLM answerer's
    plumbing (prompt, markers, citations) so the harness shows it can score any answerer."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=[FAKE_LLM_REPLY])


def run_eval_command(
    settings: Any,
    json_path: Path | None = None,
    markdown_path: Path | None = None,
    stream: TextIO = sys.stdout,
    *,
    cases_path: Path | None = None,
    thresholds_path: Path | None = None,
    holdout_path: Path | None = None,
    llm_check: bool = True,
    bot: Any = None,
) -> int:
    """``assistant eval``: ours, the baseline and (unscored) the LLM answerer on a fake chat
    model on the golden set, ours and the baseline on the held-out set when its file exists;
    prints a table, writes the reports asked for; 0 when every golden-set threshold is met."""
    from assistant import Assistant
    from assistant.evals_baseline import TutorialBaseline

    cases_path = cases_path or _project_file(DEFAULT_CASES)
    thresholds_path = thresholds_path or _project_file(DEFAULT_THRESHOLDS)
    holdout_path = holdout_path or _project_file(DEFAULT_HOLDOUT)
    cases = load_cases(cases_path)
    thresholds = load_thresholds(thresholds_path)
    holdout_cases = load_cases(holdout_path) if Path(holdout_path).is_file() else []

    bot = bot if bot is not None else Assistant(settings)
    ours = evaluate(bot, cases, name="ours")
    embeddings = getattr(bot, "embeddings", None)
    corpus_dir = bot.settings.corpus_dir
    baseline = TutorialBaseline(corpus_dir, embeddings=embeddings)
    reports = [ours, evaluate(baseline, cases, name="baseline", corpus_dir=corpus_dir)]
    holdout = None
    if holdout_cases:
        holdout = HeldOut(
            str(holdout_path),
            [
                evaluate(bot, holdout_cases, name="ours", warm_up=False),
                evaluate(baseline, holdout_cases, name="baseline", corpus_dir=corpus_dir),
            ],
        )
    notes = [
        "`ours` is the default (extractive) answerer. `baseline` is the LangChain tutorial "
        "pipeline: RecursiveCharacterTextSplitter 1000/200, the same MiniLM, Chroma, top-4 "
        "similarity search, the top chunk as its answer, never refusing.",
    ]
    if llm_check:
        try:
            llm_bot = Assistant(
                bot.settings,
                embeddings=embeddings,
                client=getattr(getattr(bot, "index", None), "client", None),
                chat_model=fake_chat_model(),
            )
            reports.append(evaluate(llm_bot, cases, name="llm-fake"))
            notes.append(
                "`llm-fake` is the LLM answerer on a fake chat model that always replies "
                f"{FAKE_LLM_REPLY!r}: it shows the harness scores any answerer, not a quality "
                "measure; no thresholds apply."
            )
        except Exception as exc:  # the check is informational; say why it could not run
            notes.append(f"The LLM answerer check could not run: {type(exc).__name__}: {exc}")
    checks = check_thresholds(ours.metrics, thresholds)

    stream.write(render_text(reports, checks, cases))
    for note in notes[1:]:
        stream.write(note + "\n")
    if holdout is not None:
        stream.write(render_holdout_text(holdout))
    if json_path is not None:
        payload = {
            "cases_file": str(cases_path),
            "thresholds_file": str(thresholds_path),
            "passed": all(check.ok for check in checks),
            "thresholds": [{**asdict(c), "ok": c.ok} for c in checks],
            "systems": {report.name: report.to_dict(cases) for report in reports},
            "holdout": _holdout_dict(holdout),
            "notes": notes,
        }
        _write(Path(json_path), json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    if markdown_path is not None:
        _write(Path(markdown_path), render_markdown(reports, checks, cases, notes, holdout))
    return 0 if all(check.ok for check in checks) else 1


def _holdout_dict(holdout: HeldOut | None) -> dict[str, Any] | None:
    """The held-out set for the JSON report: aggregates only, no cases, no thresholds."""
    if holdout is None:
        return None
    return {
        "cases_file": holdout.file,
        "thresholds": None,
        "systems": {
            report.name: {
                "metrics": asdict(report.metrics),
                "failures_by_kind": failures_by_kind(report),
            }
            for report in holdout.reports
        },
    }


def _project_file(relative: Path) -> Path:
    """``evals/...`` in the working directory, else next to the source checkout."""
    if relative.exists():
        return relative
    return Path(__file__).resolve().parents[2] / relative


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
