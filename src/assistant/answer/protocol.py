"""The one contract every answerer keeps, whatever makes its words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from langchain_core.documents import Document

from assistant.answer.types import Answer

History = Sequence[tuple[str, str]]


@runtime_checkable
class Answerer(Protocol):
    """Turns a question and the ranked chunks retrieved for it into an ``Answer``.

    ``documents`` are LangChain ``Document``s whose metadata holds ``source``, ``start`` and
    ``end`` (offsets of the chunk in its source's text); ``history`` holds earlier
    (question, answer) turns.  Every citation of the result must quote its source exactly:
    ``quote == text_of(source)[start:end]``.
    """

    name: str

    def answer(self, question: str, documents: Sequence[Document], history: History) -> Answer:
        """Answer from ``documents`` only, or refuse (``Answer.refused``)."""
        ...
