"""The chat page's server, called as a program would: through ``gradio_client`` on loopback."""

from __future__ import annotations

import html
import os
from collections.abc import Iterator

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import httpx
from gradio_client import Client

from assistant.web.render import answer_message, sources_panel, user_message
from conftest import page_server

HOSPITAL = "Which hospital will run the trial?"
UNANSWERABLE = "Who is XellSmart's chief executive?"
LOGIN = ("reader", "s3cret-pass")


def client(url: str, **kwargs) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, **kwargs)


@pytest.fixture(scope="module")
def server(bot) -> Iterator[str]:
    with page_server(bot) as url:
        yield url


@pytest.fixture(scope="module")
def api(server) -> Client:
    return client(server)


@pytest.fixture(scope="module")
def locked_server(bot) -> Iterator[str]:
    with page_server(bot, auth=":".join(LOGIN)) as url:
        yield url


def test_ask_returns_json_answer_with_exact_citations(api, bot):
    result = api.predict(HOSPITAL, api_name="/ask")
    assert set(result) == {"text", "refused", "hedged", "citations", "closest"}
    assert result["refused"] is False
    assert "Sun Yat-sen" in result["text"] and "[1]" in result["text"]
    first = result["citations"][0]
    assert first["n"] == 1
    assert "Third Affiliated Hospital of Sun Yat-sen University" in first["quote"]
    assert bot.source_text(first["source"])[first["start"] : first["end"]] == first["quote"]


def test_refusal_is_an_answer_not_an_error(api):
    result = api.predict(UNANSWERABLE, api_name="/ask")
    assert result["refused"] is True
    assert result["citations"] == []
    assert result["text"]


def test_ask_takes_settings_and_history(api):
    result = api.predict(HOSPITAL, k=3, answerer="extractive", api_name="/ask")
    assert result["citations"] and not result["refused"]
    follow_up = api.predict(
        "Which agencies approved it?",
        history=[[HOSPITAL, result["text"]]],
        api_name="/ask",
    )
    assert follow_up["citations"] or (follow_up["refused"] and follow_up["closest"])


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("   ",), {}), ((HOSPITAL,), {"k": 99}), ((HOSPITAL,), {"answerer": "openai:gpt-x"})],
)
def test_bad_requests_are_refused(api, args, kwargs):
    with pytest.raises(Exception, match=r"empty|between|one of"):
        api.predict(*args, **kwargs, api_name="/ask")


def test_the_api_checks_each_request_once(api, monkeypatch):
    from assistant import Assistant

    checks = []
    check = Assistant.check_question

    def counted(self, *args):
        checks.append(args)
        return check(self, *args)

    monkeypatch.setattr(Assistant, "check_question", counted)
    result = api.predict(f"  {HOSPITAL} ", None, None, [["Who?", "Them."]], api_name="/ask")
    assert result["citations"]
    assert checks == [(f"  {HOSPITAL} ", [["Who?", "Them."]])]


def test_a_checked_question_is_answered_as_it_is(bot, monkeypatch):
    from assistant.question import CheckedQuestion

    checked = bot.check_question(f"  {HOSPITAL}  ", [("Who?", "Them."), ["And?", "More."]])
    assert checked == CheckedQuestion(HOSPITAL, (("Who?", "Them."), ("And?", "More.")))
    monkeypatch.setattr(type(bot), "check_question", None)  # asking again would fail
    assert bot.ask(checked).citations
    with pytest.raises(TypeError, match="carries its history"):
        bot.ask(checked, [("Who?", "Them.")])


def test_only_ask_is_offered_to_programs(api):
    endpoints = api.view_api(print_info=False, return_format="dict")
    assert list(endpoints["named_endpoints"]) == ["/ask"]
    assert not endpoints["unnamed_endpoints"]


def test_login_is_required_when_auth_is_set(locked_server):
    with pytest.raises(Exception):  # noqa: B017 - the client fails on its first request
        client(locked_server)
    assert httpx.get(locked_server + "config").status_code == 401
    with pytest.raises(Exception):  # noqa: B017
        client(locked_server, auth=("reader", "wrong"))
    result = client(locked_server, auth=LOGIN).predict(HOSPITAL, api_name="/ask")
    assert result["citations"]


