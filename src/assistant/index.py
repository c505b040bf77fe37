"""Index: Chroma (embedded or server), kept in step with ``corpus/``, safe to share.

Each build writes a new *generation* of collections and only then moves the manifest to it, so
a killed ingest leaves the previous generation answering.  Span ids are content hashes: an
unchanged span is copied with its stored vector, never embedded again.  The manifest records the
embeddings and chunking that built the vectors; when they differ, everything is rebuilt instead
of mixing vectors from two models.

Several processes may share one index (a page serving while someone ingests), so:

* one writer at a time: every build holds an OS file lock beside the index;
* readers never see a generation vanish: a replaced generation is *retired*, and deleted only by
  a build that starts after it has been retired for ``RETIRED_KEPT_SECONDS`` (readers look for
  a newer generation every few seconds);
* citations count offsets in the text as indexed, which is kept with its generation, so a quote
  always equals ``text[start:end]`` of that text whatever happens to the file since.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from assistant.load import SourceDocument, corpus_fingerprint, load_corpus

logger = logging.getLogger(__name__)

KINDS = ("chunks", "sentences")
TEXTS = "texts"  # each document's text as indexed: what citation offsets count in
INDEX_LAYOUT = 3  # bump when collection names or metadata change: older indexes are rebuilt
BATCH = 256
RETIRED_KEPT_SECONDS = 600.0
PROGRESS_EVERY_SECONDS = 10.0


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
    """What a sync did: how many spans were embedded, kept from before, and removed; where a
    rebuild set the old index aside."""

    documents: int
    embedded: int
    kept: int
    removed: int
    set_aside: Path | None = None


@dataclass(frozen=True)
class SpanTable:
    """All spans of one kind in one generation, with their unit-length vectors."""

    spans: list[Span]
    ids: list[str]
    vectors: np.ndarray


def namespace_of(settings: Settings) -> str:
    """ "assistant" for an embedded index; on a server, one namespace per corpus folder."""
    if not settings.chroma_host:
        return "assistant"
    folder = str(settings.corpus_dir.resolve())
    return f"assistant-{hashlib.sha1(folder.encode()).hexdigest()[:10]}"


def embeddings_identity(embeddings: Any) -> str:
    """What the manifest records of the embeddings that built a generation: vectors from
    another model must never be mixed in or searched with (the packaged MiniLM is named by its
    weights' hash; others by class and model name)."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return f"{MODEL_NAME} sha256:{MODEL_SHA256}"
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

    def collection(self, kind: str, generation: str | None = None):
        generation = generation or self.generation
        if generation is None:
            raise IndexUnavailable("the index is not built yet: run `assistant ingest`")
        from chromadb.errors import NotFoundError

        try:
            return self.client.get_collection(self._name(kind, generation), embedding_function=None)
        except NotFoundError as error:
            raise GenerationGone(f"generation {generation} is no longer in the index") from error

    def _name(self, kind: str, generation: str = "") -> str:
        return "-".join(part for part in (self.namespace, kind, generation) if part)

    def verify(self, generation: str | None = None) -> None:
        """A quick integrity check (a few milliseconds): the manifest's generation has all its
        collections, each holding the count the manifest recorded, and their vector files load.
        Raises ``IndexUnavailable`` naming the repair, before a question meets the damage."""
        manifest = self._manifest()
        generation = generation or self._answering(manifest)
        if generation is None:
            return
        try:
            if not self.settings.chroma_host:
                check_vector_files(
                    self.settings.index_dir, [self._name(kind, generation) for kind in KINDS]
                )
            counts = json.loads(manifest.get("counts", "{}"))
            for kind in (*KINDS, TEXTS):
                collection = self.collection(kind, generation)
                if (held := collection.count()) != counts.get(kind):
                    raise ValueError(
                        f"{kind} holds {held} entries, the manifest says {counts.get(kind)}"
                    )
                if kind in KINDS:
                    probe = collection.get(limit=1, include=["embeddings"])["embeddings"]
                    collection.query(query_embeddings=[list(probe[0])], n_results=1, include=[])
        except Exception as error:
            raise damaged(self.settings, error) from error

    # -- building -------------------------------------------------------------------------

    def desired_spans(self, documents: Iterable[SourceDocument]) -> dict[str, dict[str, Span]]:
        wanted: dict[str, dict[str, Span]] = {kind: {} for kind in KINDS}
        for document in documents:
            chunks = chunk_document(document, self.settings.chunk_size, self.settings.chunk_overlap)
            for kind, spans in (("chunks", chunks), ("sentences", split_sentences(document))):
                wanted[kind].update((span.span_id, span) for span in spans)
        return wanted

    def stored_ids(self, generation: str | None = None) -> dict[str, set[str]]:
        """The span ids ``generation`` (default: the answering one) holds, by kind."""
        generation = generation or self.generation
        if generation is None:
            return {kind: set() for kind in KINDS}
        try:
            return {
                kind: set(self.collection(kind, generation).get(include=[])["ids"])
                for kind in KINDS
            }
        except Exception as error:
            raise damaged(self.settings, error) from error

    def _corpus_state(self) -> str:
        return f"{corpus_fingerprint(self.settings.corpus_dir)} {self.settings.max_file_bytes}"

    def corpus_unchanged(self) -> bool:
        """True when no corpus file was added, removed or touched since the answering
        generation was built (by name, size and modification time): no document is read."""
        return self._manifest().get("corpus") == self._corpus_state()

    def sync(self, rebuild: bool = False, progress: bool | None = None) -> SyncReport:
        """Bring the index in step with the corpus; embed only spans not stored already.

        Holds the write lock throughout (a second ingest waits, then finds little or nothing
        to do).  ``rebuild`` embeds everything from the corpus again, reusing no vector.  When
        the index fails its check, Chroma's files are first moved aside (kept for inspection,
        never written to again); a sound index gets a fresh generation in place, so the
        processes reading it move over to it as after any ingest.
        """
        with writer_lock(self.settings.index_dir):
            aside = self._set_aside() if rebuild and not self._healthy() else None
            corpus = self._corpus_state()  # before reading: an edit made meanwhile shows next time
            documents = list(
                load_corpus(self.settings.corpus_dir, max_file_bytes=self.settings.max_file_bytes)
            )
            if not documents:
                raise IndexUnavailable(
                    f"no readable documents in {self.settings.corpus_dir}: add .txt, .md, "
                    ".html or .pdf files"
                )
            wanted = self.desired_spans(documents)
            old = None if rebuild else self.generation
            if old is not None:
                self.verify(old)
            stored = self.stored_ids(old) if old else {kind: set() for kind in KINDS}
            if old and stored == {kind: set(spans) for kind, spans in wanted.items()}:
                self._update_manifest(corpus=corpus)
                self._collect_garbage(old)
                return SyncReport(len(documents), 0, sum(map(len, stored.values())), 0)
            report = self._build(documents, wanted, old, stored, progress, corpus)
            return dataclasses.replace(report, set_aside=aside)

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
        if aside:
            logger.warning("set the old index aside as %s", aside)
        return aside

    def _build(self, documents, wanted, old, stored, progress, corpus: str) -> SyncReport:
        new = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        embedded = kept = removed = 0
        for kind in KINDS:
            target = self.client.create_collection(
                self._name(kind, new), embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
            keep = [span_id for span_id in wanted[kind] if span_id in stored[kind]]
            if keep:
                self._copy(self.collection(kind, old), target, keep)
            fresh = [span for span_id, span in wanted[kind].items() if span_id not in stored[kind]]
            self._embed_into(target, fresh, kind, progress)
            embedded += len(fresh)
            kept += len(keep)
            removed += len(stored[kind] - set(wanted[kind]))
        self._store_texts(new, documents)
        previous = self._manifest()
        retired = json.loads(previous.get("retired", "{}"))
        if previous.get("generation"):
            retired[previous["generation"]] = time.time()
        counts = {kind: len(wanted[kind]) for kind in KINDS} | {TEXTS: len(documents)}
        self._update_manifest(
            **self.expected,
            generation=new,
            built_at=time.time(),
            corpus=corpus,
            counts=json.dumps(counts),
            retired=json.dumps(retired),
        )
        self._collect_garbage(new)
        return SyncReport(len(documents), embedded, kept, removed)

    def _store_texts(self, generation: str, documents: list[SourceDocument]) -> None:
        texts = self.client.create_collection(
            self._name(TEXTS, generation), embedding_function=None
        )
        for batch in _batches(documents, BATCH):
            texts.add(
                ids=[document.path for document in batch],
                embeddings=[[1.0]] * len(batch),  # Chroma wants a vector; texts are looked up by id
                documents=[document.text for document in batch],
            )

    def _copy(self, source, target, ids: list[str]) -> None:
        for batch in _batches(ids, BATCH):
            got = source.get(ids=batch, include=["embeddings", "documents", "metadatas"])
            target.add(
                ids=got["ids"],
                embeddings=got["embeddings"],
                documents=got["documents"],
                metadatas=got["metadatas"],
            )

    def _embed_into(self, target, spans: list[Span], kind: str, progress: bool | None) -> None:
        bar = tqdm(
            total=len(spans),
            desc=f"embedding {kind}",
            unit=kind[:-1],
            disable=None if progress is None else not progress,
        )
        started = last_logged = time.monotonic()
        done = 0
        with bar:
            for batch in _batches(spans, BATCH):
                target.add(
                    ids=[span.span_id for span in batch],
                    embeddings=self.embeddings.embed_documents([span.text for span in batch]),
                    documents=[span.text for span in batch],
                    metadatas=[
                        {
                            "source": span.source,
                            "start": span.start,
                            "end": span.end,
                            "opens_paragraph": span.opens_paragraph,
                        }
                        for span in batch
                    ],
                )
                bar.update(len(batch))
                done += len(batch)
                now = time.monotonic()
                if bar.disable and (
                    done == len(batch) or now - last_logged >= PROGRESS_EVERY_SECONDS
                ):
                    last_logged = now  # no progress bar without a terminal: log instead
                    rate = done / max(now - started, 1e-9)
                    logger.info(
                        "stored %d of %d %s (%.0f a second, about %.0f s left)",
                        done,
                        len(spans),
                        kind,
                        rate,
                        (len(spans) - done) / rate,
                    )

    def _collect_garbage(self, answering: str) -> None:
        """Delete the generations no reader can still be using (under the write lock): those
        retired long enough ago, and leftovers of builds that never finished; then the segment
        folders Chroma leaves behind for deleted collections."""
        manifest = self._manifest()
        retired = json.loads(manifest.get("retired", "{}"))
        now = time.time()
        keep = {answering} | {
            generation for generation, at in retired.items() if now - at < RETIRED_KEPT_SECONDS
        }
        prefixes = [self._name(kind) + "-" for kind in (*KINDS, TEXTS)]
        for collection in self.client.list_collections():
            name = getattr(collection, "name", collection)
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            if prefix and name[len(prefix) :] not in keep:
                self.client.delete_collection(name)
        if retired.keys() - keep:
            self._update_manifest(
                retired=json.dumps({g: retired[g] for g in retired.keys() & keep})
            )
        if not self.settings.chroma_host:
            remove_orphan_segment_folders(self.settings.index_dir)

    # -- reading --------------------------------------------------------------------------

    def table(self, kind: str, generation: str | None = None) -> SpanTable:
        """Every span of ``kind`` in ``generation`` (default: the answering one), with vectors."""
        try:
            got = self.collection(kind, generation).get(
                include=["embeddings", "documents", "metadatas"]
            )
        except IndexUnavailable:
            raise
        except Exception as error:
            raise damaged(self.settings, error) from error
        spans = [
            Span(
                meta["source"],
                int(meta["start"]),
                int(meta["end"]),
                text,
                bool(meta.get("opens_paragraph", False)),
            )
            for text, meta in zip(got["documents"], got["metadatas"], strict=True)
        ]
        order = sorted(range(len(spans)), key=lambda i: (spans[i].source, spans[i].start))
        vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(spans), -1)
        return SpanTable(
            spans=[spans[i] for i in order],
            ids=[got["ids"][i] for i in order],
            vectors=vectors[order] if len(order) else vectors,
        )

    def text(self, source: str, generation: str | None = None) -> str:
        """The text of ``source`` as ``generation`` indexed it: what its citations count in."""
        got = self.collection(TEXTS, generation).get(ids=[source], include=["documents"])
        if not got["ids"]:
            raise KeyError(f"{source} is not in the index")
        return got["documents"][0]

    def query_chunks(
        self, vector: list[float], n: int, generation: str | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunk ids with their cosine similarity, in ``generation`` (pin it
        to the generation the caller's BM25 and sentences came from)."""
        result = self.collection("chunks", generation).query(
            query_embeddings=[vector], n_results=n, include=["distances"]
        )
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]


def _batches(items: list, size: int) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
