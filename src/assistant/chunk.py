"""Chunk: documents become retrieval chunks and answer sentences, both with exact offsets.

Offsets are born here and never recomputed later by searching: a citation is exact because
``text[start:end]`` was checked when the span was made.  Chunks feed retrieval (sized for
MiniLM's 256 word pieces, with overlap); sentences are what the extractive answerer quotes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from assistant.load import SourceDocument

# Bump when the way spans are cut changes, so indexes built the old way are rebuilt.
CHUNKER_VERSION = 3


@dataclass(frozen=True)
class Span:
    """A piece of a document: ``document.text[start:end] == text``."""

    source: str
    start: int
    end: int
    text: str
    opens_paragraph: bool = False

    @property
    def span_id(self) -> str:
        """A content hash: the same words at the same place get the same id on every run."""
        key = f"{self.source}\x00{self.start}\x00{self.end}\x00{self.text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def chunk_document(document: SourceDocument, chunk_size: int, chunk_overlap: int) -> list[Span]:
    """Split with LangChain's recursive splitter, keeping each chunk's exact start offset.

    The splitter is imported here, by an ingest: it takes a fifth of a second, which a cold
    ``assistant ask`` on a built index need not spend."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
        add_start_index=True,
    )
    spans: list[Span] = []
    search_from = 0
    for piece in splitter.create_documents([document.text]):
        start = piece.metadata["start_index"]
        if document.text[start : start + len(piece.page_content)] != piece.page_content:
            start = document.text.index(piece.page_content, search_from)
        spans.append(
            Span(document.path, start, start + len(piece.page_content), piece.page_content)
        )
        search_from = start + 1
    return spans


def sentence_segmenter():
    """A new pysbd segmenter: one instance keeps the text it is working on, so two threads
    must never share one."""
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=False)


_LINE = re.compile(r"[^\n]+")


def split_sentences(document: SourceDocument) -> list[Span]:
    """Sentences by pysbd, within lines: a line break always ends a sentence.

    Headlines and datelines carry no full stop, so without the line rule pysbd glues them
    onto the first sentence of the body.
    """
    segmenter = sentence_segmenter()
    spans: list[Span] = []
    for line in _LINE.finditer(document.text):
        cursor = line.start()
        opens_paragraph = not spans or "\n\n" in document.text[spans[-1].end : cursor]
        for sentence in segmenter.segment(line.group()):
            words = sentence.strip()
            if not words:
                continue
            start = document.text.index(words, cursor, line.end())
            cursor = start + len(words)
            spans.append(Span(document.path, start, cursor, words, opens_paragraph))
            opens_paragraph = False
    return spans
