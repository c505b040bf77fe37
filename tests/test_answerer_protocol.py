"""One conformance suite that every answerer runs: the ``Answerer`` protocol's contract."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import Assistant
from assistant.answer import Answer, Answerer
from assistant.answer.types import MARKER
from assistant.chunk import sentence_segmenter
from assistant.question import Question

QUESTIONS = ["Which hospital will run the trial?", "Who is the CEO of XellSmart?"]
REPLY = "It runs at the Third Affiliated Hospital [2]. It tests a cell therapy [1][2]."


@pytest.fixture(scope="module", params=["extractive", "llm"])
def answerer(request, bot) -> Answerer:
    """Each answerer as the assistant wires it to the loaded index generation."""
    if request.param == "extractive":
        return bot.answerer
    return Assistant(
        bot.settings,
        embeddings=bot.embeddings,
        chat_model=FakeListChatModel(responses=[REPLY]),
        client=bot.index.client,
        build_index=False,
    ).answerer


def test_it_is_an_answerer(answerer):
    assert isinstance(answerer, Answerer) and answerer.name


@pytest.mark.parametrize("question", QUESTIONS)
def test_its_citations_quote_the_source_exactly(answerer, bot, question):
    documents = bot.retrieve(question)
    answer = answerer.answer(Question.read(question), documents)
    assert isinstance(answer, Answer) and answer.text
    if answer.refused:
        assert not answer.citations
    for citation in answer.citations:
        text = bot.source_text(citation.source)
        assert text[citation.start : citation.end] == citation.quote
    assert {int(n) for n in MARKER.findall(answer.text)} == {c.n for c in answer.citations}


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_citation_quotes_one_sentence_with_a_score(answerer, bot, question):
    """A reader checks a claim against the sentence that makes it, not a page around it."""
    answer = answerer.answer(Question.read(question), bot.retrieve(question))
    for citation in answer.citations:
        assert len(sentence_segmenter().segment(citation.quote)) == 1
        assert 0.0 <= citation.score <= 1.0


def test_it_takes_history(answerer, bot):
    question = Question.read("When did it get FDA approval?", [("What is XS228?", "An injection.")])
    assert question.context == "What is XS228?"
    answer = answerer.answer(question, bot.retrieve(question.text, question.history))
    assert isinstance(answer, Answer)


def test_with_no_documents_it_refuses_or_cites_nothing(answerer):
    answer = answerer.answer(Question.read("Which hospital will run the trial?"), [])
    assert answer.refused or not answer.citations
