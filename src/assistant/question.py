"""A question, read once: what every stage after it receives.

The words a user typed are cleaned once (markup and injected instructions set aside, chat
shorthand spelled out, slips of the keyboard fixed against the collection's own words), and a
follow-up is paired with the question it leans on. Retrieval searches for ``query``, the
answerer parses ``cleaned``, the reader reads ``query`` against each sentence, and the LLM is
sent ``text`` with its ``history``: nothing downstream cleans the question again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from assistant.text import corrected, follow_up_context, plain_question

History = Sequence[tuple[str, str]]
# Earlier turns a question is answered with: follow-ups lean on the turn before, and an LLM is
# sent the history, so older or longer text would only cost time and prompt space. The page
# keeps as many with each vote, so a voted answer can be asked again as it was answered.
MAX_HISTORY_TURNS = 10  # the last turns kept; older ones are dropped
MAX_HISTORY_ANSWER_CHARS = 4000  # of each earlier answer kept


@dataclass(frozen=True)
class CheckedQuestion:
    """A question and its history as ``Assistant.check_question`` accepted them: the question
    stripped, the history cut to its limits.

    ``Assistant.ask`` and its siblings take one as it is, so a caller that checks first (the
    page does, to refuse a bad request in one sentence before answering) is not checked twice.
    """

    text: str
    history: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Question:
    text: str  # as asked
    history: tuple[tuple[str, str], ...] = ()  # earlier (question, answer) turns
    cleaned: str = ""  # the question itself, cleaned
    context: str = ""  # the earlier question a follow-up leans on, cleaned; "" if none

    @classmethod
    def read(
        cls, text: str, history: History = (), vocabulary: frozenset[str] = frozenset()
    ) -> Question:
        """``text`` cleaned against ``vocabulary`` (the collection's words).

        Earlier turns come from the client as sent; characters that are not valid text (a lone
        surrogate) become U+FFFD here, since the tokenizer and an LLM's JSON refuse them."""
        earlier = tuple((_encodable(str(q)), _encodable(str(a))) for q, a in history)
        leans_on = follow_up_context(text, earlier)
        return cls(
            text,
            earlier,
            corrected(plain_question(text), vocabulary),
            corrected(plain_question(leans_on), vocabulary) if leans_on else "",
        )

    @property
    def query(self) -> str:
        """What retrieval searches for and the reader reads: a follow-up after the question
        it leans on."""
        return f"{self.context} {self.cleaned}" if self.context else self.cleaned

    def parts(self) -> list[Question]:
        """ "Where will it run, and what will it test?" as its two questions."""
        pieces = re.split(
            r",?\s+and\s+(?=(?:what|which|who|whom|whose|where|when|why|how)\b)",
            self.cleaned,
            flags=re.IGNORECASE,
        )
        pieces = [piece.strip() for piece in pieces if piece.strip()]
        if len(pieces) < 2:
            return [self]
        return [replace(self, text=piece, cleaned=piece) for piece in pieces]


def _encodable(text: str) -> str:
    """``text`` with every lone surrogate, which UTF-8 cannot encode, replaced."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)
