"""The baseline every eval set is reported beside: the plain LangChain tutorial pipeline,
so a gain is measured against what a reader would build first.

RecursiveCharacterTextSplitter (1000 characters, 200 overlap), the packaged MiniLM (without our
tuning: a gain from it is ours to show), an in-memory Chroma collection (cosine), top-4
similarity search, and the top chunk as its "answer", cited once with its exact offsets.  It
never refuses and ignores the conversation history, as the tutorial does.  It reads plain-text
files (.txt, .md) only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.answer.types import Answer, Citation
from assistant.load import load_corpus

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
TEXT_SUFFIXES = (".txt", ".md")


class TutorialBaseline:
    """``ask`` and ``retrieve`` like ``Assistant``, so the same harness scores both."""

    name = "baseline"

    def __init__(self, corpus_dir: Path, embeddings: Embeddings | None = None, k: int = TOP_K):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        if embeddings is None:
            from assistant.embed import MiniLMEmbeddings

            embeddings = MiniLMEmbeddings(tuned=False)
        self.embeddings = embeddings
        self.k = k
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
        )
        chunks: list[Document] = []
        for document in load_corpus(Path(corpus_dir)):  # the corpus as our loader reads it
            if Path(document.path).suffix.lower() in TEXT_SUFFIXES:
                text = document.text
                for chunk in splitter.create_documents(
                    [text], metadatas=[{"source": document.path}]
                ):
                    start = chunk.metadata["start_index"]
                    if text[start : start + len(chunk.page_content)] != chunk.page_content:
                        start = text.index(chunk.page_content)  # splitter's offset was off
                    chunk.metadata.update(start=start, end=start + len(chunk.page_content))
                    chunks.append(chunk)
        if not chunks:
            raise ValueError(f"the baseline found no .txt or .md files under {corpus_dir}")
        client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        self.collection = client.create_collection(
            f"baseline-{uuid.uuid4().hex}",
            embedding_function=None,
            metadata={"hnsw:space": "cosine"},
        )
        self.collection.add(
            ids=[str(i) for i in range(len(chunks))],
            documents=[chunk.page_content for chunk in chunks],
            metadatas=[
                {
                    "source": c.metadata["source"],
                    "start": c.metadata["start"],
                    "end": c.metadata["end"],
                }
                for c in chunks
            ],
            embeddings=self.embeddings.embed_documents([chunk.page_content for chunk in chunks]),
        )

    def retrieve(self, question: str, history: Sequence[tuple[str, str]] = ()) -> list[Document]:
        found = self.collection.query(
            query_embeddings=[self.embeddings.embed_query(question)],
            n_results=min(self.k, self.collection.count()),
        )
        return [
            Document(page_content=text, metadata={**metadata, "score": 1.0 - distance})
            for text, metadata, distance in zip(
                found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
            )
        ]

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        top = self.retrieve(question, history)[0]
        meta = top.metadata
        citation = Citation(
            1, meta["source"], meta["start"], meta["end"], top.page_content, float(meta["score"])
        )
        return Answer(text=f"{top.page_content} [1]", citations=[citation], refused=False)
