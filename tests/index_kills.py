"""The child side of the kill test in ``test_index_faults``: ingests run in processes of their
own and killed with SIGKILL.  They start from a ``forkserver`` that has imported ``PRELOAD``
(and started no thread), so each starts in a fraction of a second, and they embed and split
nothing: the vectors and sentences of an uninterrupted ingest are handed to them, so an ingest
of a thousand sentences takes about a second and the kills land among its Chroma writes."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import chromadb.api.models.Collection
import tqdm

import assistant.ingest
from assistant.chunk import Span, split_sentences
from assistant.config import Settings
from assistant.embed import MiniLMEmbeddings
from assistant.index import Index
from assistant.load import SourceDocument

# What the forkserver imports: modules on its own path (3.11's forkserver does not take the
# parent's, so this file, beside the tests, is imported by each child, and costs nothing).
PRELOAD = ["assistant.ingest", "chromadb.api.models.Collection", "chromadb.api.rust"]
FLUSH_AT = 1000  # entries after which Chroma writes a collection's vectors to its HNSW files


class RememberedVectors(MiniLMEmbeddings):
    """The packaged MiniLM as the index knows it (same identity, same vectors), answering
    from the vectors it was given instead of running the model; with ``fallback``, a text it
    was not given is embedded by ``fallback`` once, then remembered."""

    def __init__(
        self, vectors: dict[str, list[float]], fallback: MiniLMEmbeddings | None = None
    ) -> None:
        super().__init__()
        self.vectors = vectors
        self.fallback = fallback

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if missing and self.fallback is not None:
            self.vectors.update(zip(missing, self.fallback.embed_documents(missing), strict=True))
        return [self.vectors[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return (self.fallback or super()).embed_query(text)


class RememberedParses:
    """spaCy's pipeline as the collection calls it (``pipe``), parsing each sentence once and
    then handing back the same parse: reading the sentences takes most of a rebuild's time."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.parses: dict = {}

    def pipe(self, texts, batch_size: int = 64):
        texts = list(texts)
        missing = [text for text in dict.fromkeys(texts) if text not in self.parses]
        parsed = self.pipeline.pipe(missing, batch_size=batch_size)
        self.parses.update(zip(missing, parsed, strict=True))
        return (self.parses[text] for text in texts)


@dataclasses.dataclass(frozen=True)
class RememberedSentences:
    """``split_sentences`` as it split each text before (wherever the file now lies): the
    splitter takes most of a small ingest's time. A text not split before is split, once."""

    sentences: dict[str, list[Span]]  # a document's text -> its sentences

    def __call__(self, document: SourceDocument) -> list[Span]:
        if document.text not in self.sentences:
            self.sentences[document.text] = split_sentences(document)
        return [
            dataclasses.replace(span, source=document.path)
            for span in self.sentences[document.text]
        ]


def settings_in(root: Path) -> Settings:
    return Settings.load(
        environ={}, corpus_dir=root / "corpus", index_dir=root / "index", data_dir=root / "data"
    )


def ingest_in_child(
    root: Path,
    vectors: dict[str, list[float]],
    sentences: RememberedSentences,
    batch: int,
    started,
    kill_in_flush: float | None,
) -> None:
    """A plain ingest of ``root`` in a process of its own, storing ``batch`` spans at a time
    and telling ``started`` when it starts (kills are timed from there).  With
    ``kill_in_flush``, the process kills itself that many seconds into the Chroma write that
    takes the sentences past ``FLUSH_AT``: while Chroma flushes them."""
    if kill_in_flush is not None:
        add = chromadb.api.models.Collection.Collection.add

        def add_then_die_in_flush(collection, ids, **rows):
            if collection.name.startswith("assistant-sentences-"):
                before = collection.count()
                if before < FLUSH_AT <= before + len(ids):
                    kill = threading.Timer(kill_in_flush, os.kill, (os.getpid(), signal.SIGKILL))
                    kill.start()
            return add(collection, ids, **rows)

        chromadb.api.models.Collection.Collection.add = add_then_die_in_flush
    assistant.ingest.BATCH = batch
    assistant.ingest.split_sentences = sentences
    tqdm.tqdm.set_lock(threading.RLock())  # not tqdm's own, a semaphore a kill would leak
    started.send(time.monotonic())
    assistant.ingest.sync(Index(settings_in(root), RememberedVectors(vectors)))
