"""The chat page's documents panel: what the assistant answers from and, when the operator
allows it, adding and removing documents.

Adding or removing a document changes what everyone using the page is answered from, so it is
off unless ``allow_uploads`` is set, and needs a login when the page can be reached from other
machines (``guard.exposure_warning``). Every handler checks this again when called, since a
client can call an event without the page. An upload is read by the corpus loader, with the
same checks as the corpus, before it lands in the corpus folder: a file the ingest would skip is
refused with the reason, and never indexed.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_client.utils import strip_invalid_filename_characters
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.assistant import Assistant, IndexedDocument
from assistant.config import Settings
from assistant.load import UnreadableFile, load_document, printable
from assistant.web.guard import BodyLimit, exposure_warning

logger = logging.getLogger(__name__)
SUFFIXES = (".txt", ".md", ".html", ".pdf")
REFRESH_SECONDS = 5.0  # how often an open page looks for documents the corpus watcher indexed
UPLOAD_FRAMING_BYTES = 64 * 1024  # multipart headers around an uploaded file
MAX_NAME_BYTES = 255  # the longest file name most file systems take
REFUSAL_SECONDS = 12  # a refusal stays up long enough to read what to do
UPLOAD_TEMP_PREFIX = ".upload-"  # hidden: the loader and the corpus watcher pass over it
GRADIO_NAME_BYTES = 200  # Gradio cuts an uploaded file's name to this
GRADIO_REMOVES = '< > : " | ? * ` $ ! { }'  # and drops these (and control characters) from it

DOCUMENTS_CSS = """
.docs-panel { font-size: 0.92em; }
.docs-totals { margin: 0 0 0.5em; font-weight: 600; }
.docs-list { list-style: none; margin: 0; padding: 0; }
.docs-item { padding: 0.35em 0; border-top: 1px solid var(--border-color-primary); }
.docs-name { display: block; overflow-wrap: anywhere; font-weight: 500; }
.docs-meta { display: block; color: var(--body-text-color-subdued); }
.docs-note { margin: 0.6em 0 0; color: var(--body-text-color-subdued); }
.docs-empty { color: var(--body-text-color-subdued); }
"""

# Gradio gives a handler whose parameter defaults to a Progress a tracker of its own per call;
# this one follows the ingest's tqdm bar onto the page.
FOLLOW_INGEST = gr.Progress(track_tqdm=True)
ServedAs = Callable[[], tuple[str | None, Any]]  # (host, login) the page is served with


class DocumentRefused(ValueError):
    """An upload or removal that was not done; the message says why, in one sentence."""


def editing_refusal(allow_uploads: bool, host: str | None, login: Any) -> str | None:
    """Why documents cannot be added or removed from the page, or None when they can."""
    if not allow_uploads:
        return (
            "Adding and removing documents is off; the operator can turn it on with "
            "ASSISTANT_ALLOW_UPLOADS=true."
        )
    if host is None:
        return "Adding and removing documents is possible only once the page is served."
    if exposure_warning(host, login):
        return (
            "Adding and removing documents needs a login when the page is served beyond this "
            "machine; the operator can set ASSISTANT_AUTH=user:password."
        )
    return None


def upload_limit(settings: Settings, host: str) -> int | None:
    """The largest request body the upload route takes: a document's cap when documents may
    be added on this host, else None (the page's general limit, so nobody may park large files
    in the server's upload folder)."""
    if editing_refusal(settings.allow_uploads, host, settings.auth) is not None:
        return None
    return settings.max_file_bytes


def plain_name(name: Any) -> str:
    """``name`` when it is a plain document name the corpus can take, else a refusal: no
    folders, no hidden (dot) name the loader would skip, nothing unprintable, a known type."""
    if not isinstance(name, str) or not name.strip():
        raise DocumentRefused("A document needs a file name, such as notes.txt.")
    name = unicodedata.normalize("NFC", name.strip())
    shown = repr(printable(name))
    if "/" in name or "\\" in name:
        raise DocumentRefused(f"{shown} is not a plain file name: give the name without folders.")
    if name.startswith("."):
        raise DocumentRefused(
            f"{shown} starts with a dot, which marks a hidden file the assistant never reads; "
            "rename it."
        )
    if not name.isprintable():
        raise DocumentRefused(f"{shown} has control characters in its name; rename it.")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise DocumentRefused(f"{shown} is a longer name than {MAX_NAME_BYTES} bytes; shorten it.")
    if Path(name).suffix.lower() not in SUFFIXES:
        raise DocumentRefused(f"{shown} cannot be added: only {_listed(SUFFIXES)} files can.")
    return name


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    if count < 1024**2:
        return f"{count / 1024:,.1f} KB"
    return f"{count / 1024**2:,.1f} MB"


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path``'s folder, links followed, is ``folder`` or under it."""
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path.parent)]) == root


