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
class Passage:
    """A passage shown beside a refusal: the closest the documents came, never a citation.

    ``text == text_of(source)[start:end]``; ``best_start``/``best_end`` mark its sentence that
    came closest to the question, in the same document offsets.
    """

    source: str
    start: int
    end: int
    text: str
    best_start: int
    best_end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """``text`` carries ``[n]`` markers, each with its ``Citation``; refusals cite nothing.

    Three outcomes: an answer; a *hedged* answer (``hedged``), when the reader is unsure
    whether the cited passage holds what was asked: it is quoted, cited as usual, and the text
    says it could not be confirmed; and a refusal (``refused``), when the reader judged that
    the documents are silent. A refusal may carry ``closest``: the passages that came nearest,
    so a reader sees why and can rephrase; they are not citations and the answer does not
    claim them.
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    closest: list[Passage] = field(default_factory=list)
    hedged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "refused": self.refused,
            "hedged": self.hedged,
            "citations": [citation.to_dict() for citation in self.citations],
            "closest": [passage.to_dict() for passage in self.closest],
        }
