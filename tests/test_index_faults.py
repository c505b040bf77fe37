"""A damaged index: a clear one-line error naming the repair, and `ingest --rebuild` recovers
from the corpus while keeping the damaged files aside.  One row per kind of damage."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

import index_kills
from assistant import Assistant
from assistant.answer.language import nlp
from assistant.index import KINDS, Index, IndexUnavailable
from assistant.ingest import sync
from conftest import PROJECT, run_cli, shown, with_model_export
from index_kills import RememberedParses, RememberedSentences, RememberedVectors, settings_in

QUESTION = "Where will the spinal cord injury trial be conducted?"  # right among 200 documents too
FACT = "Third Affiliated Hospital"


@pytest.fixture(scope="module")
def small(tmp_path_factory, workspace, embeddings) -> Path:
    """The product's corpus and its built index (beside the model's export, as a program run
    there leaves it), copied (never used) by each test."""
    root = tmp_path_factory.mktemp("small")
    shutil.copytree(workspace / "corpus", root / "corpus")
    with_model_export(root / "index", embeddings)
    Assistant(settings_in(root), embeddings=embeddings)
    return root


MEDIUM_DOCUMENTS = 31  # eval documents beside the product's: 1,058 sentences


class Remembered:
    """What building the medium corpus computes from its text alone (vectors, sentences,
    parses), kept for the module: its tests rebuild the same thousand sentences, which would
    otherwise take most of their time, and the damage they test is in what is stored."""

    def __init__(self, vector_memory: RememberedVectors) -> None:
        self.vectors = vector_memory
        self.sentences = RememberedSentences({})
        self.parses = RememberedParses(nlp())

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> RememberedVectors:
        """Ingests split and read from memory; returns the embeddings to build with."""
        monkeypatch.setattr("assistant.ingest.split_sentences", self.sentences)
        monkeypatch.setattr("assistant.answer.collection.nlp", lambda: self.parses)
        return self.vectors


@pytest.fixture(scope="module")
def remembered(vector_memory) -> Remembered:
    return Remembered(vector_memory)


@pytest.fixture(scope="module")
def medium(tmp_path_factory, workspace, remembered) -> Path:
    """A folder with a corpus and its built index, copied (never used) by each test: just
    over a thousand sentences (``index_kills.FLUSH_AT``), so Chroma writes the sentences'
    vectors to its HNSW files once, near the end of their ingest."""
    root = tmp_path_factory.mktemp("medium")
    shutil.copytree(workspace / "corpus", root / "corpus")
    for document in sorted((PROJECT / "evals" / "corpora").glob("*/*.txt"))[:MEDIUM_DOCUMENTS]:
        shutil.copy(document, root / "corpus" / document.name)
    with pytest.MonkeyPatch.context() as monkeypatch:
        Assistant(settings_in(root), embeddings=remembered.apply(monkeypatch))
    return root


def segment_folders(index: Path) -> list[Path]:
    return sorted(p for p in index.iterdir() if p.is_dir() and p.name.count("-") == 4)


def snapshot_file(index: Path, name: str) -> Path:
    """A file of the (one) snapshot of a freshly built index."""
    (meta,) = (index / "snapshots").glob("*/meta.json")
    return meta.parent / name


def random_bytes_in_database(index: Path) -> None:
    with (index / "chroma.sqlite3").open("r+b") as database:
        database.seek(4096 * 20)
        database.write(os.urandom(4096 * 8))


def database_replaced_by_text(index: Path) -> None:
    (index / "chroma.sqlite3").write_bytes(b"this is not a database")


def segment_folder_deleted(index: Path) -> None:
    shutil.rmtree(segment_folders(index)[0])


def truncated(*names: str) -> Callable[[Path], None]:
    """Damage cutting each file matching one of ``names`` (globs under the index) to a third."""

    def damage(index: Path) -> None:
        files = [path for name in names for path in index.glob(name)]
        assert files, names
        for path in files:
            os.truncate(path, path.stat().st_size // 3)

    return damage


def garbled(name: str, at: float = 0.5, size: int = 4096) -> Callable[[Path], None]:
    """Damage writing ``size`` random bytes over each file matching ``name`` (a glob under
    the index), from ``at`` of its length (bytes past its end are not written)."""

    def damage(index: Path) -> None:
        files = list(index.glob(name))
        assert files, name
        for path in files:
            length = path.stat().st_size
            start = int(length * at)
            with path.open("r+b") as file:
                file.seek(start)
                file.write(os.urandom(min(size, length - start)))

    return damage


def sentence_vectors_nan(index: Path) -> None:
    vectors = np.load(snapshot_file(index, "sentences.npy"), mmap_mode="r+")
    vectors[:] = np.nan
    vectors.flush()


def manifest_entry(key: str, value: str) -> Callable[[Path], None]:
    """Damage setting the manifest's ``key`` to ``value`` in Chroma's database, as a crash or
    a hand edit might leave it."""

    def damage(index: Path) -> None:
        with sqlite3.connect(index / "chroma.sqlite3") as database:
            changed = database.execute(
                "UPDATE collection_metadata SET str_value = ? WHERE key = ? AND collection_id ="
                " (SELECT id FROM collections WHERE name = 'assistant-manifest')",
                (value, key),
            ).rowcount
        assert changed == 1, key

    return damage


SNAPSHOT = "snapshots/*/"
BM25 = SNAPSHOT + "bm25/"
DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {  # damage: (fixture, how)
    "32 KB of random bytes inside chroma.sqlite3": ("medium", random_bytes_in_database),
    "chroma.sqlite3 replaced by text": ("small", database_replaced_by_text),
    "a segment folder deleted": ("medium", segment_folder_deleted),
    "data_level0.bin files truncated": ("medium", truncated("*/data_level0.bin")),
    "header.bin files truncated": ("medium", truncated("*/header.bin")),
    "length.bin files truncated": ("medium", truncated("*/length.bin")),
    "manifest: retired is not JSON": ("small", manifest_entry("retired", '{"a": 1, "b": ')),
    "manifest: building is not JSON": ("small", manifest_entry("building", '{"segment": ')),
    "manifest: retired is a list": ("small", manifest_entry("retired", "[1, 2]")),
    "manifest: retired holds no times": ("small", manifest_entry("retired", '{"a": "b"}')),
    "manifest: building names no segment": ("small", manifest_entry("building", '{"plan": 1}')),
    "manifest: no record of the generation": (
        "small",
        manifest_entry("generation", "20000101000000-00000000"),
    ),
    "spans.sqlite truncated": ("small", truncated(SNAPSHOT + "spans.sqlite")),
    "spans.sqlite garbled": ("small", garbled(SNAPSHOT + "spans.sqlite", at=0.3, size=8192)),
    "spans.sqlite header garbled": ("small", garbled(SNAPSHOT + "spans.sqlite", at=0, size=100)),
    "sentences.npy NaN": ("small", sentence_vectors_nan),
    "sentences.npy garbled": ("small", garbled(SNAPSHOT + "sentences.npy", at=0.3)),
    "sentences.npy truncated": ("small", truncated(SNAPSHOT + "sentences.npy")),
    "sentences.npy header garbled": ("small", garbled(SNAPSHOT + "sentences.npy", at=0, size=64)),
    "snapshot meta.json garbled": ("small", garbled(SNAPSHOT + "meta.json", size=64)),
    "snapshot answerer.json garbled": ("small", garbled(SNAPSHOT + "answerer.json", size=64)),
    "snapshot relatives.json truncated": ("small", truncated(SNAPSHOT + "relatives.json")),
    "BM25 arrays truncated": ("small", truncated(BM25 + "*.npy")),
    "BM25 scores garbled": ("small", garbled(BM25 + "data.csc.index.npy")),
    "BM25 vocabulary garbled": ("small", garbled(BM25 + "vocab.index.json")),
    "BM25 parameters truncated": ("small", truncated(BM25 + "params.index.json")),
}


@pytest.mark.parametrize("corpus, damage", list(DAMAGE.values()), ids=list(DAMAGE))
def test_damage_is_reported_then_rebuild_recovers_keeping_it_aside(
    tmp_path, request, embeddings, corpus, damage, monkeypatch
):
    shutil.copytree(request.getfixturevalue(corpus), tmp_path, dirs_exist_ok=True)
    if corpus == "medium":
        embeddings = request.getfixturevalue("remembered").apply(monkeypatch)
    index = tmp_path / "index"
    damage(index)
    files = {path.relative_to(index) for path in index.rglob("*") if path.is_file()}
    # Either the damage is reported in one line naming the repair, or the answer is right
    # (Chroma mends it, or it is in what only an ingest reads).
    reported = not answers_or_names_the_repair(
        lambda: Assistant(settings_in(tmp_path), embeddings=embeddings)
    )
    answers_or_names_the_repair(lambda: after_plain_ingest(tmp_path, embeddings))

    bot = Assistant(settings_in(tmp_path), embeddings=embeddings, build_index=False)
    report = bot.ingest(rebuild=True)
    record = bot.index.record()
    assert report.embedded == len(
        {span.text for kind in ("chunks", "sentences") for span in bot.index.spans(kind)}
    ), "every distinct span text embedded again, no vector re-used"
    assert record.count("chunks") and record.count("sentences")
    if reported:  # the index's files moved aside, every one of them: nothing deleted
        assert report.set_aside is not None
        kept = {path.relative_to(report.set_aside) for path in report.set_aside.rglob("*")}
        index_files = {path for path in files if path.parts[0].count("-") == 4}
        index_files |= {path for path in files if path.parts[0] == "snapshots"}
        assert index_files <= kept and Path("chroma.sqlite3") in kept
    serves_the_corpus(bot)
    serves_the_corpus(Assistant(settings_in(tmp_path), embeddings=embeddings))
    (snapshot,) = (index / "snapshots").glob(f"{record.name}-*")  # made from the new vectors
    vectors = np.load(snapshot / "sentences.npy")
    assert np.isfinite(vectors).all() and len(vectors) == record.count("sentences")


def answers_or_names_the_repair(open_bot: Callable[[], Assistant]) -> bool:
    """True when the assistant ``open_bot`` gives answers the question right; False when
    opening or asking fails with the one-line error naming the repair (any other error fails
    the test)."""
    try:
        answer = open_bot().ask(QUESTION)
    except IndexUnavailable as error:
        assert "--rebuild" in str(error) and "\n" not in str(error), str(error)
        return False
    assert FACT in shown(answer)
    return True


def after_plain_ingest(root: Path, embeddings) -> Assistant:
    bot = Assistant(settings_in(root), embeddings=embeddings, build_index=False)
    bot.ingest()
    return bot


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
        return run_cli(tmp_path, *args, timeout=300)

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


KILLS = 30  # spread evenly over a whole ingest
FLUSH_KILLS = (0.0, 0.003, 0.01)  # and more, this many seconds into Chroma's HNSW flush
KILL_BATCH = 96  # spans a killed ingest stores at a time: many Chroma writes to land among


@pytest.fixture(scope="module")
def forkserver():
    """Processes forked from a server that has imported everything an ingest needs but
    started no thread (no model, no Chroma client): each starts in a fraction of a second."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(index_kills.PRELOAD)
    return context


