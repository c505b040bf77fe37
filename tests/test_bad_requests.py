"""Requests a client could send by mistake or on purpose, against the real thing: the Python
API, and a real Gradio server on loopback called over plain HTTP as any program could.

Each bad request gets one sentence saying what is expected (never a Python message such as
"'int' object has no attribute 'strip'"), or is bounded: request bodies, stored feedback and
login attempts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import Assistant
from assistant.app import build_app, launch
from assistant.app_guard import MAX_REQUEST_BYTES, LoginThrottle, exposure_warning
from assistant.assistant import MAX_HISTORY_ANSWER_CHARS, MAX_HISTORY_TURNS
from assistant.feedback import FEEDBACK_FILE, FEEDBACK_TEXT_CHARS, FeedbackLog
from test_app import HOSPITAL, LOGIN, free_port, start

INTERNALS = ("no attribute", "unpack", "KeyError", "not iterable", "invalid literal", "Traceback")


def assert_one_clear_sentence(message: str) -> None:
    assert message and not any(text in message for text in INTERNALS), message
    assert ". " not in message.rstrip("."), f"more than one sentence: {message}"


# -- the Python API -------------------------------------------------------------------------

CALLS: dict[str, Callable[[Assistant, Any, Any], object]] = {
    "ask": lambda bot, question, history: bot.ask(question, history),
    "retrieve": lambda bot, question, history: bot.retrieve(question, history),
    "stream_answers": lambda bot, question, history: list(bot.stream_answers(question, history)),
}

BAD_PYTHON_CALLS = [  # question, history, the error, what its sentence must say
    pytest.param(42, (), TypeError, "must be a string", id="question-is-a-number"),
    pytest.param("   ", (), ValueError, "empty", id="question-is-blank"),
    pytest.param(HOSPITAL, "abc", TypeError, "history must be a list", id="history-is-a-string"),
    pytest.param(HOSPITAL, 5, TypeError, "history must be a list", id="history-is-a-number"),
    pytest.param(HOSPITAL, [["only"]], TypeError, "turn 1 is a list of 1", id="turn-of-one"),
    pytest.param(HOSPITAL, [{"q": "a"}], TypeError, "turn 1 is a dict", id="turn-is-a-dict"),
    pytest.param(HOSPITAL, [("a", "b", "c")], TypeError, "turn 1 is a tuple of 3", id="turn-of-3"),
    pytest.param(
        HOSPITAL, [("a", "b"), (1, "b")], TypeError, "turn 2 is a tuple of int and str", id="int"
    ),
]


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("question", "history", "error", "says"), BAD_PYTHON_CALLS)
def test_the_python_api_refuses_bad_input_in_one_sentence(
    bot, call, question, history, error, says
):
    with pytest.raises(error) as raised:
        CALLS[call](bot, question, history)
    assert says in str(raised.value)
    assert_one_clear_sentence(str(raised.value))


def test_no_history_is_the_same_as_an_empty_one(bot):
    assert bot.ask(HOSPITAL, None) == bot.ask(HOSPITAL)
    assert bot.retrieve(HOSPITAL, None) == bot.retrieve(HOSPITAL)


class _Prompts(BaseCallbackHandler):
    """What a chat model was sent (LangChain's callback, on LangChain's fake model)."""

    def __init__(self) -> None:
        self.messages: list = []

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        self.messages.extend(messages[0])


def test_only_the_last_turns_of_a_long_history_reach_the_model_and_cut_to_size(bot):
    prompts = _Prompts()
    model = FakeListChatModel(responses=["NOT_IN_DOCUMENTS"], callbacks=[prompts])
    llm_bot = Assistant(
        bot.settings, embeddings=bot.embeddings, chat_model=model, client=bot.index.client
    )
    history = [(f"Question {n}?" + "q" * 5000, "a" * 100_000) for n in range(50)]
    llm_bot.ask(HOSPITAL, history)
    earlier = prompts.messages[1:-1]  # between the system prompt and the question
    assert len(earlier) == 2 * MAX_HISTORY_TURNS
    assert earlier[0].content.startswith(f"Question {50 - MAX_HISTORY_TURNS}?")
    assert len(earlier[0].content) == bot.settings.max_question_chars
    assert len(earlier[1].content) == MAX_HISTORY_ANSWER_CHARS


# -- a real server on loopback -------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    url: str
    feedback: Path

    def feedback_size(self) -> int:
        return self.feedback.stat().st_size if self.feedback.exists() else 0

    def feedback_lines(self) -> list[dict[str, Any]]:
        if not self.feedback.exists():
            return []
        return [json.loads(line) for line in self.feedback.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def page(bot, tmp_path_factory) -> Iterator[Page]:
    """The page and its API, with a feedback file of its own."""
    data_dir = tmp_path_factory.mktemp("page-data")
    demo, url = start(bot.with_settings(data_dir=data_dir))
    yield Page(url, data_dir / FEEDBACK_FILE)
    demo.close()


def call_ask(url: str, data: list) -> tuple[str, Any]:
    """POST to ``/gradio_api/call/ask`` as documented; the event's name and its data."""
    joined = httpx.post(url + "gradio_api/call/ask", json={"data": data}, timeout=30)
    joined.raise_for_status()
    events = httpx.get(f"{url}gradio_api/call/ask/{joined.json()['event_id']}", timeout=30).text
    assert "Traceback" not in events
    event, payload = events.strip().split("\n")[-2:]
    return event.removeprefix("event: "), json.loads(payload.removeprefix("data: "))


