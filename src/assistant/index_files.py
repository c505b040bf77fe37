"""What lies on disk under an embedded index, and how it is kept safe.

Chroma keeps ``chroma.sqlite3`` and one folder per vector segment; beside them we keep a write
lock and the snapshots read from them.  This module holds the lock, sets Chroma's files and
the snapshots aside for a rebuild (never deleting them), checks the HNSW files before Chroma
reads them, and removes the folders Chroma leaves behind for deleted collections.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)

DATABASE = "chroma.sqlite3"
LOCK_FILE = ".ingest.lock"
SNAPSHOTS = "snapshots"  # the folder of snapshots (see ``assistant.snapshot``)
CHECK_ATTEMPTS, CHECK_PAUSE_SECONDS = 4, 0.5
SEGMENT_FOLDER = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")  # Chroma's, by uuid


def forget_client(index_dir: Path) -> None:
    """Drop this process's cached Chroma system for ``index_dir`` (Chroma keeps one per path,
    a broken one included), so the path can be opened afresh after its files were moved."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(str(index_dir), None)
    SharedSystemClient._identifier_to_refcount.pop(str(index_dir), None)
    if system is not None:
        try:
            system.stop()
        except Exception as error:  # a broken system may not stop cleanly; it is dropped anyway
            logger.debug("stopping the old Chroma client failed: %s", error)


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's write lock; when another ingest holds it, say so and wait for it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(index_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("another ingest is writing to %s: waiting for it to finish", index_dir)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def set_aside(index_dir: Path) -> Path | None:
    """Move Chroma's files and the snapshots made from them out of ``index_dir`` into a
    sibling folder (never delete them) and return it; our other files (the lock, the query
    model, the answerer's cache) stay."""
    moving = [
        path
        for path in index_dir.glob("*")
        if path.name.startswith("chroma.sqlite3")
        or SEGMENT_FOLDER.fullmatch(path.name)
        or path.name == SNAPSHOTS
    ]
    if not moving:
        return None
    aside = index_dir.with_name(f"{index_dir.name}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}")
    aside = aside.with_name(f"{aside.name}-{uuid.uuid4().hex[:4]}") if aside.exists() else aside
    aside.mkdir()
    for path in moving:
        shutil.move(str(path), aside / path.name)
    return aside


def check_vector_files(index_dir: Path, collection_names: list[str]) -> None:
    """Check the HNSW folders of the named collections before Chroma reads them (a truncated
    or overwritten file can make Chroma fail deep inside, or never return).  Another process's
    Chroma may be rewriting a folder at this very moment, so a mismatch is looked at again a few
    times before it counts: damage persists, a rewrite does not."""
    placeholders = ", ".join("?" * len(collection_names))
    with sqlite3.connect(f"file:{index_dir / DATABASE}?mode=ro", uri=True) as connection:
        folders = connection.execute(
            "SELECT segments.id FROM segments JOIN collections"
            " ON segments.collection = collections.id"
            f" WHERE segments.scope = 'VECTOR' AND collections.name IN ({placeholders})",
            collection_names,
        ).fetchall()
    for (folder,) in folders:
        for attempt in range(CHECK_ATTEMPTS):
            try:
                check_hnsw_folder(index_dir / folder)
                break
            except (OSError, ValueError):
                if attempt == CHECK_ATTEMPTS - 1:
                    raise
                time.sleep(CHECK_PAUSE_SECONDS)


def check_hnsw_folder(folder: Path) -> None:
    """Raise ``ValueError`` when the HNSW files in ``folder`` disagree with their header.

    The header (format 1 of Chroma's hnswlib) holds the capacity, the element count and the
    bytes per element; ``data_level0.bin`` holds between count and capacity elements (Chroma
    writes either), ``length.bin`` four bytes for each.  A folder Chroma has not written yet is
    fine; a header of another format is not judged.
    """
    header_file = folder / "header.bin"
    if not folder.exists() or not header_file.exists():
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{header_file} is missing")
        return
    header = header_file.read_bytes()
    if len(header) < 4 or int.from_bytes(header[:4], "little") != 1:
        raise ValueError(f"{header_file} is not an HNSW header")
    if len(header) != 100:
        raise ValueError(f"{header_file} holds {len(header)} bytes, not 100")
    _, capacity, count, element_bytes = (int(n) for n in np.frombuffer(header[4:36], dtype="<u8"))
    if count > capacity:
        raise ValueError(f"{header_file} counts more elements than it has room for")
    for name, each in (("data_level0.bin", element_bytes), ("length.bin", 4)):
        size = (folder / name).stat().st_size if (folder / name).exists() else -1
        if not count * each <= size <= capacity * each:
            raise ValueError(f"{folder / name} does not match its header")


def remove_orphan_segment_folders(index_dir: Path) -> None:
    """Delete the segment folders Chroma leaves on disk for collections it has deleted."""
    try:
        with sqlite3.connect(f"file:{index_dir / DATABASE}?mode=ro", uri=True) as connection:
            live = {row[0] for row in connection.execute("SELECT id FROM segments")}
    except sqlite3.Error as error:
        logger.debug("cannot list Chroma's segments (%s): leaving its folders", error)
        return
    for folder in index_dir.iterdir():
        if folder.is_dir() and SEGMENT_FOLDER.fullmatch(folder.name) and folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
