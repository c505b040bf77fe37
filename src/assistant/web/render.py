"""HTML for the chat page: messages and the sources panel.

Every piece of text from a question, an answer or a document goes through ``html.escape``
before it meets markup, so nothing a user types or a document says is ever run by the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from assistant.answer.types import MARKER
from assistant.load import UnreadableFile

CONTEXT_CHARS = 300
SCORE_TITLE = "how strongly the answerer judged this sentence to say what cites it"
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _lines(escaped: str) -> str:
    return escaped.replace("\n", "<br>")


def user_message(question: str) -> str:
    return _lines(_escape(question))


def answer_message(answer: Mapping[str, Any], *, final: bool = True) -> str:
    """An answer's text, escaped, with each ``[n]`` marker shown as a citation chip."""
    text = answer.get("text", "")
    if answer.get("refused"):
        hint = (
            '<div class="refusal-hint">The closest passages are shown with the sources.</div>'
            if answer.get("closest")
            else ""
        )
        return (
            '<div class="refusal"><span class="refusal-tag">Not found</span>'
            f"<div>{_lines(_escape(text))}</div>{hint}</div>"
        )
    if not text:
        return '<span class="pending">Searching the documents…</span>'
    cited = {c["n"] for c in answer.get("citations", [])}

    def chip(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if final and n not in cited:
            return match.group(0)
        return f'<span class="cite" title="Show source {n}">[{n}]</span>'

    return _lines(MARKER.sub(chip, _escape(text)))


def _snap(text: str, start: int, end: int, context: int) -> tuple[int, int]:
    """Bounds about ``context`` characters either side of a passage, on word boundaries."""
    left = max(0, start - context)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    right = min(len(text), end + context)
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    return left, right


def _tidy(text: str) -> str:
    return _BLANK_LINES.sub("\n\n", text)


def _card(
    source: str,
    before: str,
    marked: str,
    after: str,
    *,
    score: Any,
    score_label: str,
    score_title: str,
    n: int | None = None,
    extra_class: str = "",
) -> str:
    """A passage card: its number (a citation's), the document's name, a score, and the text
    with ``marked`` highlighted between ``before`` and ``after`` (all escaped here)."""
    number = f'<span class="src-n">[{int(n)}]</span>' if n is not None else ""
    data_n = f' data-n="{int(n)}"' if n is not None else ""  # what a [n] chip scrolls to
    score_html = (
        f'<span class="src-score" title="{score_title}">{score_label} {float(score):.2f}</span>'
        if isinstance(score, int | float)
        else ""
    )
    return (
        f'<div class="src-card{extra_class}"{data_n}>'
        f'<div class="src-head">{number}'
        f'<span class="src-doc" title="{_escape(source)}">{_escape(PurePath(source).name)}</span>'
        f"{score_html}</div>"
        f'<div class="src-ctx">{_escape(before)}<mark>{_escape(marked)}</mark>'
        f"{_escape(after)}</div></div>"
    )


def source_card(citation: Mapping[str, Any], document: str | None, context: int) -> str:
    """One citation: its number, the document's name, the quote marked in its context."""
    start, end, quote = citation["start"], citation["end"], citation["quote"]
    if document is not None and document[start:end] == quote:
        left, right = _snap(document, start, end, context)
        before = ("…" if left > 0 else "") + _tidy(document[left:start]).lstrip()
        after = _tidy(document[end:right]).rstrip() + ("…" if right < len(document) else "")
    else:  # the document changed or is gone: show the quote alone rather than a wrong context
        before = after = ""
    return _card(
        str(citation["source"]),
        before,
        quote,
        after,
        score=citation.get("score"),
        score_label="score",
        score_title=SCORE_TITLE,
        n=citation["n"],
    )


def closest_card(passage: Mapping[str, Any]) -> str:
    """A passage that came close to a refused question, its best sentence marked: the reader
    sees what the documents do say nearby and can rephrase, and nothing claims it answers."""
    text, start = passage["text"], passage["start"]
    best_start = passage["best_start"] - start
    best_end = passage["best_end"] - start
    if not 0 <= best_start <= best_end <= len(text):  # offsets that do not fit: no mark
        best_start = best_end = 0
    return _card(
        str(passage["source"]),
        _tidy(text[:best_start]).lstrip(),
        text[best_start:best_end],
        _tidy(text[best_end:]).rstrip(),
        score=passage.get("score"),
        score_label="closeness",
        score_title="how close it came (not an answer)",
        extra_class=" closest-card",
    )


CLOSEST_TITLES = {  # a refusal's passages and a hedge's others: neither confirmed to answer
    True: "Closest passages, not confirmed to answer this",
    False: "Other close passages, not confirmed to answer this",
}


def closest_section(passages: list[Mapping[str, Any]], refused: bool = True) -> str:
    """The closest passages of a refusal, or a hedged answer's other close passages, under a
    heading that says none is confirmed to answer."""
    if not passages:
        return ""
    cards = "".join(closest_card(passage) for passage in passages)
    title = CLOSEST_TITLES[refused]
    return f'<div class="closest"><div class="closest-title">{title}</div>{cards}</div>'


def sources_panel(
    question: str | None,
    answer: Mapping[str, Any] | None,
    source_text: Callable[[str], str],
    *,
    context: int = CONTEXT_CHARS,
    pending: bool = False,
) -> str:
    """The sources panel for one answer (or the empty state before any question)."""
    state = "empty" if question is None or answer is None else "pending" if pending else "done"
    head = f'<div class="sources" data-state="{state}"><div class="sources-title">Sources</div>'
    if question is None or answer is None:
        body = (
            '<p class="sources-note">Ask a question: each <span class="cite">[n]</span> in the '
            "answer is shown here with the exact words it rests on, "
            "<mark>highlighted</mark> in the surrounding text of its document.</p>"
        )
        return head + body + "</div>"
    asked = f'<p class="sources-q">For: <q>{_escape(question)}</q></p>'
    if pending:
        return head + asked + '<p class="sources-note">Looking for passages…</p></div>'
    if answer.get("refused") or not answer.get("citations"):
        note = (
            "No passage was found that answers this question, so nothing is cited."
            if answer.get("refused")
            else "This answer cites no passage."
        )
        closest = closest_section(answer.get("closest") or []) if answer.get("refused") else ""
        return head + asked + f'<p class="sources-note">{note}</p>{closest}</div>'
    documents: dict[str, str | None] = {}
    cards = []
    for citation in answer["citations"]:
        source = str(citation["source"])
        if source not in documents:
            try:
                documents[source] = source_text(source)
            except (OSError, KeyError, ValueError, UnreadableFile):
                documents[source] = None
        cards.append(source_card(citation, documents[source], context))
    nearby = closest_section(answer.get("closest") or [], refused=False)
    return head + asked + "".join(cards) + nearby + "</div>"


CSS = """
.app-header h1 { margin-bottom: 0.1em; }
.app-header p { margin-top: 0; color: var(--body-text-color-subdued); }
.cite { display: inline-block; padding: 0 0.35em; margin: 0 0.1em; border-radius: 0.5em;
  background: #fde68a; color: #713f12; font-size: 0.85em; font-weight: 600; cursor: pointer;
  line-height: 1.4; }
.cite:hover { background: #facc15; }
.refusal { border-left: 4px solid #94a3b8; padding: 0.2em 0 0.2em 0.7em; color: #334155; }
.refusal-tag { display: inline-block; font-size: 0.75em; font-weight: 700; letter-spacing: 0.03em;
  text-transform: uppercase; color: #475569; background: #e2e8f0; border-radius: 0.4em;
  padding: 0.05em 0.5em; margin-bottom: 0.3em; }
.pending { color: var(--body-text-color-subdued); font-style: italic; }
.sources { display: flex; flex-direction: column; gap: 0.7em; }
.sources-title { font-weight: 700; font-size: 1.1em; }
.sources-q { margin: 0; color: var(--body-text-color-subdued); }
.sources-note { margin: 0; color: var(--body-text-color-subdued); }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 0.6em;
  padding: 0.6em 0.8em; background: var(--background-fill-secondary);
  transition: box-shadow 0.3s; }
.src-card.flash { box-shadow: 0 0 0 3px #facc15; }
.src-head { display: flex; gap: 0.5em; align-items: baseline; margin-bottom: 0.35em; }
.src-n { font-weight: 700; color: #854d0e; }
.src-doc { font-weight: 600; overflow-wrap: anywhere; }
.src-score { margin-left: auto; font-size: 0.8em; color: var(--body-text-color-subdued); }
.src-ctx { white-space: pre-wrap; line-height: 1.5; font-size: 0.93em; }
.src-ctx mark { background: #fde68a; color: inherit; padding: 0.05em 0.1em; border-radius: 0.2em; }
.closest { display: flex; flex-direction: column; gap: 0.6em; }
.closest-title { font-weight: 700; color: #475569; }
.closest-card { border-style: dashed; }
.closest-card .src-ctx mark { background: #e2e8f0; }
.refusal-hint { font-size: 0.9em; color: var(--body-text-color-subdued); margin-top: 0.3em; }
.examples-label { font-size: 0.9em; color: var(--body-text-color-subdued); }
.examples-row { align-items: center; }
.examples-row button, .examples-row .examples-label-block {
  flex: 0 1 auto !important; min-width: 0 !important; width: auto !important; }
@media (max-width: 640px) {
  .app-header h1 { font-size: 1.6em; }
  #chat { height: min(60vh, 420px) !important; }
  .src-ctx { font-size: 0.9em; }
}
"""

# Clicking a [n] chip scrolls the sources panel to card n and flashes it; the click also selects
# the message, which may re-render the panel (an older turn's sources), so flash again on change.
JS = r"""
() => {
  const flash = (n) => {
    const card = document.querySelector(`#sources .src-card[data-n="${n}"]`);
    if (!card || card.classList.contains("flash")) return;
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.classList.add("flash");
    setTimeout(() => card.classList.remove("flash"), 1500);
  };
  document.addEventListener("click", (event) => {
    const chip = event.target.closest ? event.target.closest("#chat .cite") : null;
    const match = chip ? chip.textContent.match(/\d+/) : null;
    const panel = document.querySelector("#sources");
    if (!match || !panel) return;
    const observer = new MutationObserver(() => flash(match[0]));
    observer.observe(panel, { childList: true, subtree: true, characterData: true });
    setTimeout(() => observer.disconnect(), 3000);
    flash(match[0]);
  });
}
"""