class DocumentShelf:
    """Adds documents to the corpus and removes them, then brings the index in step.

    One change at a time in this process (a lock around the file's move and the ingest; the
    ingest's own lock keeps other processes in turn), so two tabs uploading the same name
    cannot both succeed and a removal never interleaves with an upload's indexing.
    """

    def __init__(self, bot: Assistant, served_as: ServedAs) -> None:
        self.bot = bot
        self.served_as = served_as
        self._lock = threading.Lock()

    @property
    def corpus(self) -> Path:
        return self.bot.settings.corpus_dir

    def refusal(self) -> str | None:
        return editing_refusal(self.bot.settings.allow_uploads, *self.served_as())

    def _check_allowed(self) -> None:
        if reason := self.refusal():
            raise DocumentRefused(reason)

    def add(self, uploaded: Path, name: str, replace: bool = False, progress: bool = False) -> str:
        """Put the file at ``uploaded`` in the corpus as ``name`` and index it; returns what
        was done. ``replace`` allows replacing a document of the same name."""
        self._check_allowed()
        name = plain_name(name)
        limit = self.bot.settings.max_file_bytes
        if (size := os.stat(uploaded).st_size) > limit:
            raise DocumentRefused(
                f"{name} is {_size(size)}, over the limit of {_size(limit)} per document."
            )
        target = self.corpus / name
        # plain_name already keeps the name in the folder; checked again, as what stands there
        # (a link, a folder) decides where a write would land
        if not _inside(self.corpus, target) or target.is_symlink() or target.is_dir():
            raise DocumentRefused(f"{name} cannot be written in the corpus folder; rename it.")
        with self._lock:
            existed = target.exists()
            if existed and not replace:
                raise DocumentRefused(_clash(name))
            staged = self.corpus / f"{UPLOAD_TEMP_PREFIX}{uuid.uuid4().hex}{target.suffix}"
            try:
                shutil.copyfile(uploaded, staged)
                try:
                    load_document(staged, name, max_file_bytes=limit)
                except UnreadableFile as reason:
                    raise DocumentRefused(f"{name} cannot be added: {reason}.") from None
                if replace:
                    os.replace(staged, target)
                else:
                    try:
                        _place_new(staged, target)
                    except FileExistsError:
                        raise DocumentRefused(_clash(name)) from None
            finally:
                staged.unlink(missing_ok=True)
            self._index(f"{name} is in the corpus folder", progress)
        listed = {document.name: document for document in self.bot.documents()}
        passages = listed[name].passages if name in listed else 0
        done = "Replaced" if existed else "Added"
        return f"{done} {name} ({passages} passage{'s' * (passages != 1)}): ask about it now."

    def remove(self, name: Any, progress: bool = False) -> str:
        """Take the listed document ``name`` out of the corpus folder and the index."""
        self._check_allowed()
        with self._lock:
            listed = {document.name: document for document in self.bot.documents()}
            document = listed.get(name) if isinstance(name, str) else None
            if document is None:
                raise DocumentRefused("Pick one of the listed documents to remove.")
            path = Path(document.source)
            if not _inside(self.corpus, path) or path.is_dir():
                raise DocumentRefused(f"{name} is not a file in the corpus folder.")
            if len(listed) == 1:
                raise DocumentRefused(
                    f"{name} is the only document; add another before removing it."
                )
            path.unlink(missing_ok=True)
            self._index(f"{name} left the corpus folder", progress)
        return f"Removed {name}."

    def _index(self, change: str, progress: bool) -> None:
        """Bring the index in step with the changed corpus, or say what state it is left in
        (the corpus watcher, or the next change, tries again)."""
        try:
            self.bot.ingest(progress=progress)
        except Exception as error:
            logger.exception("indexing after a change from the page failed")
            raise DocumentRefused(
                f"{change}, but the index could not be brought up to date ({error}); "
                "it is tried again at the next change."
            ) from error


