"""Retrieve: dense (Chroma, cosine) and lexical (BM25) rankings fused by reciprocal rank.

Dense search finds paraphrases, BM25 finds rare exact words (names, codes like "XS228") that a
small embedding model blurs; rank fusion needs no score calibration between the two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bm25s
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.index import Index, SpanTable
from assistant.text import terms

RRF_K = 60
logging.getLogger("bm25s").setLevel(logging.ERROR)


@dataclass
class LexicalIndex:
    """BM25 over one generation's chunks, built once when that generation is opened."""

    generation: str
    chunks: SpanTable
    bm25: bm25s.BM25
    positions: dict[str, int]

    @classmethod
    def build(cls, generation: str, chunks: SpanTable) -> LexicalIndex:
        bm25 = bm25s.BM25()
        if chunks.spans:
            bm25.index([terms(span.text) or ["\x00"] for span in chunks.spans], show_progress=False)
        positions = {chunk_id: i for i, chunk_id in enumerate(chunks.ids)}
        return cls(generation, chunks, bm25, positions)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        query_terms = terms(query)
        n = min(n, len(self.chunks.spans))
        if not query_terms or n == 0:
            return []
        found = self.bm25.retrieve([query_terms], k=n, show_progress=False, n_threads=0)
        return [
            (self.chunks.ids[position], float(score))
            for position, score in zip(found.documents[0], found.scores[0], strict=True)
            if score > 0
        ]


class HybridRetriever(BaseRetriever):
    """A LangChain retriever returning chunks with ``source``, ``start``, ``end`` and scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    lexical: LexicalIndex
    embeddings: Embeddings
    k: int = 4
    candidates: int = 20

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun | None = None
    ) -> list[Document]:
        total = len(self.lexical.chunks.spans)
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
            span = self.lexical.chunks.spans[self.lexical.positions[chunk_id]]
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
