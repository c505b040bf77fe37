"""The LLM answerer's wiring, its marker check and its sentence-level citations, on LangChain's
fake chat models over the real index (the fake stands in for the LLM only)."""

from __future__ import annotations

import re

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)

from assistant import Assistant
from assistant.answer.llm import (
    UNCITED_FLAG,
    WEAK_FLAG,
    build_messages,
    chat_model_from_settings,
)
from assistant.answer.support import default_support_model

HOSPITAL_QUESTION = "Which hospital will run the trial?"
# The source sentences the replies below restate, by the words they open with.
SENTENCES = {
    "hospital": "The clinical trial will be conducted at the Third Affiliated Hospital",
    "safety": "The trial seeks to evaluate the safety and efficacy",
    "approval": "In 2023, XellSmart's XS228 injection",
}


def llm_bot(bot, *replies: str) -> Assistant:
    return Assistant(
        bot.settings,
        embeddings=bot.embeddings,
        chat_model=FakeListChatModel(responses=list(replies)),
        client=bot.index.client,
    )


def streaming_bot(bot, reply: str) -> Assistant:
    """An assistant whose model streams ``reply`` word by word, as a real one does."""
    return Assistant(
        bot.settings,
        embeddings=bot.embeddings,
        chat_model=GenericFakeChatModel(messages=iter([reply])),
        client=bot.index.client,
    )


def offsets(text: str, opening: str) -> tuple[int, int]:
    """Where the sentence opening with ``opening`` stands in ``text``."""
    start = text.index(opening)
    return start, text.index(".", text.index(" ", start + len(opening))) + 1


def chunk_of(bot, words: str) -> int:
    """The rank (from 1) of the chunk retrieved for the question that holds ``words`` (a name
    of ``SENTENCES`` or a quote), so a reply can mark it."""
    words = SENTENCES.get(words, words)
    for n, document in enumerate(bot.retrieve(HOSPITAL_QUESTION), start=1):
        if words in document.page_content:
            return n
    raise AssertionError(f"no chunk retrieved for {HOSPITAL_QUESTION!r} holds {words!r}")


def marker_of(bot, name: str) -> str:
    return f"[{chunk_of(bot, name)}]"


@pytest.mark.parametrize(
    ("reply", "cited", "flags"),
    [
        pytest.param(  # the sentence, not the ~800-character chunk around it
            "The trial will be run by the Third Affiliated Hospital of Sun Yat-sen University "
            "{hospital}.",
            ["hospital"],
            [None],
            id="restated-sentence",
        ),
        pytest.param(  # two facts of one chunk: two sentences, two numbers
            "The trial is at the Third Affiliated Hospital {hospital}. "
            "It will evaluate the safety and efficacy of the therapy {safety}.",
            ["hospital", "safety"],
            [None, None],
            id="two-facts-one-chunk",
        ),
        pytest.param(  # the same source sentence cited twice keeps its number
            "The Third Affiliated Hospital will run it {hospital}. "
            "The trial is conducted at that hospital {hospital}.",
            ["hospital"],
            [None, None],
            id="same-sentence-twice",
        ),
        pytest.param(  # a chunk that does not say it: flagged, its low score kept
            "The trial is at the Third Affiliated Hospital {hospital}. "
            "XS228 received FDA approval in 2023 {hospital}.",
            ["hospital", "some sentence of the hospital's chunk"],
            [None, WEAK_FLAG],
            id="unsupported-marker",
        ),
        pytest.param(  # a weak marker beside a supporting one is dropped
            "The trial is at the Third Affiliated Hospital {hospital}{approval}.",
            ["hospital"],
            [None],
            id="weak-beside-strong",
        ),
        pytest.param(  # markers after the full stop belong to the sentence they follow
            "The trial is at the Third Affiliated Hospital. {hospital} "
            "It will evaluate the safety and efficacy of the therapy.{safety}",
            ["hospital", "safety"],
            [None, None],
            id="markers-after-the-stop",
        ),
        pytest.param(  # a marker standing alone claims nothing and cites nothing
            "The trial is at the Third Affiliated Hospital {hospital}.\n\n{safety}",
            ["hospital"],
            [None],
            id="a-lone-marker",
        ),
    ],
)
def test_each_reply_sentence_cites_the_source_sentence_that_supports_it(bot, reply, cited, flags):
    markers = {name: marker_of(bot, name) for name in SENTENCES}
    answer = llm_bot(bot, reply.format(**markers)).ask(HOSPITAL_QUESTION)
    text = bot.source_text(answer.citations[0].source)
    assert len(answer.citations) == len(cited)
    for citation, name in zip(answer.citations, cited, strict=True):
        if name in SENTENCES:
            assert (citation.start, citation.end) == offsets(text, SENTENCES[name])
        else:  # the weak one: whichever sentence of the marked chunk came closest
            assert chunk_of(bot, "hospital") == chunk_of(bot, citation.quote)
    assert [c.n for c in answer.citations] == list(range(1, len(cited) + 1))
    threshold = default_support_model().threshold
    sentences = re.findall(r".+?\.(?: \[weak source\])?(?= |$)", answer.text)
    assert len(sentences) == len(flags)
    for sentence, flag in zip(sentences, flags, strict=True):
        assert sentence.endswith(WEAK_FLAG) == (flag == WEAK_FLAG)
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        scores = [answer.citations[n - 1].score for n in numbers]
        assert numbers and all((score < threshold) == (flag == WEAK_FLAG) for score in scores)
    for citation in answer.citations:
        assert text[citation.start : citation.end] == citation.quote


def test_streamed_answers_end_cited_at_sentence_level(bot):
    marker = marker_of(bot, "hospital")
    reply = f"It is the Third Affiliated Hospital of Sun Yat-sen University {marker}."
    answers = list(streaming_bot(bot, reply).stream_answers(HOSPITAL_QUESTION))
    assert len(answers) > 2 and answers[1].text.startswith(answers[0].text)
    final = answers[-1]
    text = bot.source_text(final.citations[0].source)
    assert [(c.start, c.end) for c in final.citations] == [offsets(text, SENTENCES["hospital"])]
    assert final.text == "It is the Third Affiliated Hospital of Sun Yat-sen University [1]."


@pytest.mark.parametrize(
    "reply", ["NOT_IN_DOCUMENTS", "  NOT_IN_DOCUMENTS.", "NOT_IN_DOCUMENTS [1]"]
)
def test_a_streamed_refusal_never_shows_the_models_token(bot, reply):
    answers = list(streaming_bot(bot, reply).stream_answers("Who is the CEO?"))
    assert all("NOT" not in answer.text for answer in answers)
    assert answers[-1].refused and answers[-1].closest


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


def test_the_model_saying_not_in_documents_is_a_refusal_showing_the_closest(bot):
    answer = llm_bot(bot, "NOT_IN_DOCUMENTS").ask("Who is the CEO?")
    assert answer.refused and not answer.citations and answer.closest
    for passage in answer.closest:
        assert bot.source_text(passage.source)[passage.start : passage.end] == passage.text


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