def _place_new(staged: Path, target: Path) -> None:
    """Give ``staged`` the name ``target`` unless that name exists (``FileExistsError``).

    A hard link fails when the name exists, so another process writing the same name between
    a check and the write cannot be overwritten; a file system without hard links falls back
    to check-then-rename, which the shelf's lock keeps safe between this server's tabs."""
    try:
        os.link(staged, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(staged, target)


def _clash(name: str) -> str:
    return (
        f"The corpus already has a document named {name}; tick “Replace a document of the same "
        "name” to replace it, or rename the file."
    )


def documents_panel(documents: list[IndexedDocument], refusal: str | None) -> str:
    """The panel's HTML: each document's name, size, passages and indexing time, the totals,
    and why adding and removing is off when it is. Every name is escaped."""
    total_size = sum(document.size for document in documents)
    total_passages = sum(document.passages for document in documents)
    count = len(documents)
    items = []
    for document in documents:
        when = (
            document.indexed_at.strftime("%Y-%m-%d %H:%M UTC") if document.indexed_at else "earlier"
        )
        items.append(
            f'<li class="docs-item"><span class="docs-name">{html.escape(document.name)}</span>'
            f'<span class="docs-meta">{_size(document.size)} · {_passages(document.passages)}'
            f" · indexed {when}</span></li>"
        )
    listing = (
        f'<ul class="docs-list">{"".join(items)}</ul>'
        if items
        else '<p class="docs-empty">No documents are indexed.</p>'
    )
    note = f'<p class="docs-note">{html.escape(refusal)}</p>' if refusal else ""
    return (
        f'<div class="docs-panel"><p class="docs-totals">{count} document'
        f"{'s' * (count != 1)} · {_passages(total_passages)} · {_size(total_size)}</p>"
        f"{listing}{note}</div>"
    )


def _passages(count: int) -> str:
    return f"{count:,} passage{'s' * (count != 1)}"


def accordion_label(documents: list[IndexedDocument]) -> str:
    return f"Documents ({len(documents)})"


def upload_refusal(name: str) -> str | None:
    """Why an uploaded file's name (as the client sent it) is refused, or None when the corpus
    can take it and Gradio will keep it as it is.

    Gradio renames uploads without a word (``../x.txt`` becomes ``x.txt``, ``a/b.txt``
    ``b.txt``, a name is cut to 200 bytes), so a name is checked here, before Gradio sees it:
    the document is then added under the name the user gave it, or not at all."""
    try:
        plain_name(name)
    except DocumentRefused as refusal:
        return str(refusal)
    stored = strip_invalid_filename_characters(name)
    if stored != name:
        return (
            f"{printable(name)!r} would be stored as {printable(stored)!r}; rename it to at "
            f"most {GRADIO_NAME_BYTES} bytes, without spaces at its ends or any of "
            f"{GRADIO_REMOVES}."
        )
    return None


class _PartNames:
    """The file names of a multipart body's parts, found as the body streams past."""

    def __init__(self, boundary: bytes) -> None:
        self.found: list[str] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parser = MultipartParser(
            boundary,
            {
                "on_header_field": self._on_field,
                "on_header_value": self._on_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
            },
        )

    def feed(self, chunk: bytes) -> list[str]:
        """The names of the parts whose headers end in ``chunk``."""
        self.found = []
        self._parser.write(chunk)
        return self.found

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        self._headers = {}
        if b"filename" in options:  # read as Gradio reads it (route_utils._user_safe_decode)
            raw = options[b"filename"]
            try:
                self.found.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.found.append(raw.decode("latin-1"))


class UploadNamesChecked:
    """ASGI middleware refusing, with 400 and one sentence, an upload whose file name
    ``upload_refusal`` refuses, before Gradio writes any of it to its upload folder.

    The names are read from the multipart body as it arrives; a part is refused before the
    chunk holding its headers reaches Gradio (through the app's error handling, as
    ``BodyLimit`` does), so a refused file leaves nothing behind."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/gradio_api/upload"):
            await self.app(scope, receive, send)
            return
        kind, options = parse_options_header(Headers(scope=scope).get("content-type"))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            refusal = "An upload must be sent as multipart/form-data with a boundary."
            await JSONResponse({"detail": refusal}, status_code=400)(scope, receive, send)
            return
        names = _PartNames(options[b"boundary"])

        async def checked() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                for name in names.feed(message.get("body", b"")):
                    if refusal := upload_refusal(name):
                        raise HTTPException(400, refusal)
            return message

        await self.app(scope, checked, send)


class UploadRouteLimit:
    """ASGI middleware: the upload route takes bodies as large as a document the page accepts
    (plus multipart framing); every other request keeps the page's ``BodyLimit``."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int) -> None:
        self.default = BodyLimit(app, max_bytes)
        self.upload = BodyLimit(app, upload_bytes + UPLOAD_FRAMING_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_upload = scope["type"] == "http" and scope["path"].endswith("/gradio_api/upload")
        await (self.upload if is_upload else self.default)(scope, receive, send)


def documents_section(bot: Assistant, demo: gr.Blocks) -> None:
    """The panel and, when the operator allows uploads, its controls, built in the current
    layout. Whether the controls may be used is decided when the page loads and again on every
    call, from how the page is served (``demo.server_name`` and ``demo.auth``, set by launch)."""
    shelf = DocumentShelf(bot, lambda: (demo.server_name, demo.auth))
    settings = bot.settings
    documents = bot.documents()
    with gr.Accordion(accordion_label(documents), open=False, elem_id="documents") as accordion:
        panel = gr.HTML(documents_panel(documents, None), elem_id="docs-panel", js_on_load=None)
        refresh = gr.Button("Refresh", size="sm", elem_id="docs-refresh")
        if settings.allow_uploads:
            controls = _controls(settings.max_file_bytes)
    timer = gr.Timer(REFRESH_SECONDS)
    shown = gr.State("")  # the panel as this tab last showed it
    outputs = [panel, accordion, *([controls.pick] if settings.allow_uploads else []), shown]

    def view() -> tuple:
        """Updates of ``outputs``: the panel, the accordion's count, the documents to pick
        from, and the panel's HTML for ``shown``."""
        listed = bot.documents()
        panel_html = documents_panel(listed, shelf.refusal())
        picking = [gr.Dropdown(choices=[d.name for d in listed], value=None)]
        return (
            panel_html,
            gr.Accordion(accordion_label(listed)),
            *(picking if settings.allow_uploads else []),
            panel_html,
        )

    def refreshed(last: str) -> tuple:
        """The view again, or nothing sent when it has not changed (a tick every few seconds
        must not repaint the panel, or reset the document picked for removal)."""
        updates = view()
        return updates if updates[0] != last else tuple(gr.skip() for _ in updates)

    private = {"api_visibility": "private"}  # like the page's other events: no API
    quiet = {"show_progress": "hidden", "concurrency_limit": None, **private}
    gr.on([refresh.click, timer.tick], refreshed, shown, outputs, **quiet)
    if not settings.allow_uploads:
        demo.load(refreshed, shown, outputs, **quiet)
        return

    def on_load(last: str) -> tuple:
        return *refreshed(last), gr.Column(visible=shelf.refusal() is None)

    demo.load(on_load, shown, [*outputs, controls.column], **quiet)
    changing = {
        "show_progress": "full",
        "show_progress_on": [panel],
        "concurrency_limit": 1,
        "concurrency_id": "documents",
        **private,
    }

    def add(path: str | None, replacing: bool, progress=FOLLOW_INGEST) -> tuple:
        """Added or refused, the drop zone is emptied for the next file; "replace" is kept
        ticked after a refusal (the user may tick it and drop the file again)."""
        if not path:
            return *(gr.skip() for _ in outputs), gr.skip(), gr.skip()
        progress(0, desc="Reading the document")
        try:
            done = _attempt(shelf.add, Path(path), Path(path).name, bool(replacing), True)
        finally:  # Gradio's copy of the upload: the corpus holds the document now, or nothing
            Path(path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # and its folder, named for the file's hash
                Path(path).parent.rmdir()
        return *view(), None, False if done else gr.skip()

    controls.upload.upload(
        add,
        [controls.upload, controls.replace],
        [*outputs, controls.upload, controls.replace],
        **changing,
    )

    def ask_to_confirm(name: str | None) -> tuple:
        if not name:
            raise gr.Error("Pick one of the listed documents to remove.", print_exception=False)
        question = f"<p>Remove <b>{html.escape(name)}</b> from the corpus and the index?</p>"
        return question, gr.Column(visible=True), name

    confirming = [controls.question, controls.confirming, controls.removing]
    controls.remove.click(ask_to_confirm, controls.pick, confirming, **private)
    controls.cancel.click(lambda: (gr.Column(visible=False), None), None, confirming[1:], **private)

    def take_out(name: str | None, progress=FOLLOW_INGEST) -> tuple:
        progress(0, desc="Removing the document")
        _attempt(shelf.remove, name, True)
        return *view(), gr.Column(visible=False), None

    controls.confirm.click(take_out, controls.removing, [*outputs, *confirming[1:]], **changing)


@dataclass
class _Controls:
    column: gr.Column
    upload: gr.File
    replace: gr.Checkbox
    pick: gr.Dropdown
    remove: gr.Button
    confirming: gr.Column
    question: gr.HTML
    confirm: gr.Button
    cancel: gr.Button
    removing: gr.State


def _controls(max_file_bytes: int) -> _Controls:
    """Upload, replace and remove, hidden until the page knows they may be used; removal asks
    to be confirmed (a second click naming the document)."""
    with gr.Column(visible=False, elem_id="docs-controls") as column:
        upload = gr.File(
            label=f"Add a document ({_listed(SUFFIXES)}, up to {_size(max_file_bytes)})",
            file_types=list(SUFFIXES),
            file_count="single",
            type="filepath",
            elem_id="docs-upload",
            min_width=0,
            height=120,
        )
        replace = gr.Checkbox(False, label="Replace a document of the same name")
        pick = gr.Dropdown([], value=None, label="Remove a document", elem_id="docs-pick")
        remove = gr.Button("Remove…", size="sm", variant="stop", elem_id="docs-remove")
        with gr.Column(visible=False) as confirming:
            question = gr.HTML("", js_on_load=None)
            confirm = gr.Button("Yes, remove it", size="sm", variant="stop", elem_id="docs-confirm")
            cancel = gr.Button("Cancel", size="sm")
    return _Controls(
        column, upload, replace, pick, remove, confirming, question, confirm, cancel, gr.State(None)
    )


def _attempt(change: Callable[..., str], *args: Any) -> bool:
    """Make a change of the corpus and tell the user what was done, or why it was not: a
    message, not an error, so the panel is still brought up to date and the drop zone emptied.
    Gradio shows messages as HTML, so a file's name is escaped."""
    try:
        done = change(*args)
    except DocumentRefused as refusal:
        gr.Warning(html.escape(str(refusal)), duration=REFUSAL_SECONDS)
        return False
    except OSError as error:  # a full disk, a permission: the user's change was not made
        reason = error.strerror or str(error)
        gr.Warning(html.escape(f"The corpus folder could not be changed: {reason}."))
        return False
    gr.Info(html.escape(done), duration=4)
    return True
