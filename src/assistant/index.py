"""Index: Chroma (embedded or server), kept in step with ``corpus/``, safe to share.

Spans are stored in *segments*, each a set of collections (chunks, sentences, texts) written
once and never changed after: processes sharing an embedded index each hold a segment's vectors
as they were when they opened it, so only a segment nobody has opened may be written to.  An
ingest writes the spans of new and changed documents to a new small segment (carrying along
those of the previous small one), then records a new *generation*, the documents (path, content
version, segment) it answers from, and moves the manifest to it.  A generation answers from a
large base segment and at most one small one; when the small one outgrows ``REBASE_SHARE`` of
the documents, everything is copied to a new base.  Readers keep to their generation's
documents, so a killed ingest leaves the previous generation answering, and the next ingest
finds what it had stored and goes on.  A change of embeddings or chunking starts anew, never
mixing vectors of two models.

Work grows with what changed, not with the corpus: a file whose name, size and modification
time are as recorded is not read; an edited one is re-split and only sentences whose words are
new are embedded (a renamed file re-uses its vectors by content).

Several processes may share one index (a page serving while someone ingests), so:

* one writer at a time: every ingest holds an OS file lock beside the index (and, on a Chroma
  server, a lock on the server for writers on other machines);
* readers never see their documents vanish: a replaced generation's segments are deleted only
  by an ingest that starts after it has been retired for ``RETIRED_KEPT_SECONDS`` (readers look
  for a newer generation every few seconds);
* citations count offsets in the text as indexed, which is kept with each document version, so
  a quote always equals ``text[start:end]`` of that text whatever happens to the file since.
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
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.chunk import CHUNKER_VERSION, Span, chunk_document, split_sentences
from assistant.config import Settings
from assistant.embed import MODEL_NAME, MODEL_SHA256, MiniLMEmbeddings
from assistant.index_files import (
    check_vector_files,
    forget_client,
    remove_orphan_segment_folders,
    set_aside,
    writer_lock,
)
from assistant.load import SourceDocument, corpus_files, corpus_fingerprint, load_documents

logger = logging.getLogger(__name__)

KINDS = ("chunks", "sentences")
TEXTS = "texts"  # each document version's text as indexed: what citation offsets count in
GENERATIONS = "generations"  # one record per generation: the documents it answers from
INDEX_LAYOUT = 4  # bump when collection names or metadata change: older indexes are rebuilt
BATCH = 512
CHROMA_BATCH = 4096
RETIRED_KEPT_SECONDS = 600.0
REBASE_SHARE = 0.2  # of the documents: when more are in small segments, copy all to a new base
PROGRESS_EVERY_SECONDS = 10.0
LEASE_SECONDS = (
    120.0  # a server-side write lock not renewed for this long was left by a killed writer
)


class IndexUnavailable(RuntimeError):
    """The index cannot be opened or used; the message says what to do."""


class GenerationGone(IndexUnavailable):
    """The generation a reader was using is gone (a rebuild, or retired long ago): read the
    manifest again and go on with the newest."""


def damaged(settings: Settings, reason: object) -> IndexUnavailable:
    """The one-line error for an index that exists but cannot be trusted."""
    where = settings.chroma_host or settings.index_dir
    return IndexUnavailable(
        f"the index at {where} is damaged ({reason}); run `assistant ingest --rebuild` to set "
        "it aside and build a new one from the corpus"
    )


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


@dataclass(frozen=True)
class DocumentEntry:
    """One document of a generation: its content version, the file it was read from, and
    the segment holding its spans."""

    version: str  # a hash of the text as indexed
    size: int
    mtime_ns: int
    chunks: int
    sentences: int
    segment: str = ""


@dataclass(frozen=True)
class Generation:
    """What one generation answers from: a set of documents, each in its segment."""

    name: str
    documents: dict[str, DocumentEntry]

    def count(self, kind: str, segment: str | None = None) -> int:
        entries = [e for e in self.documents.values() if segment in (None, e.segment)]
        return len(entries) if kind == TEXTS else sum(getattr(e, kind) for e in entries)

    @property
    def segments(self) -> list[str]:
        return sorted({entry.segment for entry in self.documents.values()})

    @property
    def base(self) -> str:
        """The segment holding the most documents (the others are carried to each new one)."""
        held = Counter(entry.segment for entry in self.documents.values())
        return max(sorted(held), key=held.__getitem__)

    def pairs(self, segment: str) -> list[tuple[str, str]]:
        """(path, version) of the documents whose spans ``segment`` holds."""
        return [(p, e.version) for p, e in self.documents.items() if e.segment == segment]

    def to_json(self) -> str:
        entries = {path: dataclasses.astuple(entry) for path, entry in self.documents.items()}
        return json.dumps({"documents": entries})

    @classmethod
    def from_json(cls, name: str, raw: str) -> Generation:
        saved = json.loads(raw)
        return cls(name, {p: DocumentEntry(*e) for p, e in saved["documents"].items()})


def stored_id(version: str, span: Span) -> str:
    """A span's id in the index: the same words at the same place of the same document version
    get the same id on every run (so a resumed ingest knows what it stored)."""
    return hashlib.sha256(f"{version}\x00{span.span_id}".encode()).hexdigest()[:32]


def text_id(path: str, version: str) -> str:
    return f"{version}:{path}"


def namespace_of(settings: Settings) -> str:
    """ "assistant" for an embedded index; on a server, one namespace per corpus folder."""
    if not settings.chroma_host:
        return "assistant"
    folder = str(settings.corpus_dir.resolve())
    return f"assistant-{hashlib.sha1(folder.encode()).hexdigest()[:10]}"


def embeddings_identity(embeddings: Any) -> str:
    """What the manifest records of the embeddings that built the index: vectors from another
    model (or a lossy runtime of it) must never be mixed in or searched with (the packaged
    MiniLM is named by its weights' hash; others by class and model name)."""
    if isinstance(embeddings, MiniLMEmbeddings):
        suffix = getattr(embeddings, "identity_suffix", "")
        return f"{MODEL_NAME} sha256:{MODEL_SHA256}{' ' + suffix if suffix else ''}"
    kind = type(embeddings)
    model = next(
        (
            str(value)
            for name in ("model", "model_name", "deployment", "size")
            if (value := getattr(embeddings, name, None)) is not None
        ),
        "",
    )
    return f"{kind.__module__}.{kind.__qualname__}:{model}".rstrip(":")


def make_client(settings: Settings):
    """A Chroma client with telemetry off: a server when a host is set, else embedded."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)
    except Exception as error:
        forget_client(settings.index_dir)
        raise IndexUnavailable(
            f"the index at {settings.index_dir} cannot be opened ({error}); "
            "run `assistant ingest --rebuild` to set it aside and build a new one"
        ) from error


class Index:
    """The persisted vectors for one corpus and one set of settings.

    Collection names carry a namespace: on a Chroma server shared by several corpora (or other
    programs), each index only ever touches its own collections.
    """

    def __init__(self, settings: Settings, embeddings, client=None) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self._own_client = client is None
        self._client, self._client_error = client, None
        if client is None:
            try:
                self._client = make_client(settings)
            except IndexUnavailable as error:  # reported on use; a rebuild sets the files aside
                self._client_error = error
        self.namespace = namespace_of(settings)
        self.expected = {
            "embeddings": embeddings_identity(embeddings),
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "chunker_version": CHUNKER_VERSION,
            "layout": INDEX_LAYOUT,
        }
        self._handles: dict[str, Any] = {}
        self._records: dict[str, Generation] = {}
        self._lease: tuple[str, str] | None = None  # the server-side write lock held

    @property
    def client(self):
        """The Chroma client; raises the reason when the index's files could not be opened."""
        if self._client is None:
            raise IndexUnavailable(str(self._client_error))
        return self._client

    # -- the manifest: which generation answers -------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(self._name("manifest"), embedding_function=None)
        except NotFoundError:
            return {}
        except Exception as error:
            raise damaged(self.settings, error) from error
        return dict(collection.metadata or {})

    def _answering(self, manifest: dict[str, Any]) -> str | None:
        if any(manifest.get(key) != value for key, value in self.expected.items()):
            return None
        return manifest.get("generation")

    @property
    def generation(self) -> str | None:
        """The generation that answers, or None when none matches these settings."""
        return self._answering(self._manifest())

    def _update_manifest(self, **changes: Any) -> None:
        """Set some of the manifest's entries, keeping the others."""
        manifest = self.client.get_or_create_collection(
            self._name("manifest"), embedding_function=None
        )
        manifest.modify(metadata={**(manifest.metadata or {}), **changes})

    def _name(self, kind: str, segment: str = "") -> str:
        return "-".join(part for part in (self.namespace, kind, segment) if part)

    def _handle(self, kind: str, segment: str = "", create: bool = False):
        """A collection of this index (kept: looking one up costs a call to Chroma)."""
        name = self._name(kind, segment)
        if name not in self._handles:
            from chromadb.errors import NotFoundError

            if create:
                space = {"hnsw:space": "cosine"} if kind in KINDS else None
                self._handles[name] = self.client.get_or_create_collection(
                    name, embedding_function=None, metadata=space
                )
            else:
                try:
                    self._handles[name] = self.client.get_collection(name, embedding_function=None)
                except NotFoundError as error:
                    raise GenerationGone(f"{name} is no longer in the index") from error
        return self._handles[name]

    def record(self, generation: str | None = None) -> Generation:
        """The documents ``generation`` (default: the answering one) answers from."""
        name = generation or self.generation
        if name is None:
            raise IndexUnavailable("the index is not built yet: run `assistant ingest`")
        if name not in self._records:
            got = self._handle(GENERATIONS).get(ids=[name], include=["documents"])
            if not got["ids"]:
                raise GenerationGone(f"generation {name} is no longer in the index")
            self._records[name] = Generation.from_json(name, got["documents"][0])
        return self._records[name]

    def held(self, kind: str, generation: str | None = None) -> int:
        """How many entries of ``kind`` the segments of ``generation`` hold (at least what it
        names; more while a retired generation's documents are kept)."""
        record = self.record(generation)
        return sum(self._handle(kind, segment).count() for segment in record.segments)

    def verify(self, generation: str | None = None) -> None:
        """A quick integrity check (a few milliseconds): the generation's segments exist,
        hold at least the spans it names, and their vector files load.  Raises
        ``IndexUnavailable`` naming the repair, before a question meets the damage."""
        generation = generation or self._answering(self._manifest())
        if generation is None:
            return
        try:
            record = self.record(generation)
            if not self.settings.chroma_host:
                check_vector_files(
                    self.settings.index_dir,
                    [self._name(kind, segment) for segment in record.segments for kind in KINDS],
                )
            for segment in record.segments:
                for kind in (*KINDS, TEXTS):
                    collection = self._handle(kind, segment)
                    if (held := collection.count()) < (named := record.count(kind, segment)):
                        raise ValueError(f"{kind} of {segment} holds {held} entries, not {named}")
                    if kind in KINDS and held:
                        probe = collection.get(limit=1, include=["embeddings"])["embeddings"]
                        collection.query(query_embeddings=[list(probe[0])], n_results=1, include=[])
        except Exception as error:
            raise damaged(self.settings, error) from error

    # -- building -------------------------------------------------------------------------

    def _corpus_state(self) -> str:
        return f"{corpus_fingerprint(self.settings.corpus_dir)} {self.settings.max_file_bytes}"

    def corpus_unchanged(self) -> bool:
        """True when no corpus file was added, removed or touched since the answering
        generation was built (by name, size and modification time): no document is read."""
        return self._manifest().get("corpus") == self._corpus_state()

    def sync(self, rebuild: bool = False, progress: bool | None = None) -> SyncReport:
        """Bring the index in step with the corpus, reading and embedding only what changed.

        Holds the write lock throughout (a second ingest waits, then finds little or nothing
        to do).  ``rebuild`` starts anew, embedding everything again and reusing no vector.
        When the index fails its check, Chroma's files are first moved aside (kept for
        inspection, never written to again).
        """
        with writer_lock(self.settings.index_dir), self._server_lock():
            aside = self._set_aside() if rebuild and not self._healthy() else None
            manifest = self._manifest()
            answering = None if rebuild else self._answering(manifest)
            old = None
            if answering is not None:
                self.verify(answering)
                old = self.record(answering)
            corpus = self._corpus_state()  # before reading: an edit made meanwhile shows next time
            entries, changed, read = self._compare(old)
            if not entries:
                raise IndexUnavailable(
                    f"no readable documents in {self.settings.corpus_dir}: add .txt, .md, "
                    ".html or .pdf files"
                )
            if old is not None and not changed and entries.keys() == old.documents.keys():
                self._record_times(old, entries, corpus)  # at most files touched
                return SyncReport(len(entries), 0, old.count("chunks") + old.count("sentences"),
                                  0, read=read)  # fmt: skip
            moving = self._moving(old, entries, changed)
            embedded = new_vectors = 0
            if changed or moving:  # else documents were only removed
                segment = self._segment_to_write(manifest, old, moving)
                embedded, new_vectors = self._store(
                    segment, entries, changed, moving, old, progress
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
            self._handle(GENERATIONS).upsert(
                ids=[old.name],
                embeddings=[[1.0]],
                documents=[Generation(old.name, entries).to_json()],
            )
            self._records.pop(old.name, None)
        self._update_manifest(corpus=corpus)
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
        if not self.settings.chroma_host:
            yield
            return
        from chromadb.errors import ChromaError, NotFoundError

        name = self._name("writer-lock")
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        said = False
        while True:
            try:
                self.client.create_collection(name, embedding_function=None, metadata={
                    "holder": holder, "expires": time.time() + LEASE_SECONDS
                })  # fmt: skip
                break
            except ChromaError:
                try:
                    lease = self.client.get_collection(name, embedding_function=None).metadata
                except NotFoundError:
                    continue  # released meanwhile: try again at once
                if float((lease or {}).get("expires", 0)) < time.time():
                    logger.warning("a writer's lock on the server expired: taking it over")
                    self.client.delete_collection(name)
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
                lock = self.client.get_collection(name, embedding_function=None)
                if (lock.metadata or {}).get("holder") == holder:
                    self.client.delete_collection(name)
            except NotFoundError:
                pass

    def _renew_lease(self) -> None:
        if self._lease is not None:
            name, holder = self._lease
            lock = self.client.get_collection(name, embedding_function=None)
            lock.modify(metadata={"holder": holder, "expires": time.time() + LEASE_SECONDS})

    def _compare(self, old: Generation | None):
        """The corpus's documents as entries, the documents whose text is new (with their
        version), and how many files were read: a file is read only when its size or time
        differ from the record."""
        recorded = old.documents if old else {}
        entries: dict[str, DocumentEntry] = {}
        to_read = {}
        for stamp in corpus_files(self.settings.corpus_dir):
            entry = recorded.get(str(stamp.path))
            if (
                entry is not None
                and (entry.size, entry.mtime_ns) == (stamp.size, stamp.mtime_ns)
                and stamp.size <= self.settings.max_file_bytes
            ):
                entries[str(stamp.path)] = entry
            else:
                to_read[str(stamp.path)] = stamp
        changed: list[tuple[SourceDocument, str]] = []
        paths = [stamp.path for stamp in to_read.values()]
        for document in load_documents(paths, max_file_bytes=self.settings.max_file_bytes):
            stamp = to_read[document.path]
            version = hashlib.sha256(document.text.encode("utf-8")).hexdigest()[:20]
            before = recorded.get(document.path)
            if before is not None and before.version == version:  # touched, not changed
                entries[document.path] = dataclasses.replace(
                    before, size=stamp.size, mtime_ns=stamp.mtime_ns
                )
                continue
            changed.append((document, version))
            entries[document.path] = DocumentEntry(version, stamp.size, stamp.mtime_ns, 0, 0)
        return dict(sorted(entries.items())), changed, len(to_read)

    def _segment_to_write(self, manifest: dict[str, Any], old: Generation | None, moving) -> str:
        """A new segment, or the one a killed ingest was writing for the same generation and
        settings (nobody has read it, so it may still be written; what it holds is kept)."""
        plan = {"expected": self.expected, "after": old.name if old else None, "moving": moving}
        building = json.loads(manifest.get("building", "{}"))
        if building.get("plan") == plan:
            try:
                self._handle("chunks", building["segment"])
                return building["segment"]
            except GenerationGone:
                pass
        segment = self._new_name()
        self._update_manifest(building=json.dumps({"segment": segment, "plan": plan}))
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
        handles = {kind: self._handle(kind, segment, create=True) for kind in (*KINDS, TEXTS)}
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
                        document, self.settings.chunk_size, self.settings.chunk_overlap
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
                rows = list(self.fetch(kind, source, pairs, vectors=True))
                present = self._present(handles[kind], [span_id for span_id, _, _ in rows])
                fresh = [row for row in rows if row[0] not in present]
                for batch in _batches(fresh, CHROMA_BATCH):
                    self._renew_lease()
                    handles[kind].add(
                        ids=[span_id for span_id, _, _ in batch],
                        embeddings=[list(vector) for _, _, vector in batch],
                        documents=[span.text for _, span, _ in batch],
                        metadatas=[_metadata(span, versions[span.source]) for _, span, _ in batch],
                    )
            for batch in _batches(pairs, BATCH):
                ids = [text_id(path, version) for path, version in batch]
                got = self._handle(TEXTS, source).get(ids=ids, include=["documents", "metadatas"])
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
                for _, span, vector in self.fetch(kind, segment, pairs, vectors=True):
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
        for batch in _batches(ids, CHROMA_BATCH):
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
        for batch in _batches(texts, BATCH):
            known.update(zip(batch, self.embeddings.embed_documents(batch), strict=True))
        for kind in KINDS:
            items = [item for item in missing if item[0] == kind]
            for batch in _batches(items, CHROMA_BATCH):
                handles[kind].add(
                    ids=[span_id for _, span_id, _, _ in batch],
                    embeddings=[list(known[span.text]) for _, _, span, _ in batch],
                    documents=[span.text for _, _, span, _ in batch],
                    metadatas=[_metadata(span, version) for _, _, span, version in batch],
                )
        return len(texts), sum(1 for _, _, span, _ in missing if span.text in fresh)

    def _commit(self, generation: Generation, corpus: str) -> None:
        """Record ``generation`` and move the manifest to it; retire the one it replaces."""
        self._handle(GENERATIONS, create=True).add(
            ids=[generation.name], embeddings=[[1.0]], documents=[generation.to_json()]
        )
        self._records[generation.name] = generation
        previous = self._manifest()
        retired = json.loads(previous.get("retired", "{}"))
        if previous.get("generation"):
            retired[previous["generation"]] = time.time()
        self._update_manifest(
            **self.expected,
            generation=generation.name,
            built_at=time.time(),
            corpus=corpus,
            retired=json.dumps(retired),
            building="{}",
        )
        self._collect_garbage(generation.name)

    def _healthy(self) -> bool:
        try:
            self.verify()
        except IndexUnavailable:
            return False
        return True

    def _set_aside(self) -> Path | None:
        if self.settings.chroma_host or not self._own_client:
            return None  # a server's files are not ours to move: the rebuild re-embeds instead
        forget_client(self.settings.index_dir)
        aside = set_aside(self.settings.index_dir)
        self._client, self._client_error = make_client(self.settings), None
        self._handles.clear()
        self._records.clear()
        if aside:
            logger.warning("set the old index aside as %s", aside)
        return aside

    def _collect_garbage(self, answering: str) -> None:
        """Delete what no reader can still be using (under the write lock): generations
        retired long enough ago, and the segments no kept generation answers from (a killed
        ingest's among them); then the folders Chroma leaves behind for deleted collections."""
        manifest = self._manifest()
        retired = json.loads(manifest.get("retired", "{}"))
        now = time.time()
        keep = {answering} | {g for g, at in retired.items() if now - at < RETIRED_KEPT_SECONDS}
        records = self._handle(GENERATIONS, create=True)
        every = set(records.get(include=[])["ids"])
        segments = {s for name in keep & every for s in self.record(name).segments}
        segments.add(json.loads(manifest.get("building", "{}")).get("segment", ""))
        if every - keep:
            records.delete(ids=sorted(every - keep))
        for name in every - keep:
            self._records.pop(name, None)
        prefixes = [self._name(kind) + "-" for kind in (*KINDS, TEXTS)]
        for collection in self.client.list_collections():
            name = getattr(collection, "name", collection)
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            if prefix and name[len(prefix) :] not in segments:
                self.client.delete_collection(name)
                self._handles.pop(name, None)
        if retired.keys() - keep:
            self._update_manifest(
                retired=json.dumps({g: retired[g] for g in retired.keys() & keep})
            )
        if not self.settings.chroma_host:
            remove_orphan_segment_folders(self.settings.index_dir)

    # -- reading --------------------------------------------------------------------------

    def fetch(
        self, kind: str, segment: str, pairs: Iterable[tuple[str, str]], vectors: bool = False
    ) -> Iterator[tuple[str, Span, Any]]:
        """The spans of ``kind`` that ``segment`` holds of the given (path, version)
        documents, as (id, span, vector or None), in no particular order."""
        include = ["documents", "metadatas", *(["embeddings"] if vectors else [])]
        for batch in _batches(sorted(set(pairs)), 50):
            got = self._handle(kind, segment).get(where=_where_pairs(batch), include=include)
            embeddings = got["embeddings"] if vectors else [None] * len(got["ids"])
            for span_id, text, meta, vector in zip(
                got["ids"], got["documents"], got["metadatas"], embeddings, strict=True
            ):
                span = Span(
                    meta["source"],
                    int(meta["start"]),
                    int(meta["end"]),
                    text,
                    bool(meta.get("opens_paragraph", False)),
                )
                yield span_id, span, vector

    def spans(self, kind: str, generation: str | None = None) -> list[Span]:
        """Every span of ``kind`` in ``generation`` (default: the answering one), in order."""
        record = self.record(generation)
        found = [
            span
            for segment in record.segments
            for _, span, _ in self.fetch(kind, segment, record.pairs(segment))
        ]
        return sorted(found, key=lambda span: (span.source, span.start, span.end))

    def text(self, source: str, generation: str | None = None) -> str:
        """The text of ``source`` as ``generation`` indexed it: what its citations count in."""
        entry = self.record(generation).documents.get(source)
        if entry is None:
            raise KeyError(f"{source} is not in the index")
        got = self._handle(TEXTS, entry.segment).get(
            ids=[text_id(source, entry.version)], include=["documents"]
        )
        if not got["ids"]:
            raise GenerationGone(f"the text of {source} is no longer in the index")
        return got["documents"][0]

    def query_chunks(
        self, vector: list[float], n: int, generation: str | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunk ids of ``generation``'s documents with their cosine
        similarity (pin it to the generation the caller's lexical index came from).

        A segment may also hold spans of documents since changed, so as many more are asked
        for as it holds beyond this generation's, and those are passed over."""
        from chromadb.errors import NotFoundError

        record = self.record(generation)
        found = []
        for segment in record.segments:
            collection = self._handle("chunks", segment)
            wanted = record.count("chunks", segment)
            try:
                extra = max(0, collection.count() - wanted)
                result = collection.query(
                    query_embeddings=[vector],
                    n_results=max(1, min(n, wanted) + extra),
                    include=["distances", "metadatas"],
                )
            except NotFoundError as error:
                raise GenerationGone(
                    f"generation {record.name} is no longer in the index"
                ) from error
            for span_id, distance, meta in zip(
                result["ids"][0], result["distances"][0], result["metadatas"][0], strict=True
            ):
                entry = record.documents.get(meta["source"])
                if entry and (entry.version, entry.segment) == (meta.get("version"), segment):
                    found.append((span_id, 1.0 - distance))
        return sorted(found, key=lambda item: -item[1])[:n]


def _metadata(span: Span, version: str) -> dict[str, Any]:
    return {
        "source": span.source,
        "version": version,
        "start": span.start,
        "end": span.end,
        "opens_paragraph": span.opens_paragraph,
    }


def _where_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A Chroma filter for spans of any of the (source, version) documents."""
    clauses = [{"$and": [{"source": path}, {"version": version}]} for path, version in pairs]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _batches(items: list, size: int) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
