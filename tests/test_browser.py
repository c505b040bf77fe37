"""End to end in a real browser: Playwright from PyPI driving Debian's Chromium.

Playwright cannot download its own browsers here, so it is pointed at the system Chromium
(``apt-get install chromium``; ``make test`` installs it when missing). The test fails rather
than skips without it: CI must run it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from conftest import (
    PROJECT,
    ask_on_page,
    assistant_in,
    json_lines,
    page_server,
    wait_until,
    with_corpus_copy,
)

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parent.parent / "docs"
SCREENSHOT = DOCS / "screenshot.png"
PHONE_SCREENSHOT = DOCS / "screenshot-phone.png"
PHONE = {"width": 390, "height": 844}
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> Who runs it?'
HOSPITAL = "Which hospital will run the trial?"
UNANSWERABLE = "Who is XellSmart's chief executive?"  # one of the shipped example questions
TIMEOUT = 30_000
expect.set_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def shipped_bot(tmp_path_factory, embeddings):
    """An Assistant over a copy of the shipped corpus folder, its examples file with it, so
    the page (and its screenshots) offer the shipped example questions."""
    root = with_corpus_copy(tmp_path_factory.mktemp("shipped"))
    shutil.copy(PROJECT / "corpus" / "examples.yaml", root / "corpus" / "examples.yaml")
    return assistant_in(root, embeddings)


@pytest.fixture(scope="module")
def shipped_server(shipped_bot) -> Iterator[str]:
    with page_server(shipped_bot) as url:
        yield url


def test_chat_in_a_real_browser(shipped_server, browser, shipped_bot):
    page = browser.new_page(viewport={"width": 1400, "height": 960})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(TIMEOUT)
    page.goto(shipped_server)

    # Ask; the answer streams in, then its [1] chip and the highlighted quote in context show.
    ask_on_page(page, HOSPITAL)
    answer = page.locator('#chat [data-testid="bot"]').last
    expect(answer).to_contain_text("Third Affiliated Hospital of Sun Yat-sen University")
    chip = answer.locator(".cite", has_text="[1]")
    expect(chip).to_be_visible()
    mark = page.locator("#sources .src-card mark").first
    expect(mark).to_contain_text("Third Affiliated Hospital of Sun Yat-sen University")
    context = page.locator("#sources .src-ctx").first.inner_text()
    assert len(context) > len(mark.inner_text()) + 200  # the quote sits in its surrounding text
    assert "safety and efficacy" in context
    doc_name = page.locator("#sources .src-doc").first.inner_text()
    assert doc_name == "xellsmart-sci-trial-announcement.txt"
    page.wait_for_timeout(300)  # let the last repaint settle
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    # Clicking the chip points at its card in the sources panel.
    chip.click()
    page.locator('#sources .src-card.flash[data-n="1"]').wait_for()

    # A thumb up lands in the feedback file with the question, answer and citations.
    feedback = Path(shipped_bot.settings.data_dir) / "feedback.jsonl"
    before = len(json_lines(feedback))
    page.locator('#chat button[aria-label="Like"]').last.click()

    def voted():
        """a new line in the feedback file"""
        lines = json_lines(feedback)
        return lines[before:] and lines[-1]

    record = wait_until(voted)
    assert record["question"] == HOSPITAL and record["vote"] == "up"
    assert "[1]" in record["answer"] and record["citations"][0]["n"] == 1
    assert {"question", "answer", "citations", "vote", "time"} <= set(record)

    # Markup in a question is shown as text and never run.
    page.evaluate("window.__xss = undefined")
    ask_on_page(page, HOSTILE, done_text="Who runs it?")
    asked = page.locator('#chat [data-testid="user"]').nth(1).inner_text()
    assert '<img src=x onerror="window.__xss=1">' in asked and "<script>" in asked
    assert page.evaluate("window.__xss") is None
    assert not any(urlsplit(url).path.endswith("/x") for url in requests)

    # Clicking an earlier answer brings its sources back into the panel.
    page.locator('#chat [data-testid="bot"]').first.click()
    page.locator("#sources .sources-q", has_text=HOSPITAL).wait_for()
    assert page.locator("#sources .src-card mark").count() >= 1

    # An example question the documents cannot answer reads as a refusal, with nothing cited.
    page.get_by_role("button", name=UNANSWERABLE).click()
    page.locator("#chat .refusal").last.wait_for()
    refused = page.locator('#sources [data-state="done"]', has_text=UNANSWERABLE)
    refused.filter(has_text="nothing is cited").wait_for()
    closest = page.locator("#sources .closest")
    expect(closest.locator(".closest-title")).to_have_text(
        "Closest passages, not confirmed to answer this"
    )
    assert closest.locator(".closest-card").count() >= 1
    assert closest.locator(".closest-card mark").first.inner_text().strip()
    assert page.locator("#sources .src-card[data-n]").count() == 0  # nothing offered as cited
    expect(page.locator("#chat .refusal").last).to_contain_text("closest passages are shown")

    # The clear button empties the conversation and the sources panel.
    page.locator("#clear").click()
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 0")
    assert page.locator("#sources .src-card").count() == 0

    # Offline: every request stayed on the loopback server; no script error on the page.
    hosts = {
        urlsplit(url).hostname for url in requests if urlsplit(url).scheme in ("http", "https")
    }
    assert hosts == {"127.0.0.1"}, hosts
    assert not errors, errors
    page.close()


def test_the_page_on_a_phone(shipped_server, browser):
    """At a phone's 390-pixel width the conversation, the sources panel and the documents panel
    stack, nothing scrolls sideways, and an answer's quote, a refusal's closest passages and
    the indexed documents can be read."""
    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    page.set_default_timeout(TIMEOUT)
    page.goto(shipped_server)
    ask_on_page(page, HOSPITAL)
    expect(page.locator("#sources .src-card mark").first).to_contain_text("Third Affiliated")
    ask_on_page(page, UNANSWERABLE)
    page.locator("#sources .closest-card").first.wait_for()
    page.locator("#documents").get_by_text("Documents (1)").click()
    expect(page.locator("#docs-panel")).to_contain_text("xellsmart-sci-trial-announcement.txt")
    page.wait_for_timeout(300)  # let the last repaint settle

    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    chat, sources = page.locator("#chat").bounding_box(), page.locator("#sources").bounding_box()
    assert sources["y"] >= chat["y"] + chat["height"]  # stacked, not side by side
    for element in ("#chat", "#question", "#sources", "#documents", "#docs-panel"):
        box_of = page.locator(element).bounding_box()
        assert box_of["x"] >= 0 and box_of["x"] + box_of["width"] <= width + 1, element
    page.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
    page.close()
