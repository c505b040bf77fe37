"""The questions the page suggests, drawn from the documents it serves.

A page serving someone's own documents must not offer questions about a press release they do
not have. So the suggestions are the collection's: an operator writes them in
``<corpus>/examples.yaml`` (a list of questions), and without that file, or when it cannot be
used (a warning says why), a few are made from what the collection holds: a summary of each
document under its headline, and what each acronym the documents spell out stands for. They are
chosen when the page is built.
"""

from __future__ import annotations

import logging
import re
from itertools import chain, zip_longest
from pathlib import Path

import yaml

from assistant import Assistant
from assistant.config import EXAMPLES_FILE

logger = logging.getLogger(__name__)
MAX_DERIVED = 6  # a row of buttons under the chat box, not a list to read
MAX_HEADLINE_CHARS = 80  # of a headline quoted on a button; a longer one is cut at a word


class UnusableExamples(ValueError):
    """The examples file cannot be used; the message says why, in one line."""


def page_examples(bot: Assistant) -> list[str]:
    """The questions the page offers over ``bot``'s collection: the examples file's, else
    ones made from the collection (``derived_examples``)."""
    path = Path(bot.settings.corpus_dir) / EXAMPLES_FILE
    if path.exists():
        try:
            return written_examples(path)
        except UnusableExamples as reason:
            logger.warning("%s: %s; suggesting questions made from the documents", path, reason)
    return derived_examples(bot.headlines(), bot.defined_acronyms())


def written_examples(path: Path) -> list[str]:
    """The questions in ``path``, a YAML list of strings, each stripped, in order, once each."""
    try:
        listed = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UnusableExamples(f"cannot be read ({error})") from None
    except yaml.YAMLError as error:
        raise UnusableExamples(f"is not valid YAML ({_one_line(str(error))})") from None
    if not isinstance(listed, list) or not listed:
        raise UnusableExamples("must be a list of questions, one string each")
    for number, question in enumerate(listed, start=1):
        if not isinstance(question, str) or not question.strip():
            raise UnusableExamples(f"item {number} is not a question (a line of text)")
    return list(dict.fromkeys(question.strip() for question in listed))


def derived_examples(headlines: list[str], acronyms: list[str]) -> list[str]:
    """Up to ``MAX_DERIVED`` questions the collection answers, taking in turn a summary of a
    document under its headline and what an acronym stands for, so a few documents and a few
    terms are offered. A first sentence ending in a full stop is prose, not a headline."""
    summaries = [
        f"Summarize “{_quotable(headline)}”"
        for headline in map(_unmarked, headlines)
        if headline and not headline.endswith(".")
    ]
    meanings = [f"What does {acronym} stand for?" for acronym in acronyms]
    in_turn = chain.from_iterable(zip_longest(summaries, meanings))
    return [question for question in in_turn if question is not None][:MAX_DERIVED]


def _unmarked(headline: str) -> str:
    """A headline without Markdown's heading marks, on one line."""
    return " ".join(headline.strip().lstrip("#").split())


def _quotable(headline: str) -> str:
    """``headline`` short enough for a button: cut at the last whole word that fits."""
    if len(headline) <= MAX_HEADLINE_CHARS:
        return headline
    return headline[: MAX_HEADLINE_CHARS + 1].rsplit(" ", 1)[0].rstrip(",;:-–—") + "…"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
