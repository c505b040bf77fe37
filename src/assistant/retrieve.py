"""Retrieve: dense (Chroma, cosine) and lexical (BM25) rankings fused by reciprocal rank.

Dense search finds paraphrases, BM25 finds rare exact words (names, codes like "XS228") that a
small embedding model blurs; rank fusion needs no score calibration between the two.

``HybridSearch`` is a plain object the answer path calls; LangChain's retriever interface over
it (``runnables.HybridRetriever``) is made only for programs that ask for one, because
importing LangChain's retriever machinery takes half a second a cold ``assistant ask`` does
not need.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.index import Index
from assistant.snapshot import Snapshot
from assistant.text import terms

RRF_K = 60


@dataclass
class LexicalIndex:
    """BM25 over one generation's chunks, as its snapshot saved it (memory-mapped)."""

    snapshot: Snapshot

    @property
    def generation(self) -> str:
        return self.snapshot.generation

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        query_terms = terms(query)
        chunks = self.snapshot.chunks
        n = min(n, len(chunks))
        if not query_terms or n == 0:
            return []
        found = self.snapshot.bm25.retrieve([query_terms], k=n, show_progress=False, n_threads=0)
        return [
            (chunks.span_id(int(position)), float(score))
            for position, score in zip(found.documents[0], found.scores[0], strict=True)
            if score > 0
        ]


@dataclass(frozen=True)
class HybridSearch:
    """The ``k`` best chunks for a query, as LangChain documents with ``source``, ``start``,
    ``end`` and scores in their metadata."""

    index: Index
    lexical: LexicalIndex
    embeddings: Embeddings
    k: int = 4
    candidates: int = 20

    def search(self, query: str) -> list[Document]:
        chunks = self.lexical.snapshot.chunks
        total = len(chunks)
        if total == 0:
            return []
        pool = min(max(self.candidates, self.k), total)
        vector = self.embeddings.embed_query(query)
        dense = self.index.query_chunks(vector, pool, self.lexical.generation)
        lexical = self.lexical.search(query, pool)
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (chunk_id, _) in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_scores, lexical_scores = dict(dense), dict(lexical)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[: self.k]
        documents = []
        for chunk_id in best:
            position = self.lexical.snapshot.chunk_position(chunk_id)
            if position is None:
                continue
            span = chunks[position]
            metadata = {
                "source": span.source,
                "start": span.start,
                "end": span.end,
                "chunk_id": chunk_id,
                "score": fused[chunk_id],
                "dense": dense_scores.get(chunk_id, 0.0),
                "bm25": lexical_scores.get(chunk_id, 0.0),
            }
            documents.append(Document(page_content=span.text, id=chunk_id, metadata=metadata))
        return documents
