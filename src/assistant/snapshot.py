"""Snapshot: what a process needs to answer from one generation, as files beside the index.

Reading a generation from Chroma means fetching every span and vector and building BM25 over
every chunk: seconds at thousands of documents, in every process that opens it.  The first
process to open a generation (normally the ingest that made it) writes it once to
``index/snapshots/``: spans in SQLite, sentence vectors as a NumPy file, BM25 as bm25s saves it,
copying the rows of documents an earlier snapshot already holds and fetching only the others.
Every process then opens it memory-mapped in milliseconds, and holds in memory only the rows
its questions touch.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import bm25s
import numpy as np
from filelock import FileLock

from assistant.chunk import Span
from assistant.index import KINDS, Index
from assistant.text import spelling_words, terms

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.ERROR)

T = TypeVar("T")
SNAPSHOT_FORMAT = 1  # bump when the files change: snapshots in the old format are made anew
KEPT_SNAPSHOTS = 3  # the newest ones stay: readers of a just-replaced generation still use them
ROWS_CACHED = 4096
SCHEMA = """
CREATE TABLE chunks (position INTEGER PRIMARY KEY, id TEXT, source TEXT, start INTEGER,
                     "end" INTEGER, text TEXT, opens_paragraph INTEGER, terms TEXT);
CREATE TABLE sentences (position INTEGER PRIMARY KEY, id TEXT, source TEXT, start INTEGER,
                        "end" INTEGER, text TEXT, opens_paragraph INTEGER, reading TEXT);
"""
COLUMNS = 'id, source, start, "end", text, opens_paragraph'


@dataclass(frozen=True)
class Placement:
    """Where one document's rows sit in a snapshot."""

    version: str
    first_chunk: int
    chunks: int
    first_sentence: int
    sentences: int


class ByPosition(Sequence[T]):
    """Items by position, each read (by ``read``) when first asked for and then kept, a few
    thousand at most: what a question touches, never the whole table."""

    def __init__(self, count: int, read: Callable[[int], Any]) -> None:
        self._count = count
        self._row = functools.lru_cache(maxsize=ROWS_CACHED)(read)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, position: int) -> T: ...
    @overload
    def __getitem__(self, position: slice) -> list[T]: ...
    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[p] for p in range(*position.indices(self._count))]
        if position < 0:
            position += self._count
        if not 0 <= position < self._count:
            raise IndexError(position)
        return self._item(self._row(position))

    def _item(self, row: Any) -> T:
        return row


class Rows(ByPosition[Span]):
    """The spans of one table by position, read from SQLite when first asked for."""

    def __init__(self, snapshot: Snapshot, table: str, count: int) -> None:
        self._snapshot, self._table = snapshot, table
        super().__init__(count, self._read)

    def _item(self, row: tuple[str, Span]) -> Span:
        return row[1]

    def span_id(self, position: int) -> str:
        return self._row(position)[0]

    def _read(self, position: int) -> tuple[str, Span]:
        span_id, source, start, end, text, opens = self._snapshot.query(
            f"SELECT {COLUMNS} FROM {self._table} WHERE position = ?", (position,)
        )[0]
        return span_id, Span(source, start, end, text, bool(opens))

    def containing(self, fragment: str) -> list[int]:
        """Positions whose text holds ``fragment`` (ignoring ASCII case), in order."""
        escaped = re.sub(r"([\\%_])", r"\\\1", fragment)
        rows = self._snapshot.query(
            f"SELECT position FROM {self._table} WHERE text LIKE ? ESCAPE '\\' ORDER BY position",
            (f"%{escaped}%",),
        )
        return [position for (position,) in rows]


