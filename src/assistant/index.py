"""Index: Chroma (embedded or server), kept in step with ``corpus/``.

Each build writes a new *generation* of collections and only then moves the manifest to it, so
a killed ingest leaves the previous generation answering.  Span ids are content hashes: an
unchanged span is copied with its stored vector, never embedded again.  The manifest records the
model and chunking that built the vectors; when they differ, everything is rebuilt instead of
mixing vectors from two models.
"""

from __future__ import annotations

import hashlib
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
from assistant.embed import MODEL_NAME, MODEL_SHA256
from assistant.load import SourceDocument, load_corpus

logger = logging.getLogger(__name__)

KINDS = ("chunks", "sentences")
INDEX_LAYOUT = 2  # bump when collection names or metadata change: older indexes are rebuilt
BATCH = 256


class IndexUnavailable(RuntimeError):
    """The index cannot be opened or used; the message says what to do."""


@dataclass(frozen=True)
class SyncReport:
    """What a sync did: how many spans were embedded, kept from before, and removed."""

    documents: int
    embedded: int
    kept: int
    removed: int


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
        # Chroma caches a client per path, the broken one included; forget it so a rebuild
        # in this process can open the same path afresh.
        chromadb.api.client.SharedSystemClient.clear_system_cache()
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
        self.client = client if client is not None else make_client(settings)
        self.namespace = namespace_of(settings)
        self.expected = {
            "model": MODEL_NAME,
            "model_sha256": MODEL_SHA256,
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "chunker_version": CHUNKER_VERSION,
            "layout": INDEX_LAYOUT,
        }

    # -- the manifest: which generation answers -------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        try:
            return dict(
                self.client.get_collection(self._name("manifest"), embedding_function=None).metadata
                or {}
            )
        except Exception:
            return {}

    @property
    def generation(self) -> str | None:
        """The generation that answers, or None when none matches these settings."""
        manifest = self._manifest()
        if any(manifest.get(key) != value for key, value in self.expected.items()):
            return None
        return manifest.get("generation")

    def collection(self, kind: str, generation: str | None = None):
        generation = generation or self.generation
        if generation is None:
            raise IndexUnavailable("the index is not built yet: run `assistant ingest`")
        return self.client.get_collection(self._name(kind, generation), embedding_function=None)

    def _name(self, kind: str, generation: str = "") -> str:
        return "-".join(part for part in (self.namespace, kind, generation) if part)

    # -- building -------------------------------------------------------------------------

    def desired_spans(self, documents: Iterable[SourceDocument]) -> dict[str, dict[str, Span]]:
        wanted: dict[str, dict[str, Span]] = {kind: {} for kind in KINDS}
        for document in documents:
            chunks = chunk_document(document, self.settings.chunk_size, self.settings.chunk_overlap)
            for kind, spans in (("chunks", chunks), ("sentences", split_sentences(document))):
                wanted[kind].update((span.span_id, span) for span in spans)
        return wanted

    def stored_ids(self, generation: str | None = None) -> dict[str, set[str]]:
        generation = generation or self.generation
        nothing: dict[str, set[str]] = {kind: set() for kind in KINDS}
        if generation is None:
            return nothing
        try:
            return {
                kind: set(self.collection(kind, generation).get(include=[])["ids"])
                for kind in KINDS
            }
        except Exception:  # the manifest names collections that are gone: rebuild them
            return nothing

    def is_current(self, documents: list[SourceDocument]) -> bool:
        """True when the answering generation holds exactly the spans of ``documents``."""
        wanted = self.desired_spans(documents)
        return self.generation is not None and self.stored_ids() == {
            kind: set(spans) for kind, spans in wanted.items()
        }

    def sync(self, rebuild: bool = False, progress: bool | None = None) -> SyncReport:
        """Bring the index in step with the corpus; embed only spans not stored already."""
        documents = list(load_corpus(self.settings.corpus_dir))
        if not documents:
            raise IndexUnavailable(
                f"no readable documents in {self.settings.corpus_dir}: add .txt, .md, .html "
                "or .pdf files"
            )
        wanted = self.desired_spans(documents)
        old = None if rebuild else self.generation
        stored = self.stored_ids(old)
        if old and stored == {kind: set(spans) for kind, spans in wanted.items()}:
            return SyncReport(len(documents), 0, sum(map(len, stored.values())), 0)

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
        self.client.get_or_create_collection(
            self._name("manifest"), embedding_function=None
        ).modify(metadata={**self.expected, "generation": new, "built_at": time.time()})
        self._drop_other_generations(new)
        return SyncReport(len(documents), embedded, kept, removed)

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

    def _drop_other_generations(self, keep: str) -> None:
        for collection in self.client.list_collections():
            name = getattr(collection, "name", collection)
            ours = any(name.startswith(self._name(kind) + "-") for kind in KINDS)
            if ours and not name.endswith(keep):
                self.client.delete_collection(name)

    # -- reading --------------------------------------------------------------------------

    def table(self, kind: str, generation: str | None = None) -> SpanTable:
        """Every span of ``kind`` in ``generation`` (default: the answering one), with vectors."""
        got = self.collection(kind, generation).get(
            include=["embeddings", "documents", "metadatas"]
        )
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


def set_aside_broken_index(index_dir: Path) -> Path | None:
    """Move an unreadable index folder out of the way (never delete it) and return where to."""
    if not index_dir.exists() or not any(index_dir.iterdir()):
        return None
    aside = index_dir.with_name(f"{index_dir.name}.broken-{time.strftime('%Y%m%d%H%M%S')}")
    index_dir.rename(aside)
    index_dir.mkdir()
    (index_dir / ".gitkeep").touch()
    return aside