BAD_HTTP_CALLS = [  # the data posted: question, k, answerer, history; what the error must say
    pytest.param([42, None, None, None], "must be a string", id="question-is-a-number"),
    pytest.param(["  ", None, None, None], "empty", id="question-is-blank"),
    pytest.param([HOSPITAL, "abc", None, None], "between 1 and 10", id="k-is-text"),
    pytest.param([HOSPITAL, 0, None, None], "between 1 and 10", id="k-is-0"),
    pytest.param([HOSPITAL, 99, None, None], "between 1 and 10", id="k-is-99"),
    pytest.param([HOSPITAL, 2.5, None, None], "whole number", id="k-is-fractional"),
    pytest.param([HOSPITAL, True, None, None], "whole number", id="k-is-true"),
    pytest.param([HOSPITAL, None, "openai:gpt-x", None], "one of: extractive", id="answerer"),
    pytest.param([HOSPITAL, None, 5, None], "one of: extractive", id="answerer-is-a-number"),
    pytest.param([HOSPITAL, None, None, "abc"], "history must be a list", id="history-is-text"),
    pytest.param([HOSPITAL, None, None, 5], "history must be a list", id="history-is-a-number"),
    pytest.param([HOSPITAL, None, None, [["only"]]], "turn 1 is a list of 1", id="turn-of-one"),
    pytest.param([HOSPITAL, None, None, [{"q": "a"}]], "turn 1 is a dict", id="turn-is-a-dict"),
    pytest.param([HOSPITAL, None, None, [[1, 2]]], "list of int and int", id="turn-of-numbers"),
]


@pytest.mark.parametrize(("data", "says"), BAD_HTTP_CALLS)
def test_the_http_api_refuses_bad_input_in_one_sentence(page, capsys, data, says):
    event, payload = call_ask(page.url, data)
    assert event == "error"
    assert says in payload["error"]
    assert_one_clear_sentence(payload["error"])
    assert "Traceback" not in capsys.readouterr().err  # a client's mistake is not our failure


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([HOSPITAL, None, None, None], id="defaults"),
        pytest.param([HOSPITAL, 3.0, "extractive", []], id="k-as-the-slider-sends-it"),
        pytest.param([HOSPITAL, None, None, [["What is XS228?", "A therapy."]]], id="history"),
    ],
)
def test_the_http_api_answers_good_input(page, data):
    event, payload = call_ask(page.url, data)
    assert event == "complete" and "Sun Yat-sen" in payload[0]["text"]


