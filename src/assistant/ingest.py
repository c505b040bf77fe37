"""Ingest: bring the index in step with the corpus, with work in proportion to what changed.

A file whose name, size and modification time are as recorded is not read; an edited one is
re-split and only sentences whose words are new are embedded (a renamed file re-uses its
vectors by content).  New spans go to a new segment (see ``index``), which is written until the
generation naming it is recorded, so a killed ingest is resumed where it stopped by the next;
when Chroma lost part of what it was given (a kill while it flushed its files), the segment is
written anew instead.

One writer at a time: an OS file lock beside the index, and on a Chroma server a lock on the
server too (writers on other machines share no file).  What no reader can still use is deleted
after the writing, under the same locks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from assistant.chunk import Span, chunk_document, split_sentences
from assistant.index import (
    GENERATIONS,
    KINDS,
    TEXTS,
    DocumentEntry,
    Generation,
    GenerationGone,
    Index,
    IndexUnavailable,
    batches,
    damaged,
    span_metadata,
    stored_id,
    text_id,
)
from assistant.index_files import (
    check_vector_files,
    remove_orphan_segment_folders,
    writer_lock,
)
from assistant.load import SourceDocument, corpus_files, load_documents
from assistant.snapshot import remove_drafts, snapshots_sound

logger = logging.getLogger(__name__)

BATCH = 512  # spans embedded at a time (the embedder sorts each batch by length)
CHROMA_BATCH = 4096
RETIRED_KEPT_SECONDS = 600.0
REBASE_SHARE = 0.2  # of the documents: when more are in small segments, copy all to a new base
PROGRESS_EVERY_SECONDS = 10.0
LEASE_SECONDS = 120.0  # a server-side lock not renewed for this long was left by a killed writer


@dataclass(frozen=True)
class SyncReport:
    """What a sync did: documents indexed and read (the others were unchanged on disk); texts
    embedded; spans of the new generation whose vectors were not embedded now (kept) and spans
    of the old one no longer answered from (removed); where a rebuild set the old index aside."""

    documents: int
    embedded: int
    kept: int
    removed: int
    set_aside: Path | None = None
    read: int = 0


def sync(index: Index, rebuild: bool = False, progress: bool | None = None) -> SyncReport:
    """Bring ``index`` in step with its corpus, reading and embedding only what changed.

    Holds the write lock throughout (a second ingest waits, then finds little or nothing to
    do).  ``rebuild`` starts anew, embedding everything again and reusing no vector.  When the
    index fails its check, Chroma's files are first moved aside (kept for inspection, never
    written to again).
    """
    return _Writer(index).sync(rebuild, progress)


class _Writer:
    """One ingest's work on one index."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._lease: tuple[str, str] | None = None  # the server-side write lock held

    def sync(self, rebuild: bool, progress: bool | None) -> SyncReport:
        with writer_lock(self.index.settings.index_dir), self._server_lock():
            remove_drafts(self.index.settings.index_dir)  # what a killed snapshot left
            aside = None
            if rebuild and not (self.index.healthy() and snapshots_sound(self.index)):
                aside = self.index.set_files_aside()
                if aside is None:  # a server's files stay: what it cannot read starts afresh
                    self.index.update_manifest(retired="{}", building="{}")
            manifest = self.index.manifest()
            self.index.retired(manifest)  # when unreadable, said before any work is done
            self.index.building(manifest)
            answering = None if rebuild else self.index.answering(manifest)
            old = None
            if answering is not None:
                self.index.verify(answering)
                old = self.index.record(answering)
            corpus = (
                self.index.corpus_state()
            )  # before reading: an edit made meanwhile shows next time
            entries, changed, read = self._compare(old)
            if not entries:
                raise IndexUnavailable(
                    f"no readable documents in {self.index.settings.corpus_dir}: add .txt, .md, "
                    ".html or .pdf files"
                )
            if old is not None and not changed and entries.keys() == old.documents.keys():
                self._record_times(old, entries, corpus)  # at most files touched
                return SyncReport(len(entries), 0, old.count("chunks") + old.count("sentences"),
                                  0, read=read)  # fmt: skip
            moving = self._moving(old, entries, changed)
            embedded = new_vectors = 0
            if changed or moving:  # else documents were only removed
                embedded, new_vectors = self._write_segment(
                    manifest, old, entries, changed, moving, progress
                )
            self._commit(Generation(self._new_name(), entries), corpus)
            total = sum(entry.chunks + entry.sentences for entry in entries.values())
            removed = 0
            if old is not None:
                removed = sum(
                    entry.chunks + entry.sentences
                    for path, entry in old.documents.items()
                    if path not in entries or entries[path].version != entry.version
                )
            return SyncReport(len(entries), embedded, total - new_vectors, removed, aside, read)

    def _record_times(self, old: Generation, entries: dict[str, DocumentEntry], corpus: str):
        """Files touched but not changed: their new times go in the record (so they are not
        read again), which answers from the same spans as before."""
        if entries != old.documents:
            self.index.handle(GENERATIONS).upsert(
                ids=[old.name],
                embeddings=[[1.0]],
                documents=[Generation(old.name, entries).to_json()],
            )
            self.index.forget(old.name)
        self.index.update_manifest(corpus=corpus)
        self._collect_garbage(old.name)

    def _moving(self, old: Generation | None, entries, changed) -> list[str]:
        """The unchanged documents whose spans are copied to the segment being written:
        those of the previous small segment, or all of them when small segments would hold
        more than ``REBASE_SHARE`` of the documents (a new base)."""
        if old is None:
            return []
        base = old.base
        unchanged = [path for path in entries if path in old.documents and entries[path].segment]
        small = [path for path in unchanged if entries[path].segment != base]
        if len(small) + len(changed) > REBASE_SHARE * len(entries):
            return unchanged
        return small

    @contextmanager
    def _server_lock(self) -> Iterator[None]:
        """On a Chroma server, writers on other machines share no lock file: a collection
        named for the lock is the lock (a name can be created once), holding who holds it and
        until when.  The holder renews it while it writes; one left by a killed writer expires
        after ``LEASE_SECONDS``."""
        if not self.index.settings.chroma_host:
            yield
            return
        from chromadb.errors import ChromaError, NotFoundError

        name = self.index.name("writer-lock")
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        said = False
        while True:
            try:
                self.index.client.create_collection(name, embedding_function=None, metadata={
                    "holder": holder, "expires": time.time() + LEASE_SECONDS
                })  # fmt: skip
                break
            except ChromaError:
                try:
                    lease = self.index.client.get_collection(name, embedding_function=None).metadata
                except NotFoundError:
                    continue  # released meanwhile: try again at once
                if float((lease or {}).get("expires", 0)) < time.time():
                    logger.warning("a writer's lock on the server expired: taking it over")
                    self.index.client.delete_collection(name)
                    continue
                if not said:
                    logger.warning("another ingest is writing to the server: waiting for it")
                    said = True
                time.sleep(1.0)
        self._lease = (name, holder)
        try:
            yield
        finally:
            self._lease = None
            try:
                lock = self.index.client.get_collection(name, embedding_function=None)
                if (lock.metadata or {}).get("holder") == holder:
                    self.index.client.delete_collection(name)
            except NotFoundError:
                pass

    def _renew_lease(self) -> None:
        if self._lease is not None:
            name, holder = self._lease
            lock = self.index.client.get_collection(name, embedding_function=None)
            lock.modify(metadata={"holder": holder, "expires": time.time() + LEASE_SECONDS})

    def _compare(self, old: Generation | None):
        """The corpus's documents as entries, the documents whose text is new (with their
        version), and how many files were read: a file is read only when its size or time
        differ from the record."""
        recorded = old.documents if old else {}
        entries: dict[str, DocumentEntry] = {}
        to_read = {}
        for stamp in corpus_files(self.index.settings.corpus_dir):
            entry = recorded.get(str(stamp.path))
            if (
                entry is not None
                and (entry.size, entry.mtime_ns) == (stamp.size, stamp.mtime_ns)
                and stamp.size <= self.index.settings.max_file_bytes
            ):
                entries[str(stamp.path)] = entry
            else:
                to_read[str(stamp.path)] = stamp
        changed: list[tuple[SourceDocument, str]] = []
        now = time.time()
        paths = [stamp.path for stamp in to_read.values()]
        for document in load_documents(paths, max_file_bytes=self.index.settings.max_file_bytes):
            stamp = to_read[document.path]
            version = hashlib.sha256(document.text.encode("utf-8")).hexdigest()[:20]
            before = recorded.get(document.path)
            if before is not None and before.version == version:  # touched, not changed
                entries[document.path] = dataclasses.replace(
                    before, size=stamp.size, mtime_ns=stamp.mtime_ns
                )
                continue
            changed.append((document, version))
            entries[document.path] = DocumentEntry(
                version, stamp.size, stamp.mtime_ns, 0, 0, indexed_at=now
            )
        return dict(sorted(entries.items())), changed, len(to_read)

    def _write_segment(self, manifest, old, entries, changed, moving, progress):
        """Store the spans of the changed and moving documents in a segment (see ``_store``),
        then check that Chroma holds all of them before a generation names it.  A resumed
        segment that falls short (Chroma lost part of what a killed ingest gave it) is left
        for the garbage collection and a new one written, so a kill never leaves an index
        that only a rebuild opens."""
        plan = {
            "expected": self.index.expected,
            "after": old.name if old else None,
            "moving": moving,
        }
        segment = self._segment_to_resume(manifest, plan)
        resumed = segment is not None
        while True:
            segment = segment or self._new_segment(plan)
            stored = self._store(segment, entries, changed, moving, old, progress)
            written = {path: entry for path, entry in entries.items() if entry.segment == segment}
            try:
                self.index.check(Generation(segment, written))
                return stored
            except Exception as error:
                if not resumed:
                    raise damaged(self.index.settings, error) from error
                logger.warning("the resumed segment %s falls short (%s): writing a new one",
                               segment, error)  # fmt: skip
            segment, resumed = None, False

    def _segment_to_resume(self, manifest: dict[str, Any], plan: dict[str, Any]) -> str | None:
        """The segment a killed ingest was writing for the same generation and settings, when
        Chroma holds it whole (nobody has read it, so it may still be written; what it holds
        is kept); None when there is none to resume."""
        building = self.index.building(manifest)
        if building.get("plan") != plan:
            return None
        segment = building["segment"]
        try:
            unsound = self._unsound(segment)
        except GenerationGone:
            return None  # killed before it stored anything
        if unsound:
            logger.warning("the segment %s a killed ingest was writing is unsound (%s): "
                           "writing a new one", segment, unsound)  # fmt: skip
            return None
        logger.info("resuming segment %s, which a killed ingest was writing", segment)
        return segment

    def _unsound(self, segment: str) -> str | None:
        """Why Chroma's copy of a killed ingest's ``segment`` cannot be written on (None when
        it can): every entry its database lists must be counted, and every vector be in its
        HNSW files.  A kill while Chroma flushes them can leave the files behind the database,
        which Chroma does not mend and a later search or snapshot would fail on.  Raises
        ``GenerationGone`` when the segment's collections were never made."""
        collections = {kind: self.index.handle(kind, segment) for kind in (*KINDS, TEXTS)}
        try:
            if not self.index.settings.chroma_host:
                check_vector_files(
                    self.index.settings.index_dir, [collections[kind].name for kind in KINDS]
                )
            for kind, collection in collections.items():
                ids = collection.get(include=[])["ids"]
                if len(ids) != collection.count():
                    return f"{kind} lists {len(ids)} entries but counts {collection.count()}"
                for batch in batches(ids if kind in KINDS else [], CHROMA_BATCH):
                    vectors = collection.get(ids=batch, include=["embeddings"])["embeddings"]
                    if len(vectors) != len(batch) or not np.isfinite(np.asarray(vectors)).all():
                        return f"{kind} holds vectors that cannot be read"
        except Exception as error:  # whatever Chroma says of it, the segment is written anew
            return f"{type(error).__name__}: {error}"
        return None

    def _new_segment(self, plan: dict[str, Any]) -> str:
        """A new segment to write, named in the manifest so a killed ingest is resumed."""
        segment = self._new_name()
        self.index.update_manifest(building=json.dumps({"segment": segment, "plan": plan}))
        return segment

    @staticmethod
    def _new_name() -> str:
        return f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"

    def _store(self, segment: str, entries, changed, moving, old, progress) -> tuple[int, int]:
        """Write ``segment``: the spans and texts of the ``changed`` documents, and those of
        the unchanged ones ``moving`` to it; set their entries to it.  Returns how many texts
        were embedded, and how many spans got their vectors from them.  Vectors are copied, not
        embedded, for spans stored already (a killed ingest), moving documents, and words the
        document's previous version or an identical file elsewhere already had."""
        handles = {kind: self.index.handle(kind, segment, create=True) for kind in (*KINDS, TEXTS)}
        self._move(handles, [(path, old.documents[path]) for path in moving])
        for path in moving:
            entries[path] = dataclasses.replace(entries[path], segment=segment)
        known = self._known_vectors(changed, old)
        embedded = new_vectors = 0
        bar = tqdm(
            total=len(changed),
            desc="indexing",
            unit="doc",
            disable=None if progress is None else not progress,
        )
        started = last_logged = time.monotonic()
        pending: list[tuple[str, str, Span, str]] = []  # kind, id, span, version
        texts: list[tuple[SourceDocument, str]] = []
        with bar:
            for number, (document, version) in enumerate(changed, start=1):
                spans = {
                    "chunks": chunk_document(
                        document, self.index.settings.chunk_size, self.index.settings.chunk_overlap
                    ),
                    "sentences": split_sentences(document),
                }
                for kind, found in spans.items():
                    pending += [(kind, stored_id(version, span), span, version) for span in found]
                texts.append((document, version))
                entries[document.path] = dataclasses.replace(
                    entries[document.path],
                    chunks=len(spans["chunks"]),
                    sentences=len(spans["sentences"]),
                    segment=segment,
                )
                if len(pending) >= BATCH or number == len(changed):
                    self._renew_lease()
                    fresh, spans_embedded = self._add(handles, pending, known)
                    self._store_texts(handles[TEXTS], texts)
                    embedded, new_vectors = embedded + fresh, new_vectors + spans_embedded
                    pending, texts = [], []
                    bar.update(number - bar.n)
                    now = time.monotonic()
                    if bar.disable and (
                        last_logged == started or now - last_logged >= PROGRESS_EVERY_SECONDS
                    ):
                        last_logged = now  # no progress bar without a terminal: log instead
                        rate = number / max(now - started, 1e-9)
                        logger.info(
                            "stored %d of %d documents (%.1f a second, about %.0f s left)",
                            number, len(changed), rate, (len(changed) - number) / rate,
                        )  # fmt: skip
        return embedded, new_vectors

    def _move(self, handles, documents: list[tuple[str, DocumentEntry]]) -> int:
        """Copy the spans and texts of unchanged documents from their segments."""
        by_segment: dict[str, list[tuple[str, str]]] = {}
        for path, entry in documents:
            by_segment.setdefault(entry.segment, []).append((path, entry.version))
        for source, pairs in by_segment.items():
            versions = dict(pairs)
            for kind in KINDS:
                rows = list(self.index.fetch(kind, source, pairs, vectors=True))
                present = self._present(handles[kind], [span_id for span_id, _, _ in rows])
                fresh = [row for row in rows if row[0] not in present]
                for batch in batches(fresh, CHROMA_BATCH):
                    self._renew_lease()
                    handles[kind].add(
                        ids=[span_id for span_id, _, _ in batch],
                        embeddings=[list(vector) for _, _, vector in batch],
                        documents=[span.text for _, span, _ in batch],
                        metadatas=[
                            span_metadata(span, versions[span.source]) for _, span, _ in batch
                        ],
                    )
            for batch in batches(pairs, BATCH):
                ids = [text_id(path, version) for path, version in batch]
                got = self.index.handle(TEXTS, source).get(
                    ids=ids, include=["documents", "metadatas"]
                )
                handles[TEXTS].upsert(
                    ids=got["ids"],
                    embeddings=[[1.0]] * len(got["ids"]),
                    documents=got["documents"],
                    metadatas=got["metadatas"],
                )

    def _known_vectors(self, changed, old: Generation | None) -> dict[str, Any]:
        """Text -> vector of spans the changed documents may share: their previous versions,
        and stored documents with the same content (a renamed or copied file)."""
        if old is None:
            return {}
        versions = {version for _, version in changed}
        paths = {document.path for document, _ in changed}
        known: dict[str, Any] = {}
        for segment in old.segments:
            pairs = [pair for pair in old.pairs(segment) if pair[1] in versions or pair[0] in paths]
            for kind in KINDS:
                for _, span, vector in self.index.fetch(kind, segment, pairs, vectors=True):
                    known[span.text] = vector
        return known

    @staticmethod
    def _store_texts(collection, texts: list[tuple[SourceDocument, str]]) -> None:
        if texts:
            collection.upsert(
                ids=[text_id(document.path, version) for document, version in texts],
                embeddings=[[1.0]] * len(texts),  # Chroma wants a vector; texts are got by id
                documents=[document.text for document, _ in texts],
                metadatas=[{"source": d.path, "version": version} for d, version in texts],
            )

    @staticmethod
    def _present(collection, ids: list[str]) -> set[str]:
        present: set[str] = set()
        for batch in batches(ids, CHROMA_BATCH):
            present |= set(collection.get(ids=batch, include=[])["ids"])
        return present

    def _add(self, handles, pending, known: dict[str, Any]) -> tuple[int, int]:
        """Add the spans not stored yet, embedding only words no vector is known for; returns
        how many texts were embedded, and how many spans got their vectors from them."""
        present = set()
        for kind in KINDS:
            present |= self._present(handles[kind], [i for k, i, _, _ in pending if k == kind])
        missing = [item for item in pending if item[1] not in present]
        texts = list(
            dict.fromkeys(span.text for _, _, span, _ in missing if span.text not in known)
        )
        fresh = set(texts)
        for batch in batches(texts, BATCH):
            known.update(zip(batch, self.index.embeddings.embed_documents(batch), strict=True))
        for kind in KINDS:
            items = [item for item in missing if item[0] == kind]
            for batch in batches(items, CHROMA_BATCH):
                handles[kind].add(
                    ids=[span_id for _, span_id, _, _ in batch],
                    embeddings=[list(known[span.text]) for _, _, span, _ in batch],
                    documents=[span.text for _, _, span, _ in batch],
                    metadatas=[span_metadata(span, version) for _, _, span, version in batch],
                )
        return len(texts), sum(1 for _, _, span, _ in missing if span.text in fresh)

    def _commit(self, generation: Generation, corpus: str) -> None:
        """Record ``generation`` and move the manifest to it; retire the one it replaces."""
        self.index.handle(GENERATIONS, create=True).add(
            ids=[generation.name], embeddings=[[1.0]], documents=[generation.to_json()]
        )
        self.index.remember(generation)
        previous = self.index.manifest()
        retired = self.index.retired(previous)
        if previous.get("generation"):
            retired[previous["generation"]] = time.time()
        self.index.update_manifest(
            **self.index.expected,
            generation=generation.name,
            built_at=time.time(),
            corpus=corpus,
            retired=json.dumps(retired),
            building="{}",
        )
        self._collect_garbage(generation.name)

    def _collect_garbage(self, answering: str) -> None:
        """Delete what no reader can still be using (under the write lock): generations
        retired long enough ago, and the segments no kept generation answers from (a killed
        ingest's among them); then the folders Chroma leaves behind for deleted collections."""
        manifest = self.index.manifest()
        retired = self.index.retired(manifest)
        now = time.time()
        keep = {answering} | {g for g, at in retired.items() if now - at < RETIRED_KEPT_SECONDS}
        records = self.index.handle(GENERATIONS, create=True)
        every = set(records.get(include=[])["ids"])
        segments = {s for name in keep & every for s in self.index.record(name).segments}
        segments.add(self.index.building(manifest).get("segment", ""))
        if every - keep:
            records.delete(ids=sorted(every - keep))
        for name in every - keep:
            self.index.forget(name)
        prefixes = [self.index.name(kind) + "-" for kind in (*KINDS, TEXTS)]
        for collection in self.index.client.list_collections():
            name = getattr(collection, "name", collection)
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            if prefix and name[len(prefix) :] not in segments:
                self.index.delete_collection(name)
        if retired.keys() - keep:
            self.index.update_manifest(
                retired=json.dumps({g: retired[g] for g in retired.keys() & keep})
            )
        if not self.index.settings.chroma_host:
            remove_orphan_segment_folders(self.index.settings.index_dir)
