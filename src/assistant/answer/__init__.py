"""Answerers: the extractive default and the optional LLM one, and the types they return."""

from assistant.answer.types import Answer, Citation

__all__ = ["Answer", "Citation"]
