"""A damaged index: a clear one-line error naming the repair, and `ingest --rebuild` recovers
from the corpus while keeping the damaged files aside.  One row per kind of damage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant import Assistant, Settings
from assistant.index import IndexUnavailable
from conftest import PROJECT, shown

QUESTION = "Which hospital will run the trial?"
FACT = "Third Affiliated Hospital"


def settings_in(root: Path) -> Settings:
    return Settings.load(
        environ={}, corpus_dir=root / "corpus", index_dir=root / "index", data_dir=root / "data"
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory, workspace, embeddings) -> Path:
    """The product's corpus and its built index, copied (never used) by each test."""
    root = tmp_path_factory.mktemp("small")
    shutil.copytree(workspace / "corpus", root / "corpus")
    Assistant(settings_in(root), embeddings=embeddings)
    return root


@pytest.fixture(scope="module")
def large(tmp_path_factory, workspace, embeddings) -> Path:
    """A folder with a corpus and its built index, copied (never used) by each row.  The
    corpus is large enough (over a thousand sentences) that Chroma keeps its vectors in its
    HNSW files, not only in its write-ahead log."""
    root = tmp_path_factory.mktemp("large")
    shutil.copytree(workspace / "corpus", root / "corpus")
    for document in (PROJECT / "evals" / "corpora").glob("*/*.txt"):
        shutil.copy(document, root / "corpus" / document.name)
    Assistant(settings_in(root), embeddings=embeddings)
    return root


def segment_folders(index: Path) -> list[Path]:
    return sorted(p for p in index.iterdir() if p.is_dir() and p.name.count("-") == 4)


def random_bytes_in_database(index: Path) -> None:
    with (index / "chroma.sqlite3").open("r+b") as database:
        database.seek(4096 * 20)
        database.write(os.urandom(4096 * 8))


def database_replaced_by_text(index: Path) -> None:
    (index / "chroma.sqlite3").write_bytes(b"this is not a database")


def segment_folder_deleted(index: Path) -> None:
    shutil.rmtree(segment_folders(index)[0])


