"""The one contract every answerer keeps, whatever makes its words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from langchain_core.documents import Document

from assistant.answer.types import Answer
from assistant.question import Question


@runtime_checkable
class Answerer(Protocol):
    """Turns a question (read once, with its earlier turns: ``Question``) and the ranked
    chunks retrieved for it into an ``Answer``.

    ``documents`` are LangChain ``Document``s whose metadata holds ``source``, ``start`` and
    ``end`` (offsets of the chunk in its source's text).  Every citation of the result must
    quote its source exactly: ``quote == text_of(source)[start:end]``.
    """

    name: str

    def answer(self, question: Question, documents: Sequence[Document]) -> Answer:
        """Answer from ``documents`` only, or refuse (``Answer.refused``)."""
        ...