def run_ingest(context, root: Path, remembered, kill_after=None, kill_in_flush=None) -> float:
    """Run an ingest of ``root`` in a child, from the ``remembered`` vectors and sentences;
    SIGKILL it ``kill_after`` seconds after it starts, or ``kill_in_flush`` seconds into
    Chroma's flush of the sentences (neither: let it finish).  Returns the seconds it ran."""
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=index_kills.ingest_in_child,
        args=(root, *remembered, KILL_BATCH, sending, kill_in_flush),
    )
    child.start()
    sending.close()
    started = receiving.recv()
    if kill_after is not None:
        time.sleep(max(0.0, started + kill_after - time.monotonic()))
        child.kill()
    child.join()
    if kill_after is None and kill_in_flush is None:
        assert child.exitcode == 0, child.exitcode
    return time.monotonic() - started


def test_an_ingest_killed_at_any_moment_is_finished_by_the_next(
    tmp_path, medium, remembered, forkserver, embeddings, monkeypatch
):
    """SIGKILLs spread evenly over a whole ingest of just over a thousand sentences (reading,
    the Chroma writes, the commit, the garbage collection), and more inside Chroma's flush of
    the sentences to their HNSW files: after each, a plain ingest finishes the killed one's
    segment or writes it anew, leaving exactly what an uninterrupted ingest stores (so it
    answers the same), and nothing of the killed run."""
    reference = Index(settings_in(medium), embeddings)
    expected = stored_spans(reference)
    sentences = remembered.sentences  # every document's, split when the fixture was built
    vectors = {text: vector.tolist() for kind in KINDS for text, vector in expected[kind].values()}
    monkeypatch.setattr("assistant.ingest.split_sentences", sentences)
    duration = run_ingest(forkserver, corpus_copy(medium, tmp_path / "whole"), (vectors, sentences))
    kills = [(duration * (kill + 0.5) / KILLS, None) for kill in range(KILLS)]
    kills += [(None, delay) for delay in FLUSH_KILLS]
    failed = {}
    for number, (kill_after, kill_in_flush) in enumerate(kills):
        root = corpus_copy(medium, tmp_path / f"kill-{number}")
        run_ingest(forkserver, root, (vectors, sentences), kill_after, kill_in_flush)
        moment = (
            f"{kill_after:.2f} s in"
            if kill_in_flush is None
            else f"{kill_in_flush} s into the flush"
        )
        try:
            index = Index(settings_in(root), index_kills.RememberedVectors(vectors))
            sync(index)
            recovered_like(index, expected)
            if number == len(kills) - 1:  # and answers (once: a snapshot takes seconds)
                answering = Assistant(settings_in(root), embeddings=embeddings, build_index=False)
                assert FACT in shown(answering.ask(QUESTION))
        except (AssertionError, IndexUnavailable) as error:
            failed[f"killed {moment}"] = str(error)
    assert not failed, failed


