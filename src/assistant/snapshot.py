"""Snapshot: what a process needs to answer from one generation, as files beside the index.

Reading a generation from Chroma means fetching every span and vector and building BM25 over
every chunk: seconds at thousands of documents, in every process that opens it.  The first
process to open a generation (normally the ingest that made it) writes it once to
``index/snapshots/``: spans in SQLite, sentence vectors as a NumPy file, BM25 as bm25s saves it,
copying the rows of documents an earlier snapshot already holds and fetching only the others.
Every process then opens it memory-mapped in milliseconds, and holds in memory only the rows
its questions touch.

A snapshot is checked each time it is opened (its files against each other and against the
generation's record, its vectors finite, its database sound): damage is the index's one-line
"damaged ... run assistant ingest --rebuild" error, never a wrong answer.  Rows are copied only
from the same indexing of a document (same version, same ``indexed_at``), so what a rebuild
re-embeds is never replaced by rows of an earlier snapshot.
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
from filelock import FileLock, Timeout

from assistant.chunk import Span
from assistant.index import (
    KINDS,
    DocumentEntry,
    Generation,
    GenerationGone,
    Index,
    IndexUnavailable,
    damaged,
)
from assistant.index_files import SNAPSHOTS
from assistant.text import spelling_words, terms

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.ERROR)

T = TypeVar("T")
SNAPSHOT_FORMAT = 2  # bump when the files change: snapshots in the old format are made anew
KEPT_SNAPSHOTS = 3  # the newest ones stay: readers of a just-replaced generation still use them
ROWS_CACHED = 4096
NORM_BLOCK_ROWS = 65536  # vectors whose norms are checked at a time (bounds the memory it takes)
DRAFT_PREFIX = ".draft-"
SCHEMA = """
CREATE TABLE chunks (position INTEGER PRIMARY KEY, id TEXT, source TEXT, start INTEGER,
                     "end" INTEGER, text TEXT, opens_paragraph INTEGER, terms TEXT);
CREATE TABLE sentences (position INTEGER PRIMARY KEY, id TEXT, source TEXT, start INTEGER,
                        "end" INTEGER, text TEXT, opens_paragraph INTEGER, reading TEXT);
"""
COLUMNS = 'id, source, start, "end", text, opens_paragraph'


class DamagedSnapshot(ValueError):
    """A snapshot's files cannot be read, or disagree with each other or with their generation."""


@dataclass(frozen=True)
class Placement:
    """Where one document's rows sit in a snapshot, and which indexing of it they came from
    (its version and ``indexed_at`` as the generation's record has them)."""

    version: str
    first_chunk: int
    chunks: int
    first_sentence: int
    sentences: int
    indexed_at: float

    def same_indexing(self, entry: DocumentEntry) -> bool:
        """True when these rows came from the very indexing ``entry`` records: a changed or
        re-embedded (rebuilt) document has another version or time, and its rows are not it."""
        return (self.version, self.indexed_at) == (entry.version, entry.indexed_at)


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
        """Open the snapshot in ``folder`` and check it (``DamagedSnapshot`` when it fails)."""
        self.folder = folder
        self._db: sqlite3.Connection | None = None
        try:
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
            self._check()
        except (OSError, ValueError, KeyError, TypeError, IndexError, sqlite3.Error) as error:
            if self._db is not None:
                self._db.close()
            if isinstance(error, DamagedSnapshot):
                raise
            raise DamagedSnapshot(f"{type(error).__name__}: {error}") from error
        self._chunk_position = functools.lru_cache(maxsize=ROWS_CACHED)(self._find_chunk)

    def _check(self) -> None:
        """Check the files against each other: counts and shapes, finite non-zero vectors,
        a sound database and BM25 over every chunk.  Runs at every open, so it reads each
        file once and keeps nothing: tens of milliseconds at thousands of documents."""
        chunks, sentences = len(self.chunks), len(self.sentences)
        placed = [(p.chunks, p.sentences) for p in self.documents.values()]
        if (sum(c for c, _ in placed), sum(s for _, s in placed)) != (chunks, sentences):
            raise DamagedSnapshot("meta.json places another number of rows than it counts")
        if self.vectors.ndim != 2 or self.vectors.shape[0] != sentences:
            raise DamagedSnapshot(
                f"sentences.npy holds {self.vectors.shape[0]} vectors, not {sentences}"
            )
        for first in range(0, sentences, NORM_BLOCK_ROWS):
            block = self.vectors[first : first + NORM_BLOCK_ROWS]
            with np.errstate(over="ignore", invalid="ignore"):
                squared = np.einsum("ij,ij->i", block, block)
            if not (np.isfinite(squared) & (squared > 0)).all():
                raise DamagedSnapshot("sentences.npy holds vectors that are not finite or zero")
        (verdict,) = self.query("PRAGMA quick_check(1)")[0]
        if verdict != "ok":
            raise DamagedSnapshot(f"spans.sqlite fails its check: {verdict}")
        for table, count in (("chunks", chunks), ("sentences", sentences)):
            (held,) = self.query(f"SELECT count(*) FROM {table}")[0]
            if held != count:
                raise DamagedSnapshot(f"spans.sqlite holds {held} {table}, not {count}")
        (unread,) = self.query("SELECT count(*) FROM sentences WHERE reading IS NULL")[0]
        if unread:
            raise DamagedSnapshot(f"spans.sqlite holds {unread} sentences never read")
        scores = self.bm25.scores
        if (
            scores["num_docs"] != max(chunks, 1)  # an empty corpus is indexed as one blank
            or not int(scores["indptr"][-1]) == len(scores["data"]) == len(scores["indices"])
            or not np.isfinite(scores["data"]).all()
            or (len(scores["indices"]) and int(scores["indices"].max()) >= scores["num_docs"])
        ):
            raise DamagedSnapshot("the BM25 files disagree with each other or with the chunks")

    def check_against(self, record: Generation) -> None:
        """Raise ``DamagedSnapshot`` unless this is the snapshot of ``record``: the same
        generation, and each document's rows from the indexing its entry records."""
        if self.generation != record.name:
            raise DamagedSnapshot(f"meta.json names generation {self.generation}")
        if self.documents.keys() != record.documents.keys():
            raise DamagedSnapshot("it holds other documents than the generation")
        for path, entry in record.documents.items():
            placed = self.documents[path]
            if not placed.same_indexing(entry) or (placed.chunks, placed.sentences) != (
                entry.chunks,
                entry.sentences,
            ):
                raise DamagedSnapshot(f"its rows of {path} are not those the generation records")

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def extra(self, name: str) -> Any:
        """A JSON file a later stage saved in the snapshot (see ``Draft.save``); checked as it
        is read (``DamagedSnapshot``), not at open: they are large, and read by one stage."""
        try:
            return json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DamagedSnapshot(f"{name}.json cannot be read: {error}") from error

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
    """The snapshot of ``generation``, written first when no process has written it yet, and
    checked (``IndexUnavailable`` naming the repair when it is damaged).

    ``finish`` completes a draft (the answerer reads its new sentences); ``key`` names what
    it wrote, so a snapshot made by another version of it is made anew.
    """
    record = index.record(generation)
    home = index.settings.index_dir / SNAPSHOTS
    name = f"{generation}-{SNAPSHOT_FORMAT}-{key}"
    if _ready(home / name):
        return _checked(index, home / name, record)
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
            remove_drafts_held(home)
            previous = _newest(home, f"-{SNAPSHOT_FORMAT}-{key}")
            draft_folder = Path(tempfile.mkdtemp(dir=home, prefix=DRAFT_PREFIX))
            try:
                _write(index, record, draft_folder, previous, finish)
                os.replace(draft_folder, home / name)
            except DamagedSnapshot as error:  # ``finish`` read the damage in the previous one
                raise damaged(index.settings, f"the snapshot before {name}: {error}") from error
            finally:
                shutil.rmtree(draft_folder, ignore_errors=True)
            _prune(home, keep=name)
        return _checked(index, home / name, record)
    finally:
        if lock is not None:
            lock.release()


