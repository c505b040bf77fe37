"""What the answerer reads of an index generation: the seam between the two rooms.

The answerer never runs SQL against the index's tables: it reads sentences, their vectors and
the readings it stored through these protocols, which the index's snapshot implements
(``assistant.snapshot.Snapshot`` and, while one is written, ``Draft``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from assistant.chunk import Span


class Placed(Protocol):
    """Where one document's sentences sit, by position."""

    first_sentence: int
    sentences: int


class SentenceRows(Protocol):
    """Sentences by position, and the positions of those holding a fragment of text."""

    def __len__(self) -> int: ...
    def __getitem__(self, position: int) -> Span: ...
    def containing(self, fragment: str) -> list[int]: ...


class SentenceStore(Protocol):
    """One generation's sentences as the answerer reads them."""

    documents: Mapping[str, Placed]
    spelling: frozenset[str]  # the collection's words a slip of the keyboard is fixed to
    sentences: SentenceRows
    vectors: np.ndarray  # one row per sentence, L2-normalised

    def reading(self, position: int) -> str:
        """What ``SentenceDraft.store_readings`` kept of one sentence."""
        ...

    def extra(self, name: str) -> Any:
        """What ``SentenceDraft.save`` kept under ``name``."""
        ...


class SentenceDraft(Protocol):
    """A generation's sentences while its snapshot is written: where the answerer stores its
    reading of each new sentence and what it knows of the collection."""

    previous: SentenceStore | None

    def unread(self) -> list[tuple[int, str, str]]: ...
    def store_readings(self, readings: Sequence[tuple[int, str]]) -> None: ...
    def readings(self) -> Iterator[tuple[int, str]]: ...
    def save(self, name: str, value: Any) -> None: ...
