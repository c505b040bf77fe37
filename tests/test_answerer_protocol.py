"""One conformance suite that every answerer runs: the ``Answerer`` protocol's contract."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant.answer import Answer, Answerer
from assistant.answer.llm import LLMAnswerer

QUESTIONS = ["Which hospital will run the trial?", "Who is the CEO of XellSmart?"]


@pytest.fixture(scope="module", params=["extractive", "llm"])
def answerer(request, bot) -> Answerer:
    if request.param == "extractive":
        return bot.answerer
    return LLMAnswerer(FakeListChatModel(responses=["It runs at the hospital [1]."] * 10))


def test_it_is_an_answerer(answerer):
    assert isinstance(answerer, Answerer) and answerer.name


@pytest.mark.parametrize("question", QUESTIONS)
def test_its_citations_quote_the_source_exactly(answerer, bot, question):
    documents = bot.retrieve(question)
    answer = answerer.answer(question, documents, [])
    assert isinstance(answer, Answer) and answer.text
    if answer.refused:
        assert not answer.citations
    for citation in answer.citations:
        text = bot.source_text(citation.source)
        assert text[citation.start : citation.end] == citation.quote
        assert f"[{citation.n}]" in answer.text


def test_it_takes_history(answerer, bot):
    question = "When did it get FDA approval?"
    answer = answerer.answer(
        question, bot.retrieve(question), [("What is XS228?", "An injection.")]
    )
    assert isinstance(answer, Answer)


def test_with_no_documents_it_refuses_or_cites_nothing(answerer):
    answer = answerer.answer("Which hospital will run the trial?", [], [])
    assert answer.refused or not answer.citations