def vectors_truncated(index: Path) -> None:
    for vectors in index.glob("*/data_level0.bin"):
        with vectors.open("r+b") as file:
            file.truncate(vectors.stat().st_size // 3)


def headers_truncated(index: Path) -> None:
    for header in index.glob("*/header.bin"):
        header.write_bytes(header.read_bytes()[:10])


DAMAGE: dict[str, Callable[[Path], None]] = {
    "32 KB of random bytes inside chroma.sqlite3": random_bytes_in_database,
    "a segment folder deleted": segment_folder_deleted,
    "data_level0.bin files truncated": vectors_truncated,
    "header.bin files truncated": headers_truncated,
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_is_reported_then_rebuild_recovers_keeping_it_aside(
    tmp_path, large, embeddings, damage
):
    shutil.copytree(large, tmp_path, dirs_exist_ok=True)
    index = tmp_path / "index"
    damage(index)
    files = {path.relative_to(index) for path in index.rglob("*") if path.is_file()}
    try:  # either the damage is reported in one line naming the repair, or Chroma mends it
        serves_the_corpus(Assistant(settings_in(tmp_path), embeddings=embeddings))
        reported = False  # mended in place by Chroma: nothing was lost
    except IndexUnavailable as error:
        reported = True
        assert "--rebuild" in str(error) and "\n" not in str(error), str(error)

    bot = Assistant(settings_in(tmp_path), embeddings=embeddings, build_index=False)
    report = bot.ingest(rebuild=True)
    record = bot.index.record()
    assert report.embedded == len(
        {span.text for kind in ("chunks", "sentences") for span in bot.index.spans(kind)}
    ), "every distinct span text embedded again, no vector re-used"
    assert record.count("chunks") and record.count("sentences")
    if reported:  # Chroma's files moved aside, every one of them: nothing deleted
        assert report.set_aside is not None
        kept = {path.relative_to(report.set_aside) for path in report.set_aside.rglob("*")}
        chroma_files = {path for path in files if path.parts[0].count("-") == 4}
        assert chroma_files <= kept and Path("chroma.sqlite3") in kept
    serves_the_corpus(bot)
    serves_the_corpus(Assistant(settings_in(tmp_path), embeddings=embeddings))


def serves_the_corpus(bot: Assistant) -> None:
    """Every document's spans are stored and searchable (what an answer is drawn from)."""
    sentences = bot.index.spans("sentences")
    assert any(FACT in span.text for span in sentences)
    assert {span.source for span in sentences} == {
        str(path) for path in (bot.settings.corpus_dir).iterdir()
    }
    assert len(bot.retrieve(QUESTION)) == bot.settings.k


def test_the_cli_names_the_damage_and_the_repair(tmp_path, small):
    shutil.copytree(small, tmp_path, dirs_exist_ok=True)
    database_replaced_by_text(tmp_path / "index")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "assistant.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "ASSISTANT_INDEX_DIR": "index", "ASSISTANT_CORPUS_DIR": "corpus"},
        )

    broken = cli("ask", QUESTION)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "cannot be opened" in broken.stderr and "--rebuild" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr

    rebuilt = cli("ingest", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "set the old index aside" in rebuilt.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.set-aside-")]
    assert len(aside) == 1
    assert (aside[0] / "chroma.sqlite3").read_bytes() == b"this is not a database"

    answered = cli("ask", QUESTION, "--json")
    assert answered.returncode == 0 and FACT in answered.stdout


def test_other_embeddings_never_reuse_vectors_small_by_another_model(tmp_path, small, embeddings):
    shutil.copytree(small, tmp_path, dirs_exist_ok=True)
    other = DeterministicFakeEmbedding(size=384)
    bot = Assistant(settings_in(tmp_path), embeddings=other)
    assert bot.ingest().embedded == 0  # built once for these embeddings, then current
    generation = bot.index.generation
    assert bot.index.record().count("sentences") > 0
    back = Assistant(settings_in(tmp_path), embeddings=embeddings)
    assert back.index.generation != generation, "MiniLM does not answer from the fake's vectors"
    assert FACT in shown(back.ask(QUESTION))


def test_citations_count_in_the_text_as_indexed_whatever_happens_to_the_file(
    tmp_path, small, embeddings
):
    shutil.copytree(small, tmp_path, dirs_exist_ok=True)
    bot = Assistant(settings_in(tmp_path), embeddings=embeddings)
    document = next((tmp_path / "corpus").iterdir())
    indexed = document.read_text(encoding="utf-8")
    document.write_text("A new first paragraph, written after indexing.\n\n" + indexed)

    answer = Assistant(settings_in(tmp_path), embeddings=embeddings, build_index=False).ask(
        QUESTION
    )
    citations = answer.citations or [p for p in answer.closest]
    assert citations
    for cited in citations:
        text = bot.source_text(cited.source)
        assert text == indexed
        assert text[cited.start : cited.end] == cited.quote


def test_retired_generations_and_their_spans_are_removed(tmp_path, small, embeddings, monkeypatch):
    monkeypatch.setattr("assistant.ingest.RETIRED_KEPT_SECONDS", 0.0)  # readers move on at once
    shutil.copytree(small, tmp_path, dirs_exist_ok=True)
    bot = Assistant(settings_in(tmp_path), embeddings=embeddings)
    document = next((tmp_path / "corpus").iterdir())
    for edit in range(4):
        document.write_text(document.read_text(encoding="utf-8") + f"\n\nEdit number {edit}.")
        bot.ingest()
    record = bot.index.record()
    for kind in ("chunks", "sentences", "texts"):  # no span of an earlier version is left
        assert bot.index.held(kind) == record.count(kind), kind
    names = {c.name for c in bot.index.client.list_collections()}
    assert names == {"assistant-manifest", "assistant-generations"} | {
        f"assistant-{kind}-{segment}"
        for kind in ("chunks", "sentences", "texts")
        for segment in record.segments
    }
    assert bot.index.client.get_collection("assistant-generations").count() == 1
    assert len(segment_folders(tmp_path / "index")) <= 4  # chunks, sentences, texts, records
    snapshots = [p for p in (tmp_path / "index" / "snapshots").iterdir() if p.is_dir()]
    assert len(snapshots) <= 3


def test_a_reader_whose_generation_is_gone_answers_from_the_newest(
    tmp_path, small, embeddings, monkeypatch
):
    monkeypatch.setattr("assistant.ingest.RETIRED_KEPT_SECONDS", 0.0)  # deleted at once
    shutil.copytree(small, tmp_path, dirs_exist_ok=True)
    reader = Assistant(settings_in(tmp_path), embeddings=embeddings)
    reader.ask(QUESTION)  # its generation is loaded and will not be looked up for a while
    document = next((tmp_path / "corpus").iterdir())
    writer = Assistant(settings_in(tmp_path), embeddings=embeddings, build_index=False)
    for edit in range(2):  # the reader's generation is retired, then deleted
        document.write_text(document.read_text(encoding="utf-8") + f"\n\nEdit {edit}.")
        writer.ingest()
    assert FACT in shown(reader.ask(QUESTION))
    assert reader.retrieve(QUESTION)
