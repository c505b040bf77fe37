"""The page's suggested questions come from the documents it serves, not from the shipped ones."""

from __future__ import annotations

import logging

import gradio as gr
import pytest

from assistant.web.app import build_app
from assistant.web.examples import (
    MAX_DERIVED,
    MAX_HEADLINE_CHARS,
    UnusableExamples,
    derived_examples,
    page_examples,
    written_examples,
)
from conftest import PROJECT, assistant_in

# A collection of our own words: a headline, and an acronym it spells out.
HARBOUR = """# Stromness harbour opens a tidal energy berth

STROMNESS, Orkney, June 3, 2024 -- The harbour board opened a berth for tidal energy \
converters (TEC) on Monday, the first in the northern isles.

The berth was paid for by the Orkney Islands Council. Converters moored there feed the \
island grid through a cable laid last winter.
"""


@pytest.fixture(scope="module")
def harbour_bot(tmp_path_factory, embeddings):
    """An Assistant over a corpus of one harbour document, with no examples file."""
    root = tmp_path_factory.mktemp("harbour")
    (root / "corpus").mkdir()
    (root / "corpus" / "harbour.md").write_text(HARBOUR, encoding="utf-8")
    return assistant_in(root, embeddings)


def offered(demo: gr.Blocks) -> list[str]:
    """The example questions the page shows: the buttons of its examples row."""
    (row,) = [
        block
        for block in demo.blocks.values()
        if isinstance(block, gr.Row) and "examples-row" in (block.elem_classes or [])
    ]
    return [child.value for child in row.children if isinstance(child, gr.Button)]


def test_a_page_over_other_documents_offers_questions_about_them(harbour_bot):
    demo = build_app(harbour_bot)
    questions = offered(demo)
    assert questions == [
        "Summarize “Stromness harbour opens a tidal energy berth”",
        "What does TEC stand for?",
    ]
    assert not any("XellSmart" in question or "trial" in question for question in questions)
    for question in questions:  # each is one the collection answers
        assert not harbour_bot.ask(question).refused, question


def test_the_shipped_corpus_has_its_own_examples():
    questions = written_examples(PROJECT / "corpus" / "examples.yaml")
    assert "Which hospital will run the trial?" in questions and len(questions) == 6


def test_an_examples_file_is_read_in_order_once_each(tmp_path):
    path = tmp_path / "examples.yaml"
    listed = "- '  Who opened the berth? '\n- What feeds the grid?\n- Who opened the berth?\n"
    path.write_text(listed, encoding="utf-8")
    assert written_examples(path) == ["Who opened the berth?", "What feeds the grid?"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("- [unclosed\n", "is not valid YAML"),
        ("question: Who opened it?\n", "must be a list of questions"),
        ("[]\n", "must be a list of questions"),
        ("- Who opened it?\n- 42\n", "item 2 is not a question"),
        ("- Who opened it?\n- '  '\n", "item 2 is not a question"),
    ],
)
def test_an_unusable_examples_file_says_why(tmp_path, text, reason):
    path = tmp_path / "examples.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UnusableExamples, match=reason):
        written_examples(path)


def test_an_unusable_examples_file_is_warned_of_and_the_derived_ones_offered(harbour_bot, caplog):
    path = harbour_bot.settings.corpus_dir / "examples.yaml"
    path.write_bytes(b"- Who opened the berth?\n- \xff\xfe\n")
    try:
        with caplog.at_level(logging.WARNING, logger="assistant.web.examples"):
            questions = page_examples(harbour_bot)
    finally:
        path.unlink()
    assert questions == derived_examples(harbour_bot.headlines(), harbour_bot.defined_acronyms())
    (warning,) = [record.getMessage() for record in caplog.records]
    assert str(path) in warning and "cannot be read" in warning


def test_an_examples_file_beside_the_documents_is_what_the_page_offers(harbour_bot, caplog):
    path = harbour_bot.settings.corpus_dir / "examples.yaml"
    path.write_text("- Who paid for the berth?\n", encoding="utf-8")
    try:
        assert offered(build_app(harbour_bot)) == ["Who paid for the berth?"]
        with caplog.at_level(logging.WARNING):
            assert harbour_bot.index.corpus_unchanged()  # the file is no document: not listed
            harbour_bot.ingest()
    finally:
        path.unlink()
    assert [document.name for document in harbour_bot.documents()] == ["harbour.md"]
    assert not caplog.records  # nor warned of as a file the ingest cannot read


def test_derived_examples_take_documents_and_terms_in_turn():
    long = "Regional Grid Operator Announces " + "Very " * 20 + "Long Plans"
    questions = derived_examples(
        ["# First headline", "A first sentence of prose, not a headline.", long],
        ["TEC", "NLHT", "AMD", "GA", "FDA"],
    )
    assert questions[:4] == [
        "Summarize “First headline”",
        "What does TEC stand for?",
        f"Summarize “{long[: long.rindex(' ', 0, MAX_HEADLINE_CHARS + 1)]}…”",
        "What does NLHT stand for?",
    ]
    assert len(questions) == MAX_DERIVED and not any("prose" in q for q in questions)
    assert derived_examples([], []) == []
