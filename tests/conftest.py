"""Shared fixtures: the real model and a real Chroma index, built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PROJECT = Path(__file__).resolve().parent.parent
CORPUS_FILE = PROJECT / "corpus" / "xellsmart-sci-trial-announcement.txt"


def shown(answer) -> str:
    """What a reader sees of an answer: its text and, for a refusal, the closest passages.

    Tests of the index and its recovery check that the right text is served with this, not
    whether the answerer decides to answer (that is the evals' job)."""
    return " ".join([answer.text, *(passage.text for passage in answer.closest)])


@pytest.fixture(scope="session")
def embeddings(tmp_path_factory):
    """The packaged MiniLM, loaded once for the whole session, with its fast question path."""
    from assistant.embed import load_embeddings

    model = load_embeddings(cache_dir=tmp_path_factory.mktemp("model-cache"))
    model.prepare_fast_queries()
    model.embed_query("warm up")
    return model


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A working folder holding a copy of the corpus, with index and data folders beside it."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "corpus").mkdir()
    shutil.copy(CORPUS_FILE, root / "corpus" / CORPUS_FILE.name)
    return root


@pytest.fixture(scope="session")
def bot(workspace, embeddings):
    """One Assistant over the copied corpus, its index built once (sources are absolute)."""
    from assistant import Assistant, Settings

    settings = Settings.load(
        environ={},
        corpus_dir=workspace / "corpus",
        index_dir=workspace / "index",
        data_dir=workspace / "data",
    )
    return Assistant(settings, embeddings=embeddings)


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return CORPUS_FILE.read_text(encoding="utf-8")