def two_megabytes_in_chunks() -> Iterator[bytes]:
    for _ in range(20):
        yield b" " * 100_000


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps({"data": ["x" * 2_000_000, None, None, None]}), id="declared"),
        pytest.param(two_megabytes_in_chunks(), id="chunked-without-a-length"),
    ],
)
def test_a_request_body_over_the_limit_is_refused_with_413(page, body):
    response = httpx.post(
        page.url + "gradio_api/call/ask",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert f"{MAX_REQUEST_BYTES:,} bytes" in response.json()["detail"]


class Session:
    """One browser session of the page, driving its (private) handlers through the queue as a
    client can: the answer handler and the thumbs handler."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hash = uuid.uuid4().hex
        dependencies = httpx.get(url + "config", timeout=30).json()["dependencies"]
        self.handlers = {d["api_name"]: d["id"] for d in dependencies}

    def run(self, handler: str, data: list, event_data: dict | None = None) -> dict[str, Any]:
        joined = httpx.post(
            self.url + "gradio_api/queue/join",
            json={
                "data": data,
                "fn_index": self.handlers[handler],
                "session_hash": self.hash,
                "event_data": event_data,
            },
            timeout=30,
        )
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        stream_url = f"{self.url}gradio_api/queue/data?session_hash={self.hash}"
        with httpx.stream("GET", stream_url, timeout=60) as stream:
            for line in stream.iter_lines():
                message = json.loads(line.removeprefix("data:")) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed" and message["event_id"] == event_id:
                    return message
        raise AssertionError(f"{handler} never completed")

    def ask(self, question: str) -> None:
        assert self.run("respond", [question, None, 6, "extractive"])["success"]

    def vote(self, liked: Any) -> dict[str, Any]:
        return self.run("vote", [None], {"index": 1, "value": ["answer"], "liked": liked})


@pytest.mark.parametrize(
    "liked",
    [
        pytest.param("maybe", id="a-word"),
        pytest.param("x" * 500_000, id="half-a-megabyte"),
        pytest.param(1, id="a-number"),
        pytest.param(None, id="null"),
        pytest.param({"up": True}, id="an-object"),
    ],
)
def test_a_vote_takes_only_what_the_page_sends(page, liked):
    session = Session(page.url)
    session.ask(HOSPITAL)
    size = page.feedback_size()
    result = session.vote(liked)
    assert result["success"] is False
    assert "like or a dislike" in result["output"]["error"]
    assert page.feedback_size() == size


def test_the_strings_a_vote_stores_are_capped(page):
    session = Session(page.url)
    session.ask("Which hospital " + "x" * 200_000)
    size = page.feedback_size()
    assert session.vote(True)["success"]
    line = page.feedback_lines()[-1]
    assert line["vote"] == "up" and len(line["question"]) == FEEDBACK_TEXT_CHARS
    assert page.feedback_size() - size < 3 * FEEDBACK_TEXT_CHARS


def test_two_votes_on_one_answer_count_once(page):
    session = Session(page.url)
    session.ask(HOSPITAL)
    before = page.feedback_lines()
    assert session.vote(True)["success"] and session.vote(False)["success"]
    added = page.feedback_lines()[len(before) :]
    assert [line["vote"] for line in added] == ["down"]  # the later vote replaced the first
    assert session.vote("")["success"]  # the thumb clicked off again: no vote
    assert page.feedback_lines() == before


def login(url: str, user: str, password: str) -> httpx.Response:
    return httpx.post(url + "login", data={"username": user, "password": password}, timeout=30)


def test_failed_logins_lock_the_client_out_for_a_while(bot):
    demo, port = build_app(bot), free_port()
    throttle = LoginThrottle(allowed_failures=5, first_lockout=1.0)
    launch(demo, port=port, auth=":".join(LOGIN), block=False, login_throttle=throttle)
    url = f"http://127.0.0.1:{port}/"
    try:
        statuses = [login(url, LOGIN[0], f"guess-{n}").status_code for n in range(6)]
        assert statuses == [400] * 5 + [429]
        locked_out = login(url, *LOGIN)  # the right password, during the lockout
        assert locked_out.status_code == 429 and int(locked_out.headers["retry-after"]) >= 1
        assert "Too many failed logins" in locked_out.json()["detail"]
        time.sleep(1.2)
        assert login(url, *LOGIN).status_code == 200
        assert login(url, LOGIN[0], "guess-again").status_code == 400  # the count starts anew
    finally:
        demo.close()


@pytest.mark.parametrize(
    ("host", "auth", "warns"),
    [
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("assistant.example", None, True),
        ("0.0.0.0", ":".join(LOGIN), False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_serving_beyond_loopback_without_a_login_is_warned(host, auth, warns):
    warning = exposure_warning(host, auth)
    assert (warning is not None) is warns
    if warns:
        assert host in warning and "ASSISTANT_AUTH" in warning


def test_launch_warns_in_the_log_and_on_stderr(monkeypatch, capsys, caplog):
    import gradio as gr

    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: None)  # bind nothing
    launch(gr.Blocks(), host="0.0.0.0", block=False)
    assert "ASSISTANT_AUTH" in capsys.readouterr().err
    assert any("ASSISTANT_AUTH" in record.getMessage() for record in caplog.records)


def test_two_servers_sharing_the_feedback_file_lose_no_vote(tmp_path):
    """Two page processes on one data folder: each has its own ``FeedbackLog``; votes changed
    in one (a rewrite of the file) must not drop the other's lines."""
    path = tmp_path / FEEDBACK_FILE
    servers = [FeedbackLog(path), FeedbackLog(path)]

    def turn(server: int, number: int) -> dict:
        answer = {"text": "an answer", "refused": False, "citations": []}
        return {
            "id": f"{server}-{number}",
            "question": "q",
            "answer": answer,
            "k": 6,
            "answerer": "extractive",
        }

    def vote_many(server: int) -> None:
        for number in range(60):
            servers[server].record(turn(server, number), "up")
            servers[server].record(turn(server, number), "down")  # a change: the file is rewritten

    threads = [threading.Thread(target=vote_many, args=(server,)) for server in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["answer_id"] for line in lines) == sorted(
        f"{server}-{number}" for server in (0, 1) for number in range(60)
    )
    assert {line["vote"] for line in lines} == {"down"}
