"""Requests a client could send by mistake or on purpose, against the real thing: the Python
API, and a real Gradio server on loopback called over plain HTTP as any program could.

Each bad request gets one sentence saying what is expected (never a Python message such as
"'int' object has no attribute 'strip'"), or is bounded: request bodies, stored feedback and
login attempts.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import Assistant
from assistant.question import MAX_HISTORY_ANSWER_CHARS, MAX_HISTORY_TURNS
from assistant.web.app import launch
from assistant.web.feedback import FEEDBACK_FILE, FEEDBACK_TEXT_CHARS, FeedbackLog
from assistant.web.guard import MAX_REQUEST_BYTES, LoginThrottle, exposure_warning
from conftest import LIGHTHOUSE, json_lines, page_server, running_page, wait_until
from test_app import HOSPITAL, LOGIN

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
        return json_lines(self.feedback)


@pytest.fixture(scope="module")
def page(bot, tmp_path_factory) -> Iterator[Page]:
    """The page and its API, with a feedback file of its own."""
    data_dir = tmp_path_factory.mktemp("page-data")
    with page_server(bot.with_settings(data_dir=data_dir)) as url:
        yield Page(url, data_dir / FEEDBACK_FILE)


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
    throttle = LoginThrottle(allowed_failures=5, first_lockout=1.0)
    with page_server(bot, auth=":".join(LOGIN), login_throttle=throttle) as url:
        statuses = [login(url, LOGIN[0], f"guess-{n}").status_code for n in range(6)]
        assert statuses == [400] * 5 + [429]
        locked_out = login(url, *LOGIN)  # the right password, during the lockout
        assert locked_out.status_code == 429 and int(locked_out.headers["retry-after"]) >= 1
        assert "Too many failed logins" in locked_out.json()["detail"]
        # the lockout ends on the server's clock: poll it (a refused login does not extend it)
        wait_until(lambda: login(url, *LOGIN).status_code == 200, timeout=10)
        assert login(url, LOGIN[0], "guess-again").status_code == 400  # the count starts anew


SPOOFED = [
    *({"X-Forwarded-For": f"10.0.0.{n}"} for n in range(1, 8)),
    {"X-Forwarded-For": "10.0.0.9, 10.0.0.10"},
    *({"Forwarded": f"for=10.0.1.{n}"} for n in range(1, 4)),
    *({"X-Real-IP": f"10.0.2.{n}"} for n in range(1, 4)),
]


def locked_page(bot, trusted_proxies: str = "") -> AbstractContextManager[str]:
    """The page with a login, locking an address out for a minute after two failures."""
    throttle = LoginThrottle(allowed_failures=2, first_lockout=60.0)
    return page_server(
        bot, auth=":".join(LOGIN), login_throttle=throttle, trusted_proxies=trusted_proxies
    )


def test_forwarding_headers_do_not_dodge_a_lockout(bot):
    with locked_page(bot) as url:
        assert [login(url, LOGIN[0], f"guess-{n}").status_code for n in range(3)] == [
            400,
            400,
            429,
        ]
        dodges = [
            httpx.post(url + "login", data={"username": LOGIN[0], "password": "g"}, headers=h)
            for h in SPOOFED
        ]
        assert [response.status_code for response in dodges] == [429] * len(SPOOFED)


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(bot):
    def tries(client: str) -> list[int]:
        forwarded = {"X-Forwarded-For": client}
        form = {"username": LOGIN[0], "password": "guess"}
        return [
            httpx.post(url + "login", data=form, headers=forwarded).status_code for _ in range(3)
        ]

    with locked_page(bot, trusted_proxies="127.0.0.1, ::1") as url:
        assert tries("10.0.0.1") == [400, 400, 429]
        assert tries("10.0.0.2") == [400, 400, 429]  # another client behind the proxy
        assert tries("198.51.100.7, 10.0.0.1") == [429] * 3  # the proxy appends the client


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


# -- a table of bad HTTP inputs against `assistant serve` -----------------------------------

RAW_ERRORS = (
    *INTERNALS,
    "not supported between",
    "not subscriptable",
    "TextInputSequence",
    "Exception",
    "Error:",
    "Internal Server Error",
)


@dataclass(frozen=True)
class BadInput:
    """One request a client could send; ``body`` is JSON (sent with escapes, so a lone
    surrogate arrives as the client wrote it) or bytes sent as they are."""

    kind: str  # its row in the tally
    method: str
    path: str  # from the page's root
    body: Any = None
    handler: str | None = None  # sent through the queue to this handler of the page, by number
    event_data: Any = None
    upload_name: bytes | None = None  # sent to the upload route as this file's name


def _ask_payloads() -> list[BadInput]:
    questions = [42, True, [], {}, None, "\ud800", "Which hospital \udfff?", "\x00\x01\x02"]
    questions += ["x" * 900_000, "\ufeff\u200b", "\U0001f600" * 1000, "x" * 1999 + "\ud800"]
    arguments = [[HOSPITAL, k] for k in (-1, 1e308, "NaN", [], {}, "\ud800")]
    arguments += [[HOSPITAL, None, answerer] for answerer in ("\ud800", [], {}, "x" * 10_000)]
    histories = [[["\ud800", "a"]], [["What is XS228?", "\udfff"]], [[None, None]], [[[[[]]]]]]
    histories += ["x" * 100_000, [["a", "b"]] * 10_000]
    arguments += [[HOSPITAL, None, None, history] for history in histories]
    bodies: list[Any] = [{"data": data} for data in ("x", None, 5, {}, [], [HOSPITAL] * 6)]
    bodies += [{}, [], "text", None, {"data": [HOSPITAL], "session_hash": 5}]
    bodies += [{"data": [question]} for question in questions]
    bodies += [{"data": data} for data in arguments]
    return [BadInput("/ask payloads", "POST", "gradio_api/call/ask", body) for body in bodies]


MALFORMED = [b"{", b"not json", b"\xff\xfe\x00garbage", b"", b'{"data": [1,]}']
JSON_ROUTES = ["call/ask", "call/v2/ask", "api/ask", "run/ask", "queue/join"]
PAGE_HANDLERS = ["respond", "vote", "show_sources", "clear", "refreshed", "on_load", "add"]
PAGE_HANDLERS += ["take_out", "ask_to_confirm", "lambda", "unnamed", "nope"]
QUEUED = "page handlers through the queue"


def _table() -> list[BadInput]:
    table = _ask_payloads()
    table += [
        BadInput("malformed bodies", "POST", f"gradio_api/{route}", body)
        for route in JSON_ROUTES
        for body in MALFORMED
    ]
    table += [
        BadInput("page handlers by name", "POST", f"gradio_api/{route}/{name}", {"data": data})
        for name in PAGE_HANDLERS
        for route in ("call", "call/v2", "api", "run")
        for data in ([None, None, None, None],)
    ]
    table += [
        BadInput("page handlers by name", "POST", "gradio_api/call/respond", {"data": data})
        for data in ([HOSPITAL, [], None, "extractive"], [HOSPITAL, None, None, None], [])
    ]
    queued = [
        ("respond", [HOSPITAL, None, None, None], None),
        ("respond", [HOSPITAL, [], "x", "extractive"], None),
        ("respond", [None, [], 6, "nobody"], None),
        ("respond", ["\ud800", [], 6, "extractive"], None),
        ("respond", [42, [], 6.0, "extractive"], None),
        ("respond", [HOSPITAL, [], 99, "extractive"], None),
        ("respond", [], None),
        ("respond", "x", None),
        ("vote", [None], None),
        ("vote", [None], {}),
        ("vote", [None], {"index": "a", "liked": True}),
        ("vote", [None], {"index": [10**9], "liked": "maybe"}),
        ("vote", [None], "x"),
        ("show_sources", [None], None),
        ("show_sources", [None], {"index": None}),
        ("add", [{"path": "/etc/passwd"}, False], None),
        ("add", ["/etc/passwd", "yes"], None),
        ("take_out", ["../../etc/passwd"], None),
        ("ask_to_confirm", [{"a": 1}], None),
    ]
    table += [
        BadInput(
            "page handlers through the queue", "POST", "gradio_api/queue/join", data, name, event
        )
        for name, data, event in queued
    ]
    table += [
        BadInput(QUEUED, "POST", "gradio_api/queue/join", body)
        for body in (
            {"data": [], "fn_index": 99_999, "session_hash": "s"},
            {"data": [], "fn_index": -1, "session_hash": "s"},
            {"data": [], "fn_index": "x", "session_hash": "s"},
            {"data": [], "fn_index": 0},
        )
    ]
    routes = [
        ("GET", "nope"),
        ("GET", "gradio_api/nope"),
        ("POST", "nope"),
        ("GET", "gradio_api/call/ask/no-such-event"),
        ("GET", "gradio_api/call/respond/no-such-event"),
        ("GET", "gradio_api/queue/data?session_hash=no-such-session"),
        ("GET", "gradio_api/queue/data"),
        ("GET", "gradio_api/call/ask"),
        ("DELETE", "gradio_api/call/ask"),
        ("PUT", "config"),
        ("PATCH", ""),
        ("GET", "gradio_api/queue/join"),
        ("GET", "gradio_api/upload"),
        ("GET", "file=/etc/passwd"),
        ("GET", "gradio_api/file=../../../etc/passwd"),
        ("GET", "a" * 5000),
        ("GET", "%ff%fe%00"),
        ("POST", "gradio_api/cancel"),
        ("GET", "gradio_api/info?all_endpoints=maybe"),
        ("POST", "gradio_api/reset"),
        ("GET", "gradio_api/upload_progress?upload_id=nope"),
        ("POST", "gradio_api/component_server"),
        ("GET", "gradio_api/call/v2/ask/no-such-event"),
    ]
    table += [BadInput("unknown routes, wrong methods", m, path, b"") for m, path in routes]
    names = [b"../x.txt", b"a/b.txt", b"a\\b.txt", b".hidden.txt", b"x.exe", b"n" * 296 + b".txt"]
    names += [b"n" * 210 + b".txt", b"", b"x", b"a\x01b.txt", b"what?.txt", b"x.txt ", b"CON.txt"]
    table += [BadInput("uploads", "POST", "gradio_api/upload", upload_name=n) for n in names]
    table += [
        BadInput("uploads", "POST", "gradio_api/upload", b"not multipart"),
        BadInput("uploads", "POST", "gradio_api/upload", {"files": []}),
    ]
    return table


BAD_INPUTS = _table()


def _message(response: httpx.Response) -> str:
    """What a client is told: a JSON detail or error, else the body's text."""
    try:
        said = response.json()
    except ValueError:
        return response.text
    if isinstance(said, dict):
        said = said.get("detail", said.get("error", ""))
    return said if isinstance(said, str) else json.dumps(said)


