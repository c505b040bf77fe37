"""The chat page (Gradio) and its ``/ask`` API.

``serve(settings)`` loads one ``Assistant`` and serves the page; ``build_app(bot)`` builds it
for tests. Programs call the answer endpoint with::

    Client("http://127.0.0.1:7860/").predict("Which hospital will run the trial?", api_name="/ask")

and get ``{"text": ..., "refused": ..., "hedged": ..., "citations": [...]}``. Optional
arguments: ``k`` (passages), ``answerer`` (one the page offers) and ``history`` (earlier
``[question, answer]`` pairs). Over plain HTTP, POST ``{"data": [question, null, null, null]}``
to ``/gradio_api/call/ask``.

What a client sends is checked before it is used: a bad argument gets one sentence saying what is
expected, request bodies over ``MAX_REQUEST_BYTES`` are refused with 413 before they are parsed,
votes take only what the page sends, and with a login, failed logins are throttled per address.
Only ``/ask`` is served by name: the page's own handlers are reached through the queue, and
check what they are sent themselves rather than leave it to Gradio's components.
"""

from __future__ import annotations

import html
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from assistant import Answer, Assistant, Settings
from assistant.answer.llm import remote_notice
from assistant.question import MAX_HISTORY_ANSWER_CHARS, MAX_HISTORY_TURNS, CheckedQuestion
from assistant.web.documents import (
    DOCUMENTS_CSS,
    UploadNamesChecked,
    UploadRouteLimit,
    documents_section,
    upload_limit,
)
from assistant.web.examples import page_examples
from assistant.web.feedback import FEEDBACK_FILE, FeedbackLog
from assistant.web.guard import (
    MAX_REQUEST_BYTES,
    ONE_SENTENCE_ERRORS,
    BodyLimit,
    CompleteCallsOnly,
    KnownStreamsOnly,
    LoginThrottle,
    PublicEndpointsOnly,
    ThrottledLogin,
    exposure_warning,
    login_check,
    uvicorn_trusting,
)
from assistant.web.render import CSS, JS, answer_message, sources_panel, user_message

logger = logging.getLogger(__name__)
TITLE = "Document assistant"
MAX_K = 10  # the slider's end, unless the settings ask for more
CONCURRENCY = 2  # two cores: one answer at a time per core
THEME = gr.themes.Soft(
    primary_hue="amber",
    neutral_hue="slate",
    font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"],
)


class _Bots:
    """The one loaded ``Assistant`` and its variants for the settings area, made once each."""

    def __init__(self, bot: Assistant) -> None:
        self.base = bot
        settings = bot.settings
        self.answerers = list(dict.fromkeys([settings.answerer, "extractive"]))
        self._cache: dict[tuple[int, str], Assistant] = {(settings.k, settings.answerer): bot}
        self._lock = threading.Lock()
        self.max_k = max(MAX_K, settings.k)

    def get(self, k: Any, answerer: Any) -> Assistant:
        """The assistant for these settings (None means the default), or a refusal saying what
        is allowed: a client may send anything (the slider sends whole floats such as 3.0)."""
        if k is None:
            k = self.base.settings.k
        whole = (isinstance(k, int) and not isinstance(k, bool)) or (
            isinstance(k, float) and k.is_integer()
        )
        if not whole or not 1 <= k <= self.max_k:
            raise _refused(f"k (passages) must be a whole number between 1 and {self.max_k}.")
        k = int(k)
        answerer = answerer or self.base.settings.answerer
        if not isinstance(answerer, str) or answerer not in self.answerers:
            raise _refused(f"answerer must be one of: {', '.join(self.answerers)}.")
        with self._lock:
            if (k, answerer) not in self._cache:
                self._cache[k, answerer] = self.base.with_settings(k=k, answerer=answerer)
            return self._cache[k, answerer]