def corpus_copy(source: Path, root: Path) -> Path:
    """``root`` holding a copy of ``source``'s corpus, and no index."""
    shutil.copytree(source / "corpus", root / "corpus")
    return root


def stored_spans(index: Index) -> dict[str, dict[tuple, tuple[str, Any]]]:
    """What the answering generation's segments hold, by kind: each span by its file's name
    and place -> (text, vector); each text by its file's name and version -> (text, None)."""
    record = index.record()
    stored: dict[str, dict[tuple, tuple[str, Any]]] = {}
    for kind in (*KINDS, "texts"):
        stored[kind] = {}
        for segment in record.segments:
            include = ["documents", "metadatas", *(["embeddings"] if kind in KINDS else [])]
            got = index.handle(kind, segment).get(include=include)
            vectors = got["embeddings"] if kind in KINDS else [None] * len(got["ids"])
            for text, meta, vector in zip(got["documents"], got["metadatas"], vectors, strict=True):
                place = (meta["start"], meta["end"]) if kind in KINDS else (meta["version"],)
                stored[kind][(Path(meta["source"]).name, *place)] = (text, vector)
    return stored


def recovered_like(index: Index, expected: dict[str, dict[tuple, tuple[str, Any]]]) -> None:
    """``index`` answers from a generation that passes its check and holds exactly the
    entries and vectors of ``expected`` (an uninterrupted ingest's of the same corpus), and
    nothing is left of the killed run: no other collection, no segment folder Chroma does not
    use, no snapshot draft."""
    index.verify()
    stored = stored_spans(index)
    for kind, entries in stored.items():
        assert entries.keys() == expected[kind].keys(), kind
        for key, (text, vector) in entries.items():
            assert text == expected[kind][key][0], key
            if vector is not None:
                assert np.allclose(vector, expected[kind][key][1], atol=1e-6), key
    collections = {
        f"assistant-{kind}-{segment}"
        for kind in (*KINDS, "texts")
        for segment in index.record().segments
    }
    assert {c.name for c in index.client.list_collections()} == collections | {
        "assistant-manifest",
        "assistant-generations",
    }
    index_dir = index.settings.index_dir
    with sqlite3.connect(index_dir / "chroma.sqlite3") as database:
        live = {row[0] for row in database.execute("SELECT id FROM segments")}
    assert {folder.name for folder in segment_folders(index_dir)} <= live, "a stray segment folder"
    assert not list((index_dir / "snapshots").glob(".draft-*")), "a draft left behind"
