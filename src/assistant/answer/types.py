"""The data that leaves the pipeline: an answer and the exact source words behind it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MARKER = re.compile(r"\[(\d+)\]")  # an inline citation marker in an answer's text: [n]


@dataclass(frozen=True)
class Citation:
    """One cited passage: ``quote == text_of(source)[start:end]``, always.

    ``source`` is the path as the loader saw it; ``start``/``end`` are character offsets in the
    document's text (for .txt and .md files, the file read as UTF-8).
    """

    n: int
    source: str
    start: int
    end: int
    quote: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """``text`` carries ``[n]`` markers, each with its ``Citation``; refusals cite nothing."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "refused": self.refused,
            "citations": [citation.to_dict() for citation in self.citations],
        }
