"""Running systems on eval sets: ``evaluate``, ``collect`` and the ``assistant eval`` command.

A *system* is anything with ``ask(question, history) -> Answer`` and, optionally,
``retrieve(question, history) -> list[Document]`` (``Assistant``, ``TutorialBaseline``), or a
plain function ``(question, history) -> Answer``.

The sets (``SET_NAMES``): ``golden`` (``evals/cases.yaml`` over the product corpus, gated by
``evals/thresholds.yaml``) and the multi-document sets in ``evals/corpora/<set>/``, each
answered from its own folder with its own index cache in ``evals/.index/<set>``: ``fit``
(fitting the answerer's scorer; reported), ``dev`` (choosing thresholds; gated by its own
``thresholds.yaml``), and the held-out sets, reported as aggregates only and never gated:
``heldout``, and ``heldout2``, written later to briefs no other set uses, once ``heldout``'s
aggregate had been used to choose between answerers.  Two sets ask about the product's own
release in words nothing was fitted on, each over a copy of it in its folder: ``release``
(listed case by case, so a dev set) and ``release-heldout`` (held out, to briefs of its own):
the golden set is fitted on, so they say whether its figures carry to new wording.  One
embeddings model is shared by every set and the baseline, so it loads once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from langchain_core.documents import Document

from assistant.answer.types import Answer
from assistant.evals.cases import Case, load_cases
from assistant.evals.metrics import (
    NOT_THRESHOLDS,
    Metrics,
    Report,
    aggregate,
    check_thresholds,
)
from assistant.evals.report import SetRun, render_markdown, render_text, to_json
from assistant.evals.scoring import Sources, score_case

SET_NAMES = ("golden", "release", "fit", "dev", "heldout", "heldout2", "release-heldout")
DEFAULT_SETS = ("golden", "release", "dev", "heldout", "heldout2", "release-heldout")
GATED = ("golden", "dev")
HELD_OUT = ("heldout", "heldout2", "release-heldout")
BASELINE_NOTE = (
    "`baseline` is the LangChain tutorial pipeline: RecursiveCharacterTextSplitter 1000/200, "
    "the packaged MiniLM (without our tuning), Chroma, top-4 similarity search, the top chunk "
    "as its answer, never refusing."
)
READER_NOTE = (
    "`reader` is ours with the trained reader deciding (`ASSISTANT_READER=true`), on the same "
    "index and retrieval."
)
FAKE_LLM_REPLY = (
    "The clinical trial will be conducted at the Third Affiliated Hospital of Sun Yat-sen "
    "University [1]."
)

AnswerFn = Callable[[str, Sequence[tuple[str, str]]], Answer]


# ---------------------------------------------------------------- one system on one set


def evaluate(
    system: Any,
    cases: Sequence[Case],
    name: str = "ours",
    corpus_dir: Path | None = None,
    warm_up: bool = True,
) -> Report:
    """Run every case through ``system`` and score it; retrieval is scored when it has
    ``retrieve``.  An exception from the system fails that case, not the run.  ``warm_up``
    asks the first question once, untimed, so model loading is not counted as latency."""
    ask: AnswerFn = system.ask if hasattr(system, "ask") else system
    retrieve = getattr(system, "retrieve", None)
    if corpus_dir is None and hasattr(system, "settings"):
        corpus_dir = Path(system.settings.corpus_dir)
    sources = Sources(corpus_dir)
    if cases and warm_up:
        with contextlib.suppress(Exception):  # warm-up: load models, open the index
            ask(cases[0].question, cases[0].history)
    results = []
    for case in cases:
        started = time.perf_counter()
        try:
            answer, error = ask(case.question, case.history), None
        except Exception as exc:
            answer, error = Answer(text="", citations=[]), f"{type(exc).__name__}: {exc}"
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


def collect(system: Any, cases: Sequence[Case]) -> list[tuple[Case, Answer, list[Document]]]:
    """Each case with the system's answer and the documents it retrieved (none when it has no
    ``retrieve``; ``system`` as for ``evaluate``): the raw material for fitting an answerer's
    scorer.  Exceptions propagate, since fitting data with holes would mislead."""
    ask: AnswerFn = system.ask if hasattr(system, "ask") else system
    retrieve = getattr(system, "retrieve", None)
    rows = []
    for case in cases:
        answer = ask(case.question, case.history)
        documents = list(retrieve(case.question, case.history)) if retrieve else []
        rows.append((case, answer, documents))
    return rows


# ---------------------------------------------------------------- sets and thresholds


@dataclass(frozen=True)
class EvalSet:
    """Where a set's cases and documents are, and whether it is gated or held out.

    ``corpus_dir`` None means the product corpus in the settings (the golden set)."""

    name: str
    cases_path: Path
    corpus_dir: Path | None = None
    thresholds_path: Path | None = None
    held_out: bool = False


def eval_set(name: str, project: Path) -> EvalSet:
    """The named set under ``project``; raises ``ValueError`` for an unknown name."""
    evals = project / "evals"
    if name == "golden":
        return EvalSet(name, evals / "cases.yaml", None, evals / "thresholds.yaml")
    if name not in SET_NAMES:
        raise ValueError(f"unknown eval set {name!r}: one of {', '.join(SET_NAMES)}")
    folder = evals / "corpora" / name
    thresholds = folder / "thresholds.yaml" if name in GATED else None
    return EvalSet(name, folder / "cases.yaml", folder, thresholds, held_out=name in HELD_OUT)


def load_thresholds(path: Path | str) -> dict[str, dict[str, float]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    known = set(Metrics.__dataclass_fields__) - set(NOT_THRESHOLDS)
    for bound in ("min", "max"):
        unknown = set(data.get(bound) or {}) - known
        if unknown:
            raise ValueError(
                f"{path}: unknown metric(s) under {bound}: {', '.join(sorted(unknown))}"
            )
    return {"min": dict(data.get("min") or {}), "max": dict(data.get("max") or {})}


def project_dir() -> Path:
    """The project whose ``evals/`` is used: the working directory when it has one, else the
    source checkout this module lives in."""
    if Path("evals").is_dir():
        return Path(".")
    return Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- the command


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
    sets: Sequence[str | EvalSet] | None = None,
    project: Path | None = None,
    index_root: Path | None = None,
    llm_check: bool = True,
    reader: bool = False,
    bot: Any = None,
    embeddings: Any = None,
    make_system: Callable[[EvalSet, Any], Any] | None = None,
) -> int:
    """``assistant eval``: ours and the baseline on each set (``DEFAULT_SETS`` unless named;
    a default set whose folder is missing is skipped with a note), plus the LLM answerer on
    a fake chat model on the golden set, and with ``reader`` ours with the trained reader
    deciding (informational, never gated: it reads eight sentences a question, so it takes
    most of a whole run's time); prints, writes the reports asked for, and returns 1 when a
    gated set misses a threshold, else 0.

    ``bot`` answers the golden set (default: an ``Assistant`` on ``settings``);
    ``make_system(eval_set, embeddings)`` answers the other sets (default: an ``Assistant``
    over the set's folder with its index in ``index_root/<set>``)."""
    project = Path(project) if project is not None else project_dir()
    index_root = Path(index_root) if index_root is not None else project / "evals" / ".index"
    chosen = [s if isinstance(s, EvalSet) else eval_set(s, project) for s in sets or DEFAULT_SETS]
    notes = [BASELINE_NOTE, *([READER_NOTE] if reader else [])]
    if sets is None:
        missing = [s for s in chosen if s.name != "golden" and not s.cases_path.is_file()]
        notes += [f"Set `{s.name}` skipped: {s.cases_path} does not exist." for s in missing]
        chosen = [s for s in chosen if s not in missing]
    if embeddings is None:
        embeddings = getattr(bot, "embeddings", None) or _load_embeddings(settings)
    if make_system is None:
        make_system = _set_assistant(settings, index_root)

    runs = []
    loader_log = logging.getLogger("assistant.load")
    loader_log.addFilter(_skip_set_labels)
    try:
        for es in chosen:
            runs.append(
                _run_set(es, project, settings, bot, embeddings, make_system, llm_check, reader)
            )
    finally:
        loader_log.removeFilter(_skip_set_labels)

    stream.write(render_text(runs))
    stream.write("".join(note + "\n" for note in notes))
    if json_path is not None:
        _write(Path(json_path), json.dumps(to_json(runs, notes), indent=2, ensure_ascii=False))
    if markdown_path is not None:
        _write(Path(markdown_path), render_markdown(runs, notes))
    return 0 if all(run.passed for run in runs) else 1


def _run_set(
    es: EvalSet,
    project: Path,
    settings: Any,
    bot: Any,
    embeddings: Any,
    make_system: Callable[[EvalSet, Any], Any],
    llm_check: bool,
    reader: bool,
) -> SetRun:
    """Ours, with ``reader`` ours with the reader deciding, and the baseline (and on the
    golden set the fake-LLM check) on one set."""
    from assistant import Assistant
    from assistant.evals.baseline import TutorialBaseline

    cases = load_cases(es.cases_path, root=project)
    if es.corpus_dir is None:
        system = bot if bot is not None else _assistant(settings, embeddings)
    else:
        system = make_system(es, embeddings)
    corpus_dir = Path(es.corpus_dir or system.settings.corpus_dir)
    baseline = TutorialBaseline(corpus_dir, embeddings=_tutorial_embeddings(embeddings))
    reports = [evaluate(system, cases, name="ours", corpus_dir=corpus_dir)]
    if reader and isinstance(system, Assistant) and not system.settings.reader:
        reading = Assistant(
            system.settings.replace(reader=True),
            embeddings=embeddings,
            client=system.index.client,
            build_index=False,
        )
        reports.append(evaluate(reading, cases, name="reader", corpus_dir=corpus_dir))
    reports.append(evaluate(baseline, cases, name="baseline", corpus_dir=corpus_dir))
    run = SetRun(es.name, str(es.cases_path), str(corpus_dir), reports, cases)
    run.per_case = not es.held_out
    if es.thresholds_path is not None:
        run.thresholds_file = str(es.thresholds_path)
        run.checks = check_thresholds(reports[0].metrics, load_thresholds(es.thresholds_path))
    if es.name == "golden" and llm_check:
        _llm_check(run, system, embeddings)
    return run


def _skip_set_labels(record: logging.LogRecord) -> bool:
    """A set folder holds its cases.yaml and thresholds.yaml beside the documents; the
    loader's warning that it skips them is noise."""
    return not (record.args and str(record.args[0]).endswith(".yaml"))


def _llm_check(run: SetRun, system: Any, embeddings: Any) -> None:
    """Add the LLM answerer on a fake chat model to the golden run: informational only."""
    from assistant import Assistant

    try:
        llm_bot = Assistant(
            system.settings,
            embeddings=embeddings,
            client=getattr(getattr(system, "index", None), "client", None),
            chat_model=fake_chat_model(),
        )
        run.reports.append(evaluate(llm_bot, run.cases, name="llm-fake"))
        run.notes.append(
            "`llm-fake` is the LLM answerer on a fake chat model that always replies "
            f"{FAKE_LLM_REPLY!r}: it shows the harness scores any answerer, not a quality "
            "measure; no thresholds apply."
        )
    except Exception as exc:  # the check is informational; say why it could not run
        run.notes.append(f"The LLM answerer check could not run: {type(exc).__name__}: {exc}")


def _tutorial_embeddings(embeddings: Any) -> Any:
    """The baseline's model: ours without the tuning, as the tutorial would load it (a gain
    from the tuning is ours to show), or ``embeddings`` when they are another model."""
    from assistant.embed import MiniLMEmbeddings

    if isinstance(embeddings, MiniLMEmbeddings) and embeddings.tuning is not None:
        return _packaged(embeddings.cache_dir)
    return embeddings


@functools.cache
def _packaged(cache_dir: Path | None) -> Any:
    from assistant.embed import MiniLMEmbeddings

    return MiniLMEmbeddings(cache_dir=cache_dir, tuned=False)


def _load_embeddings(settings: Any) -> Any:
    from assistant.embed import load_embeddings

    return load_embeddings(cache_dir=settings.index_dir)


def _assistant(settings: Any, embeddings: Any) -> Any:
    from assistant import Assistant

    return Assistant(settings, embeddings=embeddings)


def _set_assistant(settings: Any, index_root: Path) -> Callable[[EvalSet, Any], Any]:
    """An ``Assistant`` over a set's folder, its index cached per set (always local)."""

    def make(es: EvalSet, embeddings: Any) -> Any:
        own = settings.replace(
            corpus_dir=es.corpus_dir, index_dir=index_root / es.name, chroma_host=None
        )
        return _assistant(own, embeddings)

    return make


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