class Snapshot:
    """One generation's spans, sentence vectors and BM25, opened from their files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.generation: str = meta["generation"]
        self.documents = {path: Placement(*entry) for path, entry in meta["documents"].items()}
        self.spelling: frozenset[str] = frozenset(meta["spelling"])
        self._db = sqlite3.connect(
            f"file:{folder / 'spans.sqlite'}?mode=ro", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()
        self.chunks = Rows(self, "chunks", meta["chunks"])
        self.sentences = Rows(self, "sentences", meta["sentences"])
        self.vectors = np.load(folder / "sentences.npy", mmap_mode="r")
        self.bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=True, show_progress=False)
        self._chunk_position = functools.lru_cache(maxsize=ROWS_CACHED)(self._find_chunk)

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def extra(self, name: str) -> Any:
        """A JSON file a later stage saved in the snapshot (see ``Draft.save``)."""
        return json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))

    def reading(self, position: int) -> str:
        """What a later stage stored of one sentence (see ``Draft.unread``)."""
        (saved,) = self.query("SELECT reading FROM sentences WHERE position = ?", (position,))[0]
        return saved

    def chunk_position(self, span_id: str) -> int | None:
        return self._chunk_position(span_id)

    def _find_chunk(self, span_id: str) -> int | None:
        rows = self.query("SELECT position FROM chunks WHERE id = ?", (span_id,))
        return rows[0][0] if rows else None


@dataclass
class Draft:
    """A snapshot being written: its database, open for writing, and its folder, for the
    stages that add to it (the answerer's reading of every sentence)."""

    folder: Path
    db: sqlite3.Connection
    previous: Snapshot | None

    def save(self, name: str, value: Any) -> None:
        (self.folder / f"{name}.json").write_text(json.dumps(value), encoding="utf-8")

    def unread(self) -> list[tuple[int, str, str]]:
        """(position, source, text) of the sentences with no reading yet, in order: those of
        documents no earlier snapshot held."""
        return self.db.execute(
            "SELECT position, source, text FROM sentences WHERE reading IS NULL ORDER BY position"
        ).fetchall()

    def store_readings(self, readings: Sequence[tuple[int, str]]) -> None:
        """Keep (position, reading) for sentences ``unread`` returned."""
        self.db.executemany(
            "UPDATE sentences SET reading = ? WHERE position = ?",
            [(reading, position) for position, reading in readings],
        )

    def readings(self) -> Iterator[tuple[int, str]]:
        """(position, reading) of every sentence, in order."""
        yield from self.db.execute("SELECT position, reading FROM sentences ORDER BY position")


Finish = Callable[[Draft], None]


def open_snapshot(index: Index, generation: str, finish: Finish, key: str) -> Snapshot:
    """The snapshot of ``generation``, written first when no process has written it yet.

    ``finish`` completes a draft (the answerer reads its new sentences); ``key`` names what
    it wrote, so a snapshot made by another version of it is made anew.
    """
    home = index.settings.index_dir / "snapshots"
    name = f"{generation}-{SNAPSHOT_FORMAT}-{key}"
    if _ready(home / name):
        return Snapshot(home / name)
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(home / ".lock")
        lock.acquire()
    except OSError as error:  # a read-only index still answers, from a snapshot made in /tmp
        logger.warning("cannot write snapshots in %s (%s): using a temporary folder", home, error)
        home = Path(tempfile.mkdtemp(prefix="assistant-snapshot-"))
        lock = None
    try:
        if not _ready(home / name):
            previous = _newest(home, f"-{SNAPSHOT_FORMAT}-{key}")
            draft_folder = Path(tempfile.mkdtemp(dir=home, prefix=".draft-"))
            try:
                _write(index, generation, draft_folder, previous, finish)
                os.replace(draft_folder, home / name)
            finally:
                shutil.rmtree(draft_folder, ignore_errors=True)
            _prune(home, keep=name)
        return Snapshot(home / name)
    finally:
        if lock is not None:
            lock.release()


def _ready(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def _newest(home: Path, suffix: str) -> Snapshot | None:
    candidates = sorted(
        (folder for folder in home.iterdir() if folder.name.endswith(suffix) and _ready(folder)),
        key=lambda folder: folder.stat().st_mtime,
    )
    for folder in reversed(candidates):
        try:
            return Snapshot(folder)
        except (OSError, ValueError, KeyError, sqlite3.Error) as error:
            logger.warning("snapshot %s is unreadable (%s): not re-using it", folder, error)
    return None


def _prune(home: Path, keep: str) -> None:
    """Remove all but the newest snapshots, and drafts a killed process left."""
    folders = sorted(
        (f for f in home.iterdir() if f.is_dir() and f.name != keep),
        key=lambda f: f.stat().st_mtime,
    )
    for folder in folders[: max(0, len(folders) - (KEPT_SNAPSHOTS - 1))]:
        shutil.rmtree(folder, ignore_errors=True)


def _write(index: Index, generation: str, folder: Path, previous: Snapshot | None, finish: Finish):
    record = index.record(generation)
    reusable = previous.documents if previous else {}
    fetched: dict[str, dict[str, list]] = {kind: {} for kind in KINDS}
    for segment in record.segments:
        wanted = [
            (path, version)
            for path, version in record.pairs(segment)
            if getattr(reusable.get(path), "version", None) != version
        ]
        for kind in KINDS:
            rows = index.fetch(kind, segment, wanted, vectors=kind == "sentences")
            fetched[kind].update(_by_source(rows))
    db = sqlite3.connect(folder / "spans.sqlite")
    db.executescript(SCHEMA)
    if previous is not None:
        db.execute(
            "ATTACH DATABASE ? AS old", (f"file:{previous.folder / 'spans.sqlite'}?mode=ro",)
        )
    total = record.count("sentences")
    dimension = previous.vectors.shape[1] if previous is not None else _dimension(fetched)
    vectors = np.lib.format.open_memmap(
        folder / "sentences.npy", mode="w+", dtype=np.float32, shape=(total, dimension)
    )
    placements: dict[str, list] = {}
    chunk_at = sentence_at = 0
    for path, entry in sorted(record.documents.items()):
        before = reusable.get(path)
        if before is not None and before.version == entry.version:
            for table, first, count, at in (
                ("chunks", before.first_chunk, before.chunks, chunk_at),
                ("sentences", before.first_sentence, before.sentences, sentence_at),
            ):
                db.execute(
                    f"INSERT INTO {table} SELECT position - ? + ?, {COLUMNS}, "
                    f"{'terms' if table == 'chunks' else 'reading'} FROM old.{table} "
                    "WHERE position >= ? AND position < ?",
                    (first, at, first, first + count),
                )
            vectors[sentence_at : sentence_at + before.sentences] = previous.vectors[
                before.first_sentence : before.first_sentence + before.sentences
            ]
            chunks, sentences = before.chunks, before.sentences
        else:
            chunk_rows = fetched["chunks"].get(path, [])
            sentence_rows = fetched["sentences"].get(path, [])
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (chunk_at + i, span_id, *_fields(span), " ".join(terms(span.text)))
                    for i, (span_id, span, _) in enumerate(chunk_rows)
                ],
            )
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    (sentence_at + i, span_id, *_fields(span))
                    for i, (span_id, span, _) in enumerate(sentence_rows)
                ],
            )
            for i, (_, _, vector) in enumerate(sentence_rows):
                vectors[sentence_at + i] = vector
            chunks, sentences = len(chunk_rows), len(sentence_rows)
        placements[path] = [entry.version, chunk_at, chunks, sentence_at, sentences]
        chunk_at, sentence_at = chunk_at + chunks, sentence_at + sentences
    vectors.flush()
    del vectors
    db.execute("CREATE INDEX chunk_ids ON chunks (id)")
    db.commit()
    if previous is not None:
        db.execute("DETACH DATABASE old")
    _write_bm25(db, folder / "bm25")
    texts = (text for (text,) in db.execute("SELECT text FROM sentences"))
    spelling = sorted(spelling_words(list(texts)))
    finish(Draft(folder, db, previous))
    db.commit()
    db.close()
    meta = {
        "generation": generation,
        "documents": placements,
        "chunks": chunk_at,
        "sentences": sentence_at,
        "spelling": spelling,
    }
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def _by_source(rows: Iterator[tuple[str, Span, Any]]) -> dict[str, list[tuple[str, Span, Any]]]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row[1].source, []).append(row)
    for spans in grouped.values():
        spans.sort(key=lambda row: (row[1].start, row[1].end))
    return grouped


def _dimension(fetched: dict[str, dict[str, list]]) -> int:
    for rows in fetched["sentences"].values():
        return len(rows[0][2])
    return 1


def _fields(span: Span) -> tuple:
    return span.source, span.start, span.end, span.text, int(span.opens_paragraph)


def _write_bm25(db: sqlite3.Connection, folder: Path) -> None:
    """BM25 over every chunk's terms, saved to be opened memory-mapped."""
    corpus = [text.split(" ") if text else ["\x00"] for (text,) in db.execute(
        "SELECT terms FROM chunks ORDER BY position"
    )]  # fmt: skip
    bm25 = bm25s.BM25()
    bm25.index(corpus or [["\x00"]], show_progress=False)
    bm25.save(str(folder), show_progress=False)
