"""The documents panel in a real browser: upload a document through the page, see it listed,
ask about it and get a citation quoting it (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from assistant import Assistant
from assistant.web.documents import REFRESH_SECONDS
from conftest import (
    CORPUS_FILE,
    LIGHTHOUSE,
    LIGHTHOUSE_QUESTION,
    PROJECT,
    ask_on_page,
    assistant_in,
    page_server,
    with_corpus_copy,
)

pytestmark = pytest.mark.browser

TIMEOUT = 30_000
SCREENSHOT = PROJECT / "docs" / "screenshot-documents.png"
NAME = "skerry-point.md"
# Progress shows only while the ingest runs (under a second here): note every text it shows.
WATCH_PROGRESS = """() => {
  window.__progress = [];
  const panel = document.querySelector('#docs-panel');
  new MutationObserver(() => {
    for (const shown of panel.querySelectorAll('.progress-level-inner, .progress-text')) {
      window.__progress.push(shown.innerText);
    }
  }).observe(panel, {subtree: true, childList: true, characterData: true});
}"""
FITS_ON_A_PHONE = """() => {
  const box = document.querySelector('#documents').getBoundingClientRect();
  const panel = document.querySelector('#docs-panel .docs-panel');
  return box.right <= window.innerWidth && panel.scrollWidth <= panel.clientWidth;
}"""


def uploads_in_gradios_cache() -> list[Path]:
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    return list(cache.rglob(NAME))


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory, embeddings) -> Iterator[tuple[str, Assistant]]:
    """The page over an assistant of its own (its own corpus copy), uploads allowed."""
    root = with_corpus_copy(tmp_path_factory.mktemp("browser-documents"))
    bot = assistant_in(root, embeddings, allow_uploads=True)
    with page_server(bot, max_upload_bytes=bot.settings.max_file_bytes) as url:
        yield url, bot


def test_upload_a_document_then_ask_about_it(upload_server, browser, tmp_path):
    url, bot = upload_server
    upload = tmp_path / NAME
    upload.write_text(LIGHTHOUSE, encoding="utf-8")
    for stale in uploads_in_gradios_cache():  # left by an earlier run
        stale.unlink()
    page = browser.new_page(viewport={"width": 1400, "height": 960})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(TIMEOUT)
    page.goto(url)

    panel = page.locator("#docs-panel")
    page.locator("#documents").get_by_text("Documents (1)").click()
    expect(panel).to_contain_text(CORPUS_FILE.name)
    expect(panel).to_contain_text("1 document · 7 passages")
    page.evaluate(WATCH_PROGRESS)
    page.locator("#docs-upload input[type=file]").set_input_files(str(upload))
    expect(panel).to_contain_text(NAME, timeout=TIMEOUT)
    assert not uploads_in_gradios_cache()  # the corpus holds the document; Gradio keeps no copy
    assert any("indexing" in shown for shown in page.evaluate("window.__progress")), (
        "the ingest's progress bar was not shown on the panel"
    )
    expect(panel).to_contain_text("2 documents")
    expect(page.locator("#documents")).to_contain_text("Documents (2)")
    assert (bot.settings.corpus_dir / NAME).read_text(encoding="utf-8") == LIGHTHOUSE

    ask_on_page(page, LIGHTHOUSE_QUESTION)
    answer = page.locator('#chat [data-testid="bot"]').last
    expect(answer).to_contain_text("Northern Lights Heritage Trust")
    expect(page.locator("#sources .src-doc").first).to_have_text(NAME)
    quote = page.locator("#sources .src-card mark").first.inner_text()
    assert quote.strip() and " ".join(quote.split()) in " ".join(LIGHTHOUSE.split())
    page.wait_for_timeout(300)  # let the last repaint settle
    page.screenshot(path=str(SCREENSHOT))

    # The same name again is refused (nothing replaced), and the drop zone empties for the next.
    page.locator("#docs-upload input[type=file]").set_input_files(str(upload))
    refusal = page.locator(".toast-body", has_text=f"already has a document named {NAME}")
    expect(refusal).to_be_visible()
    expect(page.locator("#docs-upload input[type=file]")).to_have_count(1)
    refusal.locator("[data-testid=toast-close]").click()

    # On a phone the panel fits the screen: long names wrap, nothing forces a width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    assert page.evaluate(FITS_ON_A_PHONE), "the documents panel is wider than the screen"

    # Removing asks first, then the document leaves the panel, the corpus and the index.
    page.locator("#docs-pick input").click()
    page.get_by_role("option", name=NAME).click()
    page.locator("#docs-remove").click()
    page.locator("#docs-confirm").click()
    expect(panel).not_to_contain_text(NAME, timeout=TIMEOUT)
    expect(panel).to_contain_text("1 document · 7 passages")
    assert not (bot.settings.corpus_dir / NAME).exists()
    assert NAME not in {document.name for document in bot.documents()}

    # A document indexed by someone else (the corpus watcher, a command) shows up on its own.
    (bot.settings.corpus_dir / "dropped-in.txt").write_text("The ferry runs twice a day.")
    bot.ingest(progress=False)
    expect(panel).to_contain_text("dropped-in.txt", timeout=3 * REFRESH_SECONDS * 1000)
    assert not errors, errors
    page.close()
