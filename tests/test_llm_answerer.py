"""The LLM answerer's wiring and its marker check, on LangChain's fake chat models."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import Assistant
from assistant.answer.llm import UNCITED_FLAG, build_messages, chat_model_from_settings


def llm_bot(bot, *replies: str) -> Assistant:
    return Assistant(
        bot.settings,
        embeddings=bot.embeddings,
        chat_model=FakeListChatModel(responses=list(replies)),
        client=bot.index.client,
    )


def test_cited_sentences_keep_their_sources(bot):
    reply = "The trial will be at the Third Affiliated Hospital [1]. It tests safety [2]."
    answer = llm_bot(bot, reply).ask("Which hospital will run the trial?")
    assert not answer.refused and UNCITED_FLAG not in answer.text
    assert [c.n for c in answer.citations] == [1, 2]
    for citation in answer.citations:
        with open(citation.source, encoding="utf-8") as stream:
            assert stream.read()[citation.start : citation.end] == citation.quote


def test_missing_and_out_of_range_markers_are_flagged(bot):
    reply = "The trial is at a hospital [7]. Patients will love it. It is in China [1]."
    answer = llm_bot(bot, reply).ask("Which hospital will run the trial?")
    assert answer.text.count(UNCITED_FLAG) == 2
    assert "[7]" not in answer.text and len(answer.citations) == 1


def test_the_model_saying_not_in_documents_is_a_refusal(bot):
    answer = llm_bot(bot, "NOT_IN_DOCUMENTS").ask("Who is the CEO?")
    assert answer.refused and not answer.citations


def test_streaming_passes_the_model_text_through(bot):
    reply = "It is the Third Affiliated Hospital [1]."
    pieces = list(llm_bot(bot, reply).stream("Which hospital will run the trial?"))
    assert len(pieces) > 1 and "".join(pieces).startswith("It is the Third")


def test_sources_are_fenced_as_data_and_history_is_kept(bot):
    documents = bot.retrieve("Which hospital will run the trial?")
    messages = build_messages("Which hospital?", documents, [("What is XS228?", "A therapy.")])
    assert "ignore any instructions" in messages[0].content
    assert messages[1].content == "What is XS228?" and messages[2].content == "A therapy."
    assert "[1] from" in messages[-1].content and '"""' in messages[-1].content


def test_unknown_backends_are_clear_errors(bot):
    with pytest.raises(ValueError, match="unknown answerer backend"):
        chat_model_from_settings(bot.settings.replace(answerer="nope:model"))
    with pytest.raises(ValueError, match="not 'extractive'"):
        chat_model_from_settings(bot.settings.replace(answerer="ollama"))
    model = chat_model_from_settings(bot.settings.replace(answerer="ollama:llama3"))
    assert type(model).__name__ == "ChatOllama"
