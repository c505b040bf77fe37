"""The command line: ``assistant ingest | ask | chat | serve | eval | feedback export``.

Errors are one line on stderr and a non-zero exit, never a traceback: the people reading them
are asking questions, not debugging.  Gradio is imported only by ``serve``.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click

from assistant.config import Settings

# A command starts by making some 160,000 objects that live as long as it does (libraries,
# the index's sentences, spaCy's model). With Python's default thresholds the garbage collector
# walks them again and again while they are made, and once more at exit, for nothing: a cold
# `assistant ask` spent a fifth of its time so. As a program (not when a test calls ``main``),
# it collects rarely, and freezes what it holds as it exits so the last collection walks
# nothing; mypy tunes its collector likewise. A cold ask took 2.5 s against 2.9 (2026-12-07).
PROGRAM_GC_THRESHOLDS = (100_000, 50, 100)


def _friendly_errors(command: Callable) -> Callable:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:
            raise click.ClickException(str(error) or type(error).__name__) from None

    return run


class _OneLine(logging.Formatter):
    """Log records as ``warning: ...`` or ``info: ...``: one plain line each."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _assistant(context: click.Context, build_index: bool = True):
    from assistant.assistant import Assistant

    return Assistant(context.obj, build_index=build_index)


def _tell_where_questions_go(settings: Settings) -> None:
    """Say on stderr, before anything is asked, when questions and documents leave this machine."""
    from assistant.answer.llm import remote_notice

    if notice := remote_notice(settings):
        click.echo(notice, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Documents to answer from.")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Where the index is kept.")
