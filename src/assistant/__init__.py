"""Grounded question answering over a document collection, with offset-exact citations.

Importing this package loads no model and no web framework: the model loads when an
``Assistant`` is made.
"""

from assistant.answer.types import Answer, Citation
from assistant.assistant import Assistant
from assistant.config import Settings

__all__ = ["Answer", "Assistant", "Citation", "Settings"]
