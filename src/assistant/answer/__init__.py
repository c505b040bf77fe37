"""Answerers: the extractive default and the optional LLM one, and the types they return."""

from assistant.answer.protocol import Answerer
from assistant.answer.types import Answer, Citation, Passage
from assistant.question import History

__all__ = ["Answer", "Answerer", "Citation", "History", "Passage"]