def _refused(message: str) -> gr.Error:
    """A client's mistake, shown as the sentence given: no traceback in the server's log, since
    nothing went wrong on our side."""
    return gr.Error(message, print_exception=False)


def _checked_question(bot: Assistant, question: Any, history: Any) -> CheckedQuestion:
    """The question and history as ``Assistant`` checks them, or the one-sentence refusal for
    the client."""
    try:
        return bot.check_question(question, history)
    except (TypeError, ValueError) as error:
        raise _refused(str(error)) from None


class _PageEvent(gr.EventData):
    """A click on a message or a thumb, as the client reports it.

    Gradio's ``SelectData`` and ``LikeData`` fail on a report missing a field before the
    handler runs (a raw error, and a traceback in the log), so the handlers take the report as
    sent, in ``sent``, and check each field themselves."""

    def __init__(self, target: Any, data: Any) -> None:
        super().__init__(target, data)
        self.sent: dict[str, Any] = data if isinstance(data, dict) else {}


NO_EVENT = _PageEvent(None, None)  # a call that reported no event at all


def _turn_at(turns: list[dict[str, Any]], index: Any) -> dict[str, Any] | None:
    """The turn a chat message belongs to (two messages a turn), or None when ``index`` (sent by
    the client) names no message of this conversation."""
    if isinstance(index, list | tuple) and index:
        index = index[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index // 2 < len(turns):
        return None
    return turns[index // 2]


def _messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": user_message(turn["question"])})
        messages.append({"role": "assistant", "content": answer_message(turn["answer"])})
    return messages


def build_app(bot: Assistant) -> gr.Blocks:
    """The page: chat with streaming answers, sources panel, examples, feedback, settings."""
    bots = _Bots(bot)
    feedback = FeedbackLog(Path(bot.settings.data_dir) / FEEDBACK_FILE)
    examples = page_examples(bot)
    empty_panel = sources_panel(None, None, bot.source_text)

    def respond(question: Any, turns: list[dict[str, Any]], k: Any, answerer: Any) -> Iterator:
        """The answer, streamed into the chat. Inputs arrive as sent (``preprocess=False``):
        Gradio's own checks of the slider and dropdown fail with raw errors on a bad value."""
        if question is None or (isinstance(question, str) and not question.strip()):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chosen = bots.get(k, answerer)
        history = [(turn["question"], turn["answer"]["text"]) for turn in turns]
        checked = _checked_question(chosen, question, history)
        question = checked.text
        shown = [*_messages(turns), {"role": "user", "content": user_message(question)}]
        pending = {"text": "", "citations": [], "refused": False}
        panel = sources_panel(question, pending, bot.source_text, pending=True)
        yield "", [*shown, {"role": "assistant", "content": answer_message(pending)}], panel, turns
        answer = Answer(text="", citations=[], refused=False)
        try:
            for answer in chosen.stream_answers(checked):
                partial = {
                    "role": "assistant",
                    "content": answer_message(answer.to_dict(), final=False),
                }
                yield gr.skip(), [*shown, partial], gr.skip(), turns
        except Exception as error:  # a real failure (e.g. the LLM server is down): say so
            logger.exception("answering %r failed", question)
            yield question, _messages(turns), empty_panel, turns
            raise gr.Error(f"The assistant could not answer: {html.escape(str(error))}") from error
        turn = {
            "id": uuid.uuid4().hex,
            "question": question,
            "answer": answer.to_dict(),
            "k": chosen.settings.k,
            "answerer": chosen.settings.answerer,
        }
        turns = [*turns, turn]
        yield "", _messages(turns), sources_panel(question, turn["answer"], bot.source_text), turns

    def show_sources(turns: list[dict[str, Any]], event: _PageEvent = NO_EVENT) -> str:
        turn = _turn_at(turns, event.sent.get("index"))
        if turn is None:
            return gr.skip()
        return sources_panel(turn["question"], turn["answer"], bot.source_text)

    def vote(turns: list[dict[str, Any]], event: _PageEvent = NO_EVENT) -> None:
        """A thumb on an answer: the page sends True (up), False (down), or "" when a thumb is
        clicked off again; anything else is refused, not written."""
        turn = _turn_at(turns, event.sent.get("index"))
        if turn is None:
            return
        liked = event.sent.get("liked", True)  # as Gradio's LikeData reads it
        if isinstance(liked, bool):
            earlier = turns[: turns.index(turn)]
            feedback.record(turn, "up" if liked else "down", earlier)
            gr.Info("Thanks: your vote was recorded.", duration=2)
        elif liked == "":
            feedback.record(turn, None)
        else:
            raise _refused('A vote is a like or a dislike (true or false), or "" to take it back.')

    def clear() -> tuple:
        return [], [], empty_panel, ""

    def ask(
        question: str,
        k: int | None = None,
        answerer: str | None = None,
        history: list[list[str]] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the documents.

        Returns {"text", "refused", "hedged", "citations": [{"n", "source", "start", "end",
        "quote", "score"}], "closest"}: `hedged` is true when the answer quotes the closest
        passage without confirming it answers. `k` is a whole number of passages from 1 to the
        page's maximum; `history` is an optional list of earlier [question, answer] pairs of
        strings, of which the last {turns} are used, each answer cut to {chars} characters.
        """
        chosen = bots.get(k, answerer)
        return chosen.ask(_checked_question(chosen, question, history)).to_dict()

    ask.__doc__ = (  # the API page states the limits the code applies
        ask.__doc__.replace("{turns}", str(MAX_HISTORY_TURNS)).replace(
            "{chars}", f"{MAX_HISTORY_ANSWER_CHARS:,}"
        )
    )

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        turns = gr.State([])
        notice = remote_notice(bot.settings)  # documents leave the machine: say so, up front
        gr.HTML(
            f"<h1>{TITLE}</h1><p>Answers quote the documents word for word. Each "
            '<span class="cite">[n]</span> is tied to its passage, highlighted in context in the '
            "sources panel; click a marker or a message to see it.</p>"
            + (f'<p class="remote-notice">{html.escape(notice)}</p>' if notice else ""),
            elem_classes="app-header",
            js_on_load=None,
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=380):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="chat",
                    height=460,
                    render_markdown=False,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    buttons=[],
                    feedback_options=("Like", "Dislike"),
                    placeholder="Ask about the documents"
                    + (", or pick an example below." if examples else "."),
                )
                with gr.Row():
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        elem_id="question",
                        scale=5,
                        max_lines=4,
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80)
                with gr.Row(elem_classes="examples-row", visible=bool(examples)):
                    gr.HTML(
                        '<span class="examples-label">Try:</span>',
                        js_on_load=None,
                        min_width=0,
                        scale=0,
                        elem_classes="examples-label-block",
                    )
                    example_buttons = [
                        gr.Button(text, size="sm", variant="secondary") for text in examples
                    ]
                with gr.Row():
                    clear_button = gr.Button("Clear conversation", size="sm", elem_id="clear")
                with gr.Accordion("Settings", open=False):
                    k = gr.Slider(1, bots.max_k, value=bot.settings.k, step=1, label="Passages")
                    answerer = gr.Dropdown(
                        bots.answerers,
                        value=bot.settings.answerer,
                        label="Answerer",
                        interactive=len(bots.answerers) > 1,
                    )
            with gr.Column(scale=2, min_width=320):
                documents_section(bot, demo)
                sources = gr.HTML(empty_panel, elem_id="sources", js_on_load=None)

        private: dict[str, Any] = {"api_visibility": "private"}
        inputs, outputs = [question, turns, k, answerer], [question, chatbot, sources, turns]
        answering = {
            "show_progress": "minimal",
            "trigger_mode": "once",
            "preprocess": False,
            **private,
        }
        answers = [gr.on([question.submit, send.click], respond, inputs, outputs, **answering)]
        for button in example_buttons:
            fill = button.click(lambda text=button.value: text, None, question, **private)
            answers.append(fill.then(respond, inputs, outputs, **answering))
        gr.on(  # clearing also stops an answer still streaming
            [clear_button.click, chatbot.clear],
            clear,
            None,
            [chatbot, turns, sources, question],
            cancels=answers,
            **private,
        )
        chatbot.select(show_sources, turns, sources, **private)
        chatbot.like(vote, turns, None, **private)
        gr.api(ask, api_name="ask")

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    block: bool = True,
    login_throttle: LoginThrottle | None = None,
    max_upload_bytes: int | None = None,
    trusted_proxies: str = "",
) -> None:
    """Start the server with the page's theme, CSS and script; never a public share link.

    Request bodies are limited to ``MAX_REQUEST_BYTES``, uploads to ``max_upload_bytes`` (the
    largest document the page accepts; None when it accepts none); with ``auth``, failed
    logins are throttled per client address (``login_throttle``, by default
    ``LoginThrottle()``), which is the connection's unless it comes from one of
    ``trusted_proxies`` (comma-separated addresses or networks), whose ``X-Forwarded-For`` then
    names it. Only public endpoints are served by name, and every error is one sentence.
    Serving beyond loopback without ``auth`` is warned about in the log and on stderr.
    """
    warning = exposure_warning(host, auth)
    if warning:
        logger.warning(warning)
        print(f"WARNING: {warning}", file=sys.stderr)
    middleware = [
        Middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)
        if max_upload_bytes is None
        else Middleware(
            UploadRouteLimit, max_bytes=MAX_REQUEST_BYTES, upload_bytes=max_upload_bytes
        ),
        Middleware(UploadNamesChecked),
        Middleware(PublicEndpointsOnly, public=_public_endpoints(demo)),
        Middleware(KnownStreamsOnly, queue_of=lambda: demo._queue),
        Middleware(CompleteCallsOnly, inputs_of=_inputs_counter(demo)),
    ]
    if auth:
        middleware.append(Middleware(ThrottledLogin, throttle=login_throttle or LoginThrottle()))
    app_kwargs = {"middleware": middleware, "exception_handlers": ONE_SENTENCE_ERRORS}
    with uvicorn_trusting(trusted_proxies):
        demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            auth=login_check(auth),
            auth_message="This assistant requires a login." if auth else None,
            prevent_thread_lock=not block,
            show_error=True,
            footer_links=["api", "settings"],
            theme=THEME,
            css=CSS + DOCUMENTS_CSS,
            max_file_size=max_upload_bytes,
            js=JS,
            ssr_mode=False,
            quiet=not block,
            app_kwargs=app_kwargs,
        )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Load the assistant once and serve the page until interrupted."""
    bot = Assistant(settings)
    bot.watch_corpus()  # a changed corpus is re-indexed in the background, under the lock
    launch(
        build_app(bot),
        host=host,
        port=port,
        auth=settings.auth,
        block=True,
        max_upload_bytes=upload_limit(settings, host),
        trusted_proxies=settings.trusted_proxies,
    )


def _inputs_counter(demo: gr.Blocks) -> Callable[[str | int], int | None]:
    """How many values each handler of the page takes, by API name or by number."""
    counts: dict[str | int, int] = {}
    for number, function in demo.fns.items():
        counts[number] = len(function.inputs)
        if isinstance(function.api_name, str):
            counts[function.api_name] = len(function.inputs)
    return counts.get


def _public_endpoints(demo: gr.Blocks) -> frozenset[str]:
    """The names of the endpoints meant for clients (``/ask``), as the API page lists them."""
    return frozenset(
        function.api_name
        for function in demo.fns.values()
        if function.api_visibility == "public" and isinstance(function.api_name, str)
    )