@click.option("-k", "--passages", "k", type=click.IntRange(1, 50), help="Chunks retrieved.")
@click.option(
    "--answerer",
    help="'extractive' (default), 'ollama:<model>', 'openai:<model>' or 'local:smollm2' "
    "(a small model run here, for trying the LLM path offline).",
)
@click.pass_context
@_friendly_errors
def main(context: click.Context, **options: Any) -> None:
    """Ask questions about the documents in corpus/ and get answers citing their exact words.

    Every option can also be set as an ASSISTANT_* environment variable
    (ASSISTANT_CORPUS_DIR, ASSISTANT_INDEX_DIR, ASSISTANT_K, ASSISTANT_ANSWERER, ...).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    context.obj = Settings.load(**options)


@main.command()
@click.option("--rebuild", is_flag=True, help="Embed everything again (sets a broken index aside).")
@click.pass_context
@_friendly_errors
def ingest(context: click.Context, rebuild: bool) -> None:
    """Build or update the index (only changed files are embedded again)."""
    logging.getLogger("assistant").setLevel(logging.INFO)  # progress, even without a terminal
    report = _assistant(context, build_index=False).ingest(rebuild=rebuild)
    click.echo(
        f"{report.documents} documents: {report.embedded} spans embedded, "
        f"{report.kept} kept, {report.removed} removed"
    )


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: text, refused, citations.")
@click.pass_context
@_friendly_errors
def ask(context: click.Context, question: str, as_json: bool) -> None:
    """Answer one QUESTION with citations."""
    _tell_where_questions_go(context.obj)
    answer = _assistant(context).ask(question)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(answer.text)
    for citation in answer.citations:
        click.echo(
            f'  [{citation.n}] {citation.source}:{citation.start}-{citation.end} "{citation.quote}"'
        )
    if answer.closest:
        click.echo(
            "Closest passages, not confirmed to answer this:"
            if answer.refused
            else "Other close passages, not confirmed to answer this:"
        )
    for passage in answer.closest:
        best = passage.text[passage.best_start - passage.start : passage.best_end - passage.start]
        click.echo(f'  {passage.source}:{passage.best_start}-{passage.best_end} "{best}"')


@main.command()
@click.pass_context
@_friendly_errors
def chat(context: click.Context) -> None:
    """A conversation in the terminal (an empty line or Ctrl-D ends it)."""
    _tell_where_questions_go(context.obj)
    bot = _assistant(context)
    history: list[tuple[str, str]] = []
    click.echo("Ask about the documents. An empty line or Ctrl-D ends the conversation.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        click.echo("assistant> ", nl=False)
        shown = ""
        for answer in bot.stream_answers(question, history):
            fresh = answer.text.startswith(shown)
            click.echo(answer.text[len(shown) :] if fresh else f"\n{answer.text}", nl=False)
            shown = answer.text
        click.echo()
        for citation in answer.citations:
            click.echo(f"  [{citation.n}] {citation.source}:{citation.start}-{citation.end}")
        history.append((question, answer.text))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
@_friendly_errors
def serve(context: click.Context, host: str, port: int) -> None:
    """Start the chat page (and its /ask API)."""
    from assistant.web.app import serve as serve_page

    _tell_where_questions_go(context.obj)
    serve_page(context.obj, host=host, port=port)


@main.command(name="eval")
@click.option(
    "--set",
    "sets",
    multiple=True,
    type=click.Choice(  # runner.SET_NAMES, written out: importing it would slow every start
        ["golden", "release", "fit", "dev", "heldout", "heldout2", "release-heldout"]
    ),
    help="An eval set to score (repeatable) [default: all but fit].",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write a JSON report.")
@click.option(
    "--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write a Markdown report."
)
@click.option(
    "--reader",
    is_flag=True,
    help="Also score ours with the trained reader deciding (ungated; 3.5 times the run's time).",
)
@click.pass_context
@_friendly_errors
def evaluate(
    context: click.Context,
    sets: tuple[str, ...],
    json_path: Path | None,
    markdown_path: Path | None,
    reader: bool,
) -> None:
    """Score the answerer and the baseline on the eval sets in evals/; exit 1 when a gated set
    (golden, dev) misses a threshold. The held-out sets are reported as aggregates only."""
    from assistant.evals import run_eval_command

    code = run_eval_command(
        context.obj,
        json_path,
        markdown_path,
        stream=sys.stdout,
        sets=list(sets) or None,
        reader=reader,
    )
    context.exit(code)


class _UtcTime(click.ParamType):
    """A date (YYYY-MM-DD) or an ISO time, read in UTC; a bad one is a usage error (exit 2)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from assistant.web.feedback import parse_utc

        if isinstance(value, datetime):
            return value
        try:
            return parse_utc(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@main.group()
def feedback() -> None:
    """The chat page's thumbs up and down, kept in <data dir>/feedback.jsonl."""


@feedback.command(name="export")
@click.option(
    "--since", type=_UtcTime(), help="Only votes cast from DATE on (YYYY-MM-DD or ISO time, UTC)."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The drafts file [default: evals/drafts/feedback-<today>.yaml].",
)
@click.option("--force", is_flag=True, help="Replace the drafts file if it exists.")
@click.pass_context
@_friendly_errors
def export_feedback(
    context: click.Context, since: datetime | None, output: Path | None, force: bool
) -> None:
    """Turn thumbs-down votes into draft eval cases for a maintainer to review.

    Each draft needs `answerable`, `facts` and `support` filled in before it can be moved
    into an eval set (the eval loader refuses it until then). Exit status: 0 when drafts were
    written or there was nothing to export; 1 when there is no feedback file, or the drafts
    file exists and --force is not given; 2 for a bad option such as an unreadable DATE.
    """
    from assistant.web.feedback import FEEDBACK_FILE, default_output, export_drafts

    feedback_path = Path(context.obj.data_dir) / FEEDBACK_FILE
    output = output or default_output()
    count = export_drafts(feedback_path, output, since=since, force=force)
    if not count:
        after = f" since {since.isoformat()}" if since else ""
        click.echo(f"No thumbs-down votes{after} in {feedback_path}: no drafts written.")
        return
    cases = "case" if count == 1 else "cases"
    click.echo(
        f"Wrote {count} draft eval {cases} to {output}: fill in answerable, facts and support, "
        "then move each case into evals/cases.yaml or evals/corpora/<set>/cases.yaml."
    )


def run() -> None:
    """The ``assistant`` program: ``main``, with the collector tuned for a command's life."""
    gc.set_threshold(*PROGRAM_GC_THRESHOLDS)
    atexit.register(gc.freeze)
    main()


if __name__ == "__main__":
    run()
