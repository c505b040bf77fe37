"""The pipeline's LangChain faces: a retriever and an LCEL chain, for programs composing them
with other LangChain parts (``Assistant.retriever``, ``Assistant.chain``).

The assistant itself calls ``HybridSearch`` and its answerer as plain functions; this module is
imported only when a program asks for these, since LangChain's retriever and runnable machinery
(callbacks, tracers, LangSmith's schemas) takes half a second to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from assistant.answer.types import Answer
from assistant.retrieve import HybridSearch


class HybridRetriever(BaseRetriever):
    """A LangChain retriever returning chunks with ``source``, ``start``, ``end`` and scores:
    one index generation's ``HybridSearch``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: HybridSearch

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun | None = None
    ) -> list[Document]:
        return self.search.search(query)


def answer_chain(ask: Callable[[str, Any], Answer]) -> Runnable:
    """``{"question", "history"}`` → ``Answer``, through ``ask(question, history)``."""
    return RunnableLambda(lambda inputs: ask(inputs["question"], inputs.get("history")))