def _multipart(name: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "bad-input-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
        + name
        + f'"\r\nContent-Type: text/plain\r\n\r\n{LIGHTHOUSE}\r\n--{boundary}--\r\n'.encode()
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def _through_queue(url: str, bad: BadInput, handlers: dict[str, int]) -> tuple[int, str]:
    session = uuid.uuid4().hex
    body = {"data": bad.body, "fn_index": handlers[bad.handler], "session_hash": session}
    body["event_data"] = bad.event_data
    joined = httpx.post(url + bad.path, content=json.dumps(body), timeout=30)
    if joined.status_code != 200:
        return joined.status_code, _message(joined)
    stream = f"{url}gradio_api/queue/data?session_hash={session}"
    with httpx.stream("GET", stream, timeout=60) as events:
        for line in events.iter_lines():
            message = json.loads(line.removeprefix("data:")) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                said = "" if message["success"] else message["output"].get("error")
                return 200, said if isinstance(said, str) else repr(said)
    return 0, "the stream ended without an outcome"


def send(url: str, bad: BadInput, handlers: dict[str, int]) -> tuple[int, str]:
    """Send ``bad`` to the page at ``url``; the status and what the client is told (for a
    call answered through an event stream, the stream's error, "" when it completed)."""
    if bad.handler is not None:
        return _through_queue(url, bad, handlers)
    headers = {"content-type": "application/json"}
    if bad.upload_name is not None:
        content, headers = _multipart(bad.upload_name)
    elif isinstance(bad.body, bytes):
        content = bad.body
    else:
        content = json.dumps(bad.body).encode()
    response = httpx.request(
        bad.method, url + bad.path, content=content, headers=headers, timeout=60
    )
    if response.status_code != 200 or not bad.path.startswith("gradio_api/call/"):
        return response.status_code, _message(response) if response.status_code >= 400 else ""
    events = httpx.get(f"{url}{bad.path}/{response.json()['event_id']}", timeout=60).text
    event, data = events.strip().split("\n")[-2:]
    said = json.loads(data.removeprefix("data: ")) if event == "event: error" else ""
    if isinstance(said, dict):  # a refusal of ours: {"error": the sentence, how to show it}
        said = said.get("error")
    return 200, said if isinstance(said, str) else repr(said)


def what_went_wrong(status: int, said: str) -> str | None:
    """Why a response is not a clean refusal (or answer), or None when it is."""
    if status >= 500 or status == 0:
        return f"HTTP {status}: {said[:200]}"
    if status >= 400 and not said:
        return f"HTTP {status} without a word"
    if said.lstrip().startswith(("[", "{")):
        return f"HTTP {status}, not a sentence: {said[:200]}"
    if any(text in said for text in RAW_ERRORS) or ". " in said.rstrip("."):
        return f"HTTP {status}: {said[:200]}"
    return None


def handler_numbers(url: str) -> dict[str, int]:
    dependencies = httpx.get(url + "config", timeout=30).json()["dependencies"]
    return {d["api_name"]: d["id"] for d in dependencies}


def probe(url: str, log: Path, upload_folder: Path) -> dict[str, list[str]]:
    """Every bad input sent once: per kind, what went wrong (one line each, "" for a clean
    answer); a traceback the server logged while an input was answered counts against it."""
    handlers = handler_numbers(url)
    outcomes: dict[str, list[str]] = {}
    for bad in BAD_INPUTS:
        before = log.stat().st_size
        uploads_before = sorted(upload_folder.rglob("*")) if upload_folder.exists() else []
        try:
            status, said = send(url, bad, handlers)
        except httpx.HTTPError as error:  # a response cut off, say
            status, said = 0, f"{type(error).__name__}: {error}"
        time.sleep(0.02)  # a traceback printed as the response leaves
        with log.open("rb") as output:
            output.seek(before)
            logged = output.read().decode("utf-8", "replace")
        wrong = what_went_wrong(status, said) or ""
        if "Traceback" in logged:
            wrong += f" (a traceback: {logged.strip().splitlines()[-1][:150]})"
        uploads = sorted(upload_folder.rglob("*")) if upload_folder.exists() else []
        if bad.kind == "uploads" and not 400 <= status < 500:
            wrong += f" (HTTP {status}: taken, not refused)"
        if bad.upload_name is not None and uploads != uploads_before:
            wrong += f" (left in the upload folder: {[p.name for p in uploads]})"
        outcomes.setdefault(bad.kind, []).append(wrong and f"{bad.method} /{bad.path}: {wrong}")
    return outcomes


def tally(outcomes: dict[str, list[str]]) -> str:
    rows = [f"{kind}: {results.count('')} of {len(results)}" for kind, results in outcomes.items()]
    return "\n".join(rows)


@pytest.fixture(scope="module")
def served(workspace, bot, tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """``assistant serve`` in its own process, uploads allowed, over a copy of the session's
    corpus and index; yields its URL, its log and Gradio's upload folder."""
    root = tmp_path_factory.mktemp("served")
    for folder in ("corpus", "index"):
        shutil.copytree(workspace / folder, root / folder)
    log = root / "server.log"
    with running_page(root, log, allow_uploads="true") as url:
        yield url, log, root / "gradio"


def test_a_hundred_bad_http_inputs_each_get_one_sentence_and_no_traceback(served):
    assert len(BAD_INPUTS) >= 100
    url, log, upload_folder = served
    outcomes = probe(url, log, upload_folder)
    failures = [line for results in outcomes.values() for line in results if line]
    assert not failures, tally(outcomes) + "\n" + "\n".join(failures)
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")


def test_trusted_proxies_are_addresses_or_networks():
    from assistant import Settings

    assert Settings.load({"ASSISTANT_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1"})
    with pytest.raises(ValueError, match="trusted_proxies must list IP addresses"):
        Settings.load({"ASSISTANT_TRUSTED_PROXIES": "proxy.example"})