def _checked(index: Index, folder: Path, record: Generation) -> Snapshot:
    """The snapshot in ``folder``, checked against ``record``."""
    try:
        snapshot = Snapshot(folder)
        snapshot.check_against(record)
    except DamagedSnapshot as error:
        raise damaged(index.settings, f"snapshot {folder.name}: {error}") from error
    return snapshot


def snapshots_sound(index: Index) -> bool:
    """True when every snapshot of ``index`` passes its checks (against its generation's
    record while the index keeps it): a rebuild sets the index aside otherwise."""
    home = index.settings.index_dir / SNAPSHOTS
    for folder in home.iterdir() if home.is_dir() else ():
        if not _ready(folder):
            continue
        try:
            snapshot = Snapshot(folder)
            snapshot.check_against(index.record(snapshot.generation))
        except GenerationGone:
            continue  # of a generation since deleted: no one opens it again
        except (DamagedSnapshot, IndexUnavailable):
            return False
    return True


def remove_drafts(index_dir: Path) -> None:
    """Remove the drafts a killed process left in ``index_dir``'s snapshots, unless another
    process is writing one now (it holds the lock; the next writer removes them then)."""
    home = index_dir / SNAPSHOTS
    if not home.is_dir():
        return
    lock = FileLock(home / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return
    try:
        remove_drafts_held(home)
    finally:
        lock.release()


def remove_drafts_held(home: Path) -> None:
    """Remove every draft in ``home`` (the caller holds its lock, so no draft is being
    written: each was left by a killed process)."""
    for draft in home.glob(f"{DRAFT_PREFIX}*"):
        shutil.rmtree(draft, ignore_errors=True)


def _ready(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def _newest(home: Path, suffix: str) -> Snapshot | None:
    """The newest snapshot that passes its check, to copy rows from."""
    candidates = sorted(
        (folder for folder in home.iterdir() if folder.name.endswith(suffix) and _ready(folder)),
        key=lambda folder: folder.stat().st_mtime,
    )
    for folder in reversed(candidates):
        try:
            return Snapshot(folder)
        except DamagedSnapshot as error:
            logger.warning("snapshot %s is damaged (%s): not re-using it", folder, error)
    return None


def _prune(home: Path, keep: str) -> None:
    """Remove all but the newest snapshots."""
    folders = sorted(
        (f for f in home.iterdir() if f.is_dir() and f.name != keep),
        key=lambda f: f.stat().st_mtime,
    )
    for folder in folders[: max(0, len(folders) - (KEPT_SNAPSHOTS - 1))]:
        shutil.rmtree(folder, ignore_errors=True)


def _write(
    index: Index, record: Generation, folder: Path, previous: Snapshot | None, finish: Finish
) -> None:
    reusable = {
        path: placed
        for path, placed in (previous.documents.items() if previous is not None else ())
        if path in record.documents and placed.same_indexing(record.documents[path])
    }
    if not reusable:
        previous = None  # nothing of it is this generation's: not even its WordNet relatives
    fetched: dict[str, dict[str, list]] = {kind: {} for kind in KINDS}
    for segment in record.segments:
        wanted = [
            (path, version) for path, version in record.pairs(segment) if path not in reusable
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
        if before is not None:
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
        placements[path] = [
            entry.version,
            chunk_at,
            chunks,
            sentence_at,
            sentences,
            entry.indexed_at,
        ]
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
        "generation": record.name,
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
