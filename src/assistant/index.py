"""Index: Chroma (embedded or server), how spans are stored and how a generation is read.

Spans are stored in *segments*, each a set of collections (chunks, sentences, texts) written
once and never changed after: processes sharing an embedded index each hold a segment's vectors
as they were when they opened it, so only a segment nobody has opened may be written to.  A
*generation* is a record of the documents (path, content version, segment) it answers from; the
manifest names the generation that answers.  A generation answers from a large base segment and
at most one small one (``ingest`` decides which spans go where).  Readers keep to their
generation's documents, passing over the spans of other versions a segment may hold, so what an
ingest writes is invisible until it moves the manifest.

Citations count offsets in the text as indexed, which is kept with each document version, so
a quote always equals ``text[start:end]`` of that text whatever happens to the file since.
The manifest records the embeddings and chunking that built the index; when they differ,
everything is built anew instead of mixing vectors from two models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from assistant.chunk import CHUNKER_VERSION, Span
from assistant.config import Settings
from assistant.embed import MODEL_NAME, MODEL_SHA256, MiniLMEmbeddings
from assistant.index_files import (
    check_vector_files,
    forget_client,
    set_aside,
)
from assistant.load import corpus_fingerprint

logger = logging.getLogger(__name__)

KINDS = ("chunks", "sentences")
TEXTS = "texts"  # each document version's text as indexed: what citation offsets count in
GENERATIONS = "generations"  # one record per generation: the documents it answers from
INDEX_LAYOUT = 5  # bump when collection names or metadata change: older indexes are rebuilt
# How many candidates Chroma's HNSW search keeps (its ef). Chroma's default, 100, makes the
# search approximate, and its graph is built by several threads, so two builds of one corpus
# could retrieve different chunks: answers, eval figures and training data varied between
# machines. A segment of up to this many chunks is searched exhaustively, so exactly and alike
# everywhere (4 ms a question at 10,000 chunks here, against 0.8 ms at the default).
EXHAUSTIVE_SEARCH = 10_000


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
class DocumentEntry:
    """One document of a generation: its content version, the file it was read from, the
    segment holding its spans, and when this version was first indexed (seconds since the
    epoch; 0 in records written before the time was kept, which read as they always did)."""

    version: str  # a hash of the text as indexed
    size: int
    mtime_ns: int
    chunks: int
    sentences: int
    segment: str = ""
    indexed_at: float = 0.0


@dataclass(frozen=True)
class Generation:
    """What one generation answers from: a set of documents, each in its segment."""

    name: str
    documents: dict[str, DocumentEntry]

    def count(self, kind: str, segment: str | None = None) -> int:
        return self._counts[kind, segment]

    @cached_property
    def _counts(self) -> Counter:
        """Entries of each kind, in all and by segment (asked for on every question)."""
        counts: Counter = Counter()
        for entry in self.documents.values():
            for segment in (None, entry.segment):
                counts[TEXTS, segment] += 1
                for kind in KINDS:
                    counts[kind, segment] += getattr(entry, kind)
        return counts

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
        self._counts: dict[str, int] = {}

    @property
    def client(self):
        """The Chroma client; raises the reason when the index's files could not be opened."""
        if self._client is None:
            raise IndexUnavailable(str(self._client_error))
        return self._client

    # -- the manifest: which generation answers -------------------------------------------

    def manifest(self) -> dict[str, Any]:
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(self.name("manifest"), embedding_function=None)
        except NotFoundError:
            return {}
        except Exception as error:
            raise damaged(self.settings, error) from error
        return dict(collection.metadata or {})

    def answering(self, manifest: dict[str, Any]) -> str | None:
        if any(manifest.get(key) != value for key, value in self.expected.items()):
            return None
        return manifest.get("generation")

    @property
    def generation(self) -> str | None:
        """The generation that answers, or None when none matches these settings."""
        return self.answering(self.manifest())

    def retired(self, manifest: dict[str, Any]) -> dict[str, float]:
        """The manifest's retired generations, with when each was retired."""
        retired = self._entry(manifest, "retired")
        if not all(isinstance(at, int | float) for at in retired.values()):
            raise damaged(self.settings, "the manifest's retired entry holds a non-time")
        return retired

    def building(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The segment a (perhaps killed) ingest is writing and its plan; {} when none."""
        building = self._entry(manifest, "building")
        if building and not isinstance(building.get("segment"), str):
            raise damaged(self.settings, "the manifest's building entry names no segment")
        return building

    def _entry(self, manifest: dict[str, Any], key: str) -> dict[str, Any]:
        """A JSON object the manifest keeps as text: one that cannot be read is damage (only
        an ingest reads these, so questions are still answered meanwhile)."""
        try:
            value = json.loads(manifest.get(key, "{}"))
        except (TypeError, ValueError) as error:
            reason = f"the manifest's {key} entry cannot be read: {error}"
            raise damaged(self.settings, reason) from error
        if not isinstance(value, dict):
            raise damaged(self.settings, f"the manifest's {key} entry is not a JSON object")
        return value

    def update_manifest(self, **changes: Any) -> None:
        """Set some of the manifest's entries, keeping the others."""
        manifest = self.client.get_or_create_collection(
            self.name("manifest"), embedding_function=None
        )
        manifest.modify(metadata={**(manifest.metadata or {}), **changes})

    def name(self, kind: str, segment: str = "") -> str:
        return "-".join(part for part in (self.namespace, kind, segment) if part)

    def handle(self, kind: str, segment: str = "", create: bool = False):
        """A collection of this index (kept: looking one up costs a call to Chroma)."""
        name = self.name(kind, segment)
        if name not in self._handles:
            from chromadb.errors import NotFoundError

            if create:
                space = (
                    {"hnsw:space": "cosine", "hnsw:search_ef": EXHAUSTIVE_SEARCH}
                    if kind in KINDS
                    else None
                )
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
            got = self.handle(GENERATIONS).get(ids=[name], include=["documents"])
            if not got["ids"]:
                raise GenerationGone(f"generation {name} is no longer in the index")
            self._records[name] = Generation.from_json(name, got["documents"][0])
        return self._records[name]

    def remember(self, generation: Generation) -> None:
        self._records[generation.name] = generation

    def forget(self, generation: str) -> None:
        """Drop a kept record (it was rewritten or deleted)."""
        self._records.pop(generation, None)

    def delete_collection(self, name: str) -> None:
        self.client.delete_collection(name)
        self._handles.pop(name, None)

    def held(self, kind: str, generation: str | None = None) -> int:
        """How many entries of ``kind`` the segments of ``generation`` hold (at least what it
        names; more while a retired generation's documents are kept)."""
        record = self.record(generation)
        return sum(self.handle(kind, segment).count() for segment in record.segments)

    def verify(self, generation: str | None = None) -> None:
        """A quick integrity check (a few milliseconds): the generation's segments exist,
        hold at least the spans it names, and their vector files load.  Raises
        ``IndexUnavailable`` naming the repair, before a question meets the damage."""
        generation = generation or self.answering(self.manifest())
        if generation is None:
            return
        try:
            self.check(self.record(generation))
        except Exception as error:
            raise damaged(self.settings, error) from error

    def check(self, record: Generation) -> None:
        """Raise (Chroma's error, or ``ValueError`` saying what is short) unless the segments
        of ``record`` hold at least the spans it names and their vectors can be searched: what
        ``verify`` asks of an answering generation, and an ingest of the one it is about to
        record."""
        if not self.settings.chroma_host:
            check_vector_files(
                self.settings.index_dir,
                [self.name(kind, segment) for segment in record.segments for kind in KINDS],
            )
        for segment in record.segments:
            for kind in (*KINDS, TEXTS):
                collection = self.handle(kind, segment)
                if (held := collection.count()) < (named := record.count(kind, segment)):
                    raise ValueError(f"{kind} of {segment} holds {held} entries, not {named}")
                if kind in KINDS and held:
                    probe = collection.get(limit=1, include=["embeddings"])["embeddings"]
                    collection.query(query_embeddings=[list(probe[0])], n_results=1, include=[])

    # -- building -------------------------------------------------------------------------

    def corpus_state(self) -> str:
        return f"{corpus_fingerprint(self.settings.corpus_dir)} {self.settings.max_file_bytes}"

    def corpus_unchanged(self) -> bool:
        """True when no corpus file was added, removed or touched since the answering
        generation was built (by name, size and modification time): no document is read."""
        return self.manifest().get("corpus") == self.corpus_state()

    def healthy(self) -> bool:
        """True when the answering generation passes ``verify`` and an ingest can read the
        manifest: a rebuild sets the files aside otherwise."""
        try:
            self.verify()
            manifest = self.manifest()
            self.retired(manifest)
            self.building(manifest)
        except IndexUnavailable:
            return False
        return True

    def set_files_aside(self) -> Path | None:
        """Move Chroma's files aside (never deleted) and open a new, empty index in their
        place; a server's files are not ours to move, so there nothing is done."""
        if self.settings.chroma_host or not self._own_client:
            return None  # a server's files are not ours to move: the rebuild re-embeds instead
        forget_client(self.settings.index_dir)
        aside = set_aside(self.settings.index_dir)
        self._client, self._client_error = make_client(self.settings), None
        self._handles.clear()
        self._records.clear()
        self._counts.clear()
        if aside:
            logger.warning("set the old index aside as %s", aside)
        return aside

    # -- reading --------------------------------------------------------------------------

    def fetch(
        self, kind: str, segment: str, pairs: Iterable[tuple[str, str]], vectors: bool = False
    ) -> Iterator[tuple[str, Span, Any]]:
        """The spans of ``kind`` that ``segment`` holds of the given (path, version)
        documents, as (id, span, vector or None), in no particular order."""
        include = ["documents", "metadatas", *(["embeddings"] if vectors else [])]
        for batch in batches(sorted(set(pairs)), 50):
            got = self.handle(kind, segment).get(where=_where_pairs(batch), include=include)
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

    def _held(self, collection) -> int:
        """What a recorded segment's collection holds: counted once, since a segment is never
        written after a generation names it."""
        if collection.name not in self._counts:
            self._counts[collection.name] = collection.count()
        return self._counts[collection.name]

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
        got = self.handle(TEXTS, entry.segment).get(
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
            collection = self.handle("chunks", segment)
            wanted = record.count("chunks", segment)
            try:
                extra = max(0, self._held(collection) - wanted)
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


def span_metadata(span: Span, version: str) -> dict[str, Any]:
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


def batches(items: list, size: int) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
