"""The command line as a user runs it, and settings from arguments and the environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Settings
from assistant.answer.compose import REFUSAL
from conftest import run_cli


@pytest.fixture(scope="module")
def cli_root(workspace, bot, tmp_path_factory) -> Path:
    """A copy of the session's corpus and index for the command line, which names documents by
    their paths relative to it: run in the session's own folder, its ingest left a generation
    whose names the session's assistant (absolute paths) did not find, failing a later test of
    test_llm_answerer on the same pytest-xdist worker."""
    root = tmp_path_factory.mktemp("cli")
    for folder in ("corpus", "index"):
        shutil.copytree(workspace / folder, root / folder)
    return root


def test_ask_json_cites_the_hospital_with_an_exact_quote(cli_root):
    result = run_cli(cli_root, "ask", "--json", "Which hospital will run the trial?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["refused"] is False
    citation = answer["citations"][0]
    assert "Third Affiliated Hospital of Sun Yat-sen University" in citation["quote"]
    text = (cli_root / citation["source"]).read_text(encoding="utf-8")
    assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_a_refusal_shows_the_closest_passages(cli_root):
    result = run_cli(cli_root, "ask", "Who is the CEO of XellSmart?")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == REFUSAL
    assert "Closest passages, not confirmed to answer this:" in lines
    text = (cli_root / "corpus" / "xellsmart-sci-trial-announcement.txt").read_text("utf-8")
    for line in lines[lines.index("Closest passages, not confirmed to answer this:") + 1 :]:
        place, quote = line.strip().split(" ", 1)
        start, end = map(int, place.rsplit(":", 1)[1].split("-"))
        assert text[start:end] == quote.strip('"')


def test_errors_are_one_line_and_a_non_zero_exit(cli_root):
    result = run_cli(cli_root, "ask", "   ")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: the question is empty: ask something about the documents"
    ]
    (cli_root / "not-a-folder").write_text("x")
    result = run_cli(cli_root, "--corpus-dir", "missing", "ingest")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_ingest_on_a_current_index_embeds_nothing(cli_root):
    result = run_cli(cli_root, "ingest")
    assert result.returncode == 0, result.stderr
    assert "0 spans embedded" in result.stdout


def test_chat_answers_in_the_terminal(cli_root):
    result = run_cli(cli_root, "chat", input="What is XS228?\nWhen did it get FDA approval?\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("2023") >= 2


def test_help_lists_the_commands():
    result = run_cli(Path.cwd(), "--help")
    for command in ("ingest", "ask", "chat", "serve", "eval"):
        assert command in result.stdout


def test_importing_the_package_loads_no_model_and_no_gradio():
    code = (
        "import sys, assistant, assistant.cli; "
        "print(sorted(m for m in ('gradio', 'torch', 'sentence_transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_a_cold_answer_imports_no_torch(cli_root):
    """spaCy's thinc imports torch whenever it is installed (1.4 s of a 4 s cold `assistant
    ask`); answering needs neither torch nor sentence-transformers, nor LangChain's retriever
    and tracing machinery (half a second). Python's own import log (``PYTHONPROFILEIMPORTTIME``)
    names every module the command imported."""
    question = "Which hospital will run the trial?"
    result = run_cli(cli_root, "ask", question, more_env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    assert "Third Affiliated Hospital" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "spacy" in imported
    # thinc's attempt is logged as "torch" even when it fails: a loaded torch has submodules
    assert not [name for name in imported if name.startswith(("torch.", "sentence_transformers"))]
    unneeded = ("langchain_core.retrievers", "langchain_core.tracers", "langsmith.run_trees")
    assert not [name for name in imported if name.startswith(unneeded)]


def test_settings_come_from_arguments_then_environment_then_defaults():
    environ = {
        "ASSISTANT_K": "7",
        "ASSISTANT_INDEX_DIR": "/tmp/x",
        "ASSISTANT_ANSWERER": "ollama:m",
    }
    settings = Settings.load(environ=environ, k=3)
    assert settings.k == 3 and settings.index_dir == Path("/tmp/x")
    assert settings.answerer == "ollama:m" and settings.corpus_dir == Path("corpus")
    with pytest.raises(AttributeError):
        settings.k = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="whole number"):
        Settings.load(environ={"ASSISTANT_K": "many"})
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.load(environ={}, colour="blue")