def test_launch_binds_loopback_without_share(monkeypatch, bot):
    from assistant.web import app

    seen = {}
    monkeypatch.setattr(app.gr.Blocks, "launch", lambda self, **kw: seen.update(kw))
    monkeypatch.setattr(app, "Assistant", lambda settings: bot)
    app.serve(bot.settings)
    assert seen["server_name"] == "127.0.0.1" and seen["server_port"] == 7860
    assert seen["share"] is False and seen["auth"] is None


HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> & [1](javascript:alert(3))'


def test_text_is_escaped_everywhere():
    assert "<img" not in user_message(HOSTILE) and "&lt;img" in user_message(HOSTILE)
    answer = {"text": HOSTILE, "refused": False, "citations": []}
    assert "<script" not in answer_message(answer)
    document = "before " + HOSTILE + " after"
    start = document.index("<img")
    citation = {
        "n": 1,
        "source": "<b>doc</b>.txt",
        "start": start,
        "end": start + 20,
        "quote": document[start : start + 20],
        "score": 0.5,
    }
    panel = sources_panel(
        HOSTILE,
        {"text": "x [1]", "refused": False, "citations": [citation]},
        lambda source: document,
    )
    assert "<img" not in panel and "<script" not in panel and "<b>" not in panel
    assert "<mark>&lt;img src=x onerror=&quot;</mark>" in panel


def test_marked_quote_sits_in_its_context(bot):
    answer = bot.ask(HOSPITAL).to_dict()
    panel = sources_panel(HOSPITAL, answer, bot.source_text)
    quote = answer["citations"][0]["quote"]
    assert f"<mark>{quote}</mark>" in panel
    before, after = panel.split("<mark>", 1)[0], panel.split("</mark>", 1)[1]
    assert "rehabilitation" in before[-400:] and "safety and efficacy" in after[:400]
    assert "xellsmart-sci-trial-announcement.txt" in panel


def test_a_refusal_shows_its_closest_passages_not_citations(bot):
    refusal = bot.ask(UNANSWERABLE).to_dict()
    assert refusal["refused"] and refusal["closest"]
    panel = sources_panel(UNANSWERABLE, refusal, bot.source_text)
    assert "nothing is cited" in panel and "data-n=" not in panel  # no card poses as a citation
    before, closest = panel.split("Closest passages, not confirmed to answer this", 1)
    assert "<mark>" not in before
    assert closest.count('class="src-card closest-card"') == len(refusal["closest"])
    for passage in refusal["closest"]:
        best = passage["text"][
            passage["best_start"] - passage["start"] : passage["best_end"] - passage["start"]
        ]
        assert f"<mark>{html.escape(best)}</mark>" in closest
        assert (
            bot.source_text(passage["source"])[passage["start"] : passage["end"]]
            == (passage["text"])
        )
    shown = answer_message(refusal)
    assert "closest passages are shown" in shown
    assert "closest passages" not in answer_message({**refusal, "closest": []})


def test_the_page_says_where_documents_go_for_a_remote_llm(bot):
    from assistant.web.app import build_app

    remote = bot.with_settings(answerer="openai:some-model", llm_base_url="http://10.1.2.3:8000/v1")
    shown_html = " ".join(
        str(getattr(block, "value", "")) for block in build_app(remote).blocks.values()
    )
    assert "will be sent to http://10.1.2.3:8000/v1" in shown_html
    assert "will be sent to" not in " ".join(
        str(getattr(block, "value", "")) for block in build_app(bot).blocks.values()
    )


def test_a_hedged_answer_shows_its_citation_and_its_other_close_passages(bot):
    """A hedge cites the closest passage as usual and lists the next ones as unconfirmed,
    never under the refusal's "do not answer" heading."""
    refusal = bot.ask(UNANSWERABLE).to_dict()  # its closest passages make the hedge
    best, *others = refusal["closest"]
    quote = best["text"][best["best_start"] - best["start"] : best["best_end"] - best["start"]]
    citation = {"n": 1, "source": best["source"], "start": best["best_start"]}
    citation |= {"end": best["best_end"], "quote": quote, "score": 0.5}
    hedged = {
        "text": "I could not confirm this in the documents; the closest passage says: x [1].",
        "refused": False,
        "hedged": True,
        "citations": [citation],
        "closest": others,
    }
    panel = sources_panel(UNANSWERABLE, hedged, bot.source_text)
    assert 'data-n="1"' in panel
    assert "Closest passages" not in panel
    _, nearby = panel.split("Other close passages, not confirmed to answer this", 1)
    assert nearby.count('class="src-card closest-card"') == len(others)
