"""The documents panel: listing what is indexed, and adding and removing documents from the page.

A real ``Assistant`` over its own copy of the corpus (uploads allowed), the session's model, a
real Chroma index and, where the page is needed, a real Gradio server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant import Assistant, Settings
from assistant.assistant import IndexedDocument
from assistant.index import Generation
from assistant.web.documents import (
    DocumentRefused,
    DocumentShelf,
    documents_panel,
    editing_refusal,
    upload_limit,
)
from conftest import (
    CORPUS_FILE,
    LIGHTHOUSE,
    LIGHTHOUSE_FACT,
    LIGHTHOUSE_QUESTION,
    assistant_in,
    page_server,
    with_corpus_copy,
)

ON_LOOPBACK = ("127.0.0.1", None)
CAP_MB = 0.25  # a small per-file cap, so an oversized upload stays small on disk


@pytest.fixture(scope="module")
def library(tmp_path_factory, embeddings) -> Assistant:
    """An assistant of its own over a copy of the corpus, with uploads allowed."""
    root = with_corpus_copy(tmp_path_factory.mktemp("library"))
    return assistant_in(root, embeddings, allow_uploads=True, max_file_mb=CAP_MB)


@pytest.fixture
def shelf(library) -> Iterator[DocumentShelf]:
    """The shelf on loopback; documents a test leaves in the corpus are taken out after it."""
    shelf = DocumentShelf(library, lambda: ON_LOOPBACK)
    yield shelf
    extra = [path for path in corpus_listing(library) if path != CORPUS_FILE.name]
    for name in extra:
        (library.settings.corpus_dir / name).unlink()
    if extra:
        library.ingest(progress=False)


def corpus_listing(bot: Assistant) -> list[str]:
    """Every entry of the corpus folder, hidden ones too (a staged upload must not stay)."""
    return sorted(path.name for path in bot.settings.corpus_dir.iterdir())


def upload_file(tmp_path: Path, content: bytes | str, name: str = "upload.bin") -> Path:
    """A file as Gradio hands an upload over: somewhere outside the corpus."""
    folder = tmp_path / f"upload-{time.monotonic_ns()}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("yes", True), ("YES", True), (" True ", True),
     ("false", False), ("0", False), ("no", False), ("No", False)],
)  # fmt: skip
def test_allow_uploads_reads_true_and_false_from_the_environment(raw, expected):
    settings = Settings.load(environ={"ASSISTANT_ALLOW_UPLOADS": raw})
    assert settings.allow_uploads is expected


@pytest.mark.parametrize("raw", ["maybe", "on", "2", "tru"])
def test_allow_uploads_refuses_anything_else_in_one_sentence(raw):
    with pytest.raises(ValueError, match=r"^ASSISTANT_ALLOW_UPLOADS must be true or false"):
        Settings.load(environ={"ASSISTANT_ALLOW_UPLOADS": raw})


def test_uploads_are_off_unless_the_operator_allows_them():
    assert Settings.load(environ={}).allow_uploads is False


# ---------------------------------------------------------------- who may change documents


@pytest.mark.parametrize(
    ("allowed", "host", "login", "reason"),
    [
        (False, "127.0.0.1", None, "ASSISTANT_ALLOW_UPLOADS=true"),
        (False, "0.0.0.0", "login", "ASSISTANT_ALLOW_UPLOADS=true"),
        (True, "0.0.0.0", None, "needs a login"),
        (True, "192.168.1.20", None, "needs a login"),
        (True, "assistant.example.org", None, "needs a login"),
        (True, "127.0.0.1", None, None),
        (True, "::1", None, None),
        (True, "localhost", None, None),
        (True, "0.0.0.0", "login", None),
        (True, None, None, "once the page is served"),
    ],
)
def test_changing_documents_needs_the_setting_and_off_loopback_a_login(
    allowed, host, login, reason
):
    refusal = editing_refusal(allowed, host, login)
    if reason is None:
        assert refusal is None
    else:
        assert reason in refusal and refusal.count(". ") == 0  # one sentence


@pytest.mark.parametrize(
    ("allowed", "host", "login", "limit"),
    [
        (True, "127.0.0.1", None, int(CAP_MB * 2**20)),
        (True, "0.0.0.0", "user:pass", int(CAP_MB * 2**20)),
        (True, "0.0.0.0", None, None),
        (False, "127.0.0.1", None, None),
    ],
)
def test_large_uploads_reach_the_server_only_where_documents_may_be_added(
    allowed, host, login, limit
):
    settings = Settings.load(environ={}, allow_uploads=allowed, auth=login, max_file_mb=CAP_MB)
    assert upload_limit(settings, host) == limit


def test_the_shelf_refuses_when_exposed_without_a_login_or_when_uploads_are_off(
    library, bot, tmp_path
):
    source = upload_file(tmp_path, LIGHTHOUSE)
    exposed = DocumentShelf(library, lambda: ("0.0.0.0", None))
    with pytest.raises(DocumentRefused, match="needs a login"):
        exposed.add(source, "lighthouse.md")
    with pytest.raises(DocumentRefused, match="needs a login"):
        exposed.remove(CORPUS_FILE.name)
    switched_off = DocumentShelf(bot, lambda: ON_LOOPBACK)  # the session's bot: the default
    with pytest.raises(DocumentRefused, match="ASSISTANT_ALLOW_UPLOADS"):
        switched_off.add(source, "lighthouse.md")
    assert not (library.settings.corpus_dir / "lighthouse.md").exists()
    assert not (bot.settings.corpus_dir / "lighthouse.md").exists()


# ---------------------------------------------------------------- the listing


def test_documents_lists_names_sizes_and_passages_from_the_index(library):
    documents = library.documents()
    assert [document.name for document in documents] == [CORPUS_FILE.name]
    listed = documents[0]
    path = library.settings.corpus_dir / CORPUS_FILE.name
    assert listed.size == path.stat().st_size
    assert listed.source == str(path)
    entry = library.index.record().documents[str(path)]
    assert (listed.passages, listed.sentences) == (entry.chunks, entry.sentences) != (0, 0)
    assert listed.indexed_at is not None and time.time() - listed.indexed_at.timestamp() < 600
    panel = documents_panel(documents, None)
    assert CORPUS_FILE.name in panel
    assert f"1 document · {listed.passages} passages · 4.3 KB" in panel
    assert "indexed 20" in panel


def test_an_index_recorded_before_indexing_times_reads_as_earlier():
    """A generation written before entries had a time (six fields) still opens."""
    older = json.dumps({"documents": {"corpus/a.txt": ["v1", 120, 7, 2, 5, "base"]}})
    entry = Generation.from_json("g1", older).documents["corpus/a.txt"]
    assert (entry.chunks, entry.segment, entry.indexed_at) == (2, "base", 0.0)


def test_a_touched_file_keeps_its_indexing_time_and_an_edited_one_gets_a_new(
    shelf, library, tmp_path
):
    shelf.add(upload_file(tmp_path, "The old quay was paved in 1932."), "quay.txt")
    path = library.settings.corpus_dir / "quay.txt"
    first = {d.name: d for d in library.documents()}["quay.txt"].indexed_at
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    library.ingest(progress=False)
    assert {d.name: d for d in library.documents()}["quay.txt"].indexed_at == first
    path.write_text("The old quay was paved in 1932 and widened in 1960.", encoding="utf-8")
    library.ingest(progress=False)
    assert {d.name: d for d in library.documents()}["quay.txt"].indexed_at > first


def test_the_panel_escapes_names_and_says_why_changes_are_off():
    hostile = IndexedDocument('<img src=x onerror="alert(1)">.txt', "corpus/x.txt", 10, 1, 1, None)
    panel = documents_panel([hostile], "Adding and removing documents is off.")
    assert "<img" not in panel and "&lt;img" in panel
    assert "indexed earlier" in panel
    assert "Adding and removing documents is off." in panel


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "content", "refusal"),
    [
        ("notes.docx", "Some notes.", r"only \.txt, \.md, \.html and \.pdf files"),
        ("notes", "Some notes.", r"only \.txt, \.md, \.html and \.pdf files"),
        ("big.txt", "word " * 60_000, r"over the limit of 256\.0 KB per document"),
        ("binary.txt", b"\x00\x01\x02\x03" * 100, "looks binary"),
        ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not valid UTF-8"),
        ("empty.md", "   \n", "has no text"),
        ("broken.pdf", b"%PDF-1.7\nnot really a pdf\n", "broken PDF"),
        ("../escape.txt", "Out of the corpus.", "not a plain file name"),
        ("sub/escape.txt", "Into a folder.", "not a plain file name"),
        ("..\\escape.txt", "Out of the corpus.", "not a plain file name"),
        (".hidden.txt", "Hidden.", "starts with a dot"),
        ("..", "Up.", "starts with a dot"),
        ("bell\x07.txt", "A control character.", "has control characters"),
        ("x" * 252 + ".txt", "A long name.", "longer name than 255 bytes"),
        ("", "No name.", "needs a file name"),
        (CORPUS_FILE.name, "A clash.", "already has a document named"),
    ],
)
def test_a_bad_upload_is_refused_in_one_sentence_and_never_lands(
    shelf, library, tmp_path, name, content, refusal
):
    before, indexed = corpus_listing(library), library.documents()
    with pytest.raises(DocumentRefused, match=refusal) as refused:
        shelf.add(upload_file(tmp_path, content), name)
    message = str(refused.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    assert corpus_listing(library) == before  # nothing written, no staged copy left
    assert library.documents() == indexed
    assert not (library.settings.corpus_dir.parent / "escape.txt").exists()
    assert (library.settings.corpus_dir / CORPUS_FILE.name).read_bytes() == (
        CORPUS_FILE.read_bytes()
    )


@pytest.mark.parametrize("name", ["not-listed.txt", "../corpus/" + CORPUS_FILE.name, None, 3])
def test_removing_anything_but_a_listed_document_is_refused(shelf, library, name):
    with pytest.raises(DocumentRefused, match="Pick one of the listed documents"):
        shelf.remove(name)
    assert corpus_listing(library) == [CORPUS_FILE.name]


def test_the_last_document_is_not_removed(shelf, library):
    with pytest.raises(DocumentRefused, match="only document"):
        shelf.remove(CORPUS_FILE.name)
    assert (library.settings.corpus_dir / CORPUS_FILE.name).exists()


# ---------------------------------------------------------------- upload, ask, remove


def test_an_upload_is_indexed_answered_with_exact_citations_and_removed(shelf, library, tmp_path):
    done = shelf.add(upload_file(tmp_path, LIGHTHOUSE), "lighthouse.md")
    assert done.startswith("Added lighthouse.md (")
    target = library.settings.corpus_dir / "lighthouse.md"
    assert target.read_text(encoding="utf-8") == LIGHTHOUSE
    listed = {document.name: document for document in library.documents()}
    assert listed["lighthouse.md"].size == len(LIGHTHOUSE.encode())
    assert listed["lighthouse.md"].passages >= 1

    answer = library.ask(LIGHTHOUSE_QUESTION)
    assert not answer.refused, answer.text
    cited = [c for c in answer.citations if c.source == str(target)]
    assert cited and any(LIGHTHOUSE_FACT in c.quote for c in cited)
    for citation in answer.citations:
        text = library.source_text(citation.source)
        assert citation.quote == text[citation.start : citation.end]

    assert shelf.remove("lighthouse.md") == "Removed lighthouse.md."
    assert not target.exists()
    assert "lighthouse.md" not in {document.name for document in library.documents()}
    after = library.ask(LIGHTHOUSE_QUESTION)
    assert all(c.source != str(target) for c in after.citations)
    assert after.refused or "Northern Lights" not in after.text


def test_an_existing_name_is_replaced_only_when_asked_and_says_so(shelf, library, tmp_path):
    shelf.add(upload_file(tmp_path, "The first version says the ferry leaves at noon."), "f.txt")
    second = upload_file(tmp_path, "The second version says the ferry leaves at dawn.")
    with pytest.raises(DocumentRefused, match=r"already has a document named f\.txt"):
        shelf.add(second, "f.txt")
    assert "noon" in (library.settings.corpus_dir / "f.txt").read_text()
    assert shelf.add(second, "f.txt", replace=True).startswith("Replaced f.txt")
    source = str(library.settings.corpus_dir / "f.txt")
    assert "dawn" in library.source_text(source) and "noon" not in library.source_text(source)


def test_on_a_file_system_without_hard_links_a_name_is_still_never_overwritten(
    shelf, library, tmp_path, monkeypatch
):
    def no_hard_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    assert shelf.add(upload_file(tmp_path, "Gulls nest on the old quay."), "gulls.txt").startswith(
        "Added gulls.txt"
    )
    with pytest.raises(DocumentRefused, match="already has a document named"):
        shelf.add(upload_file(tmp_path, "Something else."), "gulls.txt")
    assert (library.settings.corpus_dir / "gulls.txt").read_text() == "Gulls nest on the old quay."
    assert corpus_listing(library) == sorted([CORPUS_FILE.name, "gulls.txt"])


def test_changes_from_two_tabs_at_once_leave_a_sound_index(shelf, library, tmp_path):
    """Four uploads at once, two of them under one name: one of those wins, the other is told
    the name is taken; every upload is indexed, the index checks out, nothing staged stays."""
    uploads = [
        ("north.txt", "The north pier was rebuilt in 1990 after a storm."),
        ("south.txt", "The south pier holds the ferry office and a small cafe."),
        ("same.txt", "One tab says the harbour opens at six."),
        ("same.txt", "Another tab says the harbour opens at seven."),
    ]
    files = [(upload_file(tmp_path, text), name) for name, text in uploads]
    results: list[str] = []
    start = threading.Barrier(len(files))

    def upload(path: Path, name: str) -> None:
        start.wait()
        try:
            results.append(shelf.add(path, name))
        except DocumentRefused as refusal:
            results.append(f"refused: {refusal}")

    threads = [threading.Thread(target=upload, args=pair) for pair in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [result for result in results if result.startswith("refused")]
    assert len(refused) == 1 and "already has a document named same.txt" in refused[0]
    names = {document.name for document in library.documents()}
    assert names == {CORPUS_FILE.name, "north.txt", "south.txt", "same.txt"}
    library.index.verify()
    assert corpus_listing(library) == sorted(names)
    kept = library.source_text(str(library.settings.corpus_dir / "same.txt"))
    assert kept == (library.settings.corpus_dir / "same.txt").read_text()


# ---------------------------------------------------------------- the page


def component_ids(url: str) -> set[str]:
    config = httpx.get(url + "config").json()
    return {c["props"].get("elem_id") for c in config["components"]} - {None}


def test_the_page_lists_documents_without_upload_controls_by_default(bot):
    with page_server(bot) as url:
        ids = component_ids(url)
        assert {"documents", "docs-panel"} <= ids
        assert not {"docs-upload", "docs-remove", "docs-confirm"} & ids
        endpoints = httpx.get(url + "gradio_api/info").json()
        assert list(endpoints["named_endpoints"]) == ["/ask"]


def test_the_upload_route_takes_a_document_up_to_the_cap_only_when_uploads_are_on(library):
    body = b"x" * 1_500_000  # over the page's 1 MB request limit, under the cap below
    for limit, status in ((None, 413), (2 * 2**20, 200)):
        with page_server(library, max_upload_bytes=limit) as url:
            response = httpx.post(
                url + "gradio_api/upload", files={"files": ("big.txt", body, "text/plain")}
            )
            assert response.status_code == status, response.text
