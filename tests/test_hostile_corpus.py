"""Hostile or odd corpus entries: each is skipped with a warning naming it, or read correctly,
and never stops the files beside it from loading (nor hangs, nor fills memory)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.load import SourceDocument, load_corpus
from conftest import CORPUS_FILE, run_cli

GOOD_TEXT = "The trial runs at the Third Affiliated Hospital."
ODD_TEXT = "Café trial notes.\nSecond line."
SMALL_LIMIT = 1000


def finish_within(seconds: float, work: Callable[[], object]) -> object:
    """``work()``'s result, or a test failure when it has not finished in ``seconds``.

    A daemon thread, so a regression that blocks forever (a FIFO opened for reading) fails
    the test instead of hanging the suite."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the test thread, which re-raises it
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"did not finish within {seconds} s (blocked on a corpus entry?)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def write_non_utf8_name(corpus: Path, outside: Path) -> None:
    with open(os.fsencode(corpus) + b"/bad_\xff.txt", "wb") as stream:
        stream.write(b"A file whose name is not UTF-8.")


def write_unreadable(corpus: Path, outside: Path) -> None:
    path = corpus / "locked.txt"
    path.write_text("Nobody may read this.", encoding="utf-8")
    path.chmod(0)


def link_outside_folder(corpus: Path, outside: Path) -> None:
    (outside / "secret.txt").write_text("A secret outside the corpus.", encoding="utf-8")
    (corpus / "outside_link").symlink_to(outside, target_is_directory=True)


def link_loop(corpus: Path, outside: Path) -> None:
    (corpus / "sub").mkdir()
    (corpus / "sub" / "back_up").symlink_to(corpus, target_is_directory=True)


def write_broken_pdf(corpus: Path, outside: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF at all\n")


def write_in_git(corpus: Path, outside: Path) -> None:
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.txt").write_text("Commit notes, not a document.", "utf-8")


@dataclass(frozen=True)
class Entry:
    """One odd corpus entry: how to make it, and what the loader must do with it."""

    id: str
    make: Callable[[Path, Path], None]
    named: str  # how the log names the entry (a non-UTF-8 name appears escaped)
    reason: tuple[str, ...] = ()  # words the warning must hold besides the name
    text: str | None = None  # the text it is read as; None when it must be skipped
    hidden: bool = False  # skipped with a debug line rather than a warning
    limit: int | None = None  # a per-file limit to load with
    needs_non_root: bool = False


ENTRIES = [
    Entry("non-utf8-name", write_non_utf8_name, r"bad_\xff.txt", ("not valid UTF-8",)),
    Entry("fifo", lambda corpus, _: os.mkfifo(corpus / "pipe.txt"), "pipe.txt", ("FIFO",)),
    Entry(
        "link-to-dev-zero",
        lambda corpus, _: (corpus / "zero.txt").symlink_to("/dev/zero"),
        "zero.txt",
        ("outside the corpus",),
    ),
    Entry(
        "link-to-etc-passwd",
        lambda corpus, _: (corpus / "passwd.txt").symlink_to("/etc/passwd"),
        "passwd.txt",
        ("outside the corpus", "/etc/passwd"),
    ),
    Entry("link-to-outside-folder", link_outside_folder, "outside_link", ("outside the corpus",)),
    Entry("link-loop", link_loop, "back_up", ("loop",)),
    Entry(
        "self-link",
        lambda corpus, _: (corpus / "self.txt").symlink_to(corpus / "self.txt"),
        "self.txt",
        ("loop",),
    ),
    Entry(
        "over-the-size-limit",
        lambda corpus, _: (corpus / "big.txt").write_text("word " * 400, encoding="utf-8"),
        "big.txt",
        ("2,000 bytes", "1,000 bytes", "ASSISTANT_MAX_FILE_MB"),
        limit=SMALL_LIMIT,
    ),
    Entry(
        "utf16-le-bom",
        lambda corpus, _: (corpus / "le.txt").write_bytes(
            b"\xff\xfe" + ODD_TEXT.replace("\n", "\r\n").encode("utf-16-le")
        ),
        "le.txt",
        text=ODD_TEXT,
    ),
    Entry(
        "utf16-be-bom",
        lambda corpus, _: (corpus / "be.md").write_bytes(
            b"\xfe\xff" + ODD_TEXT.encode("utf-16-be")
        ),
        "be.md",
        text=ODD_TEXT,
    ),
    Entry(
        "utf8-bom",
        lambda corpus, _: (corpus / "bom.txt").write_bytes(b"\xef\xbb\xbf" + ODD_TEXT.encode()),
        "bom.txt",
        text=ODD_TEXT,
    ),
    Entry(
        "hidden-file",
        lambda corpus, _: (corpus / ".secret.txt").write_text("Hidden.", encoding="utf-8"),
        ".secret.txt",
        hidden=True,
    ),
    Entry("file-in-git", write_in_git, ".git", hidden=True),
    Entry(
        "no-read-permission",
        write_unreadable,
        "locked.txt",
        ("Permission denied",),
        needs_non_root=True,
    ),
    Entry(
        "broken-link",
        lambda corpus, _: (corpus / "gone.txt").symlink_to(corpus / "nowhere.txt"),
        "gone.txt",
        ("broken symlink",),
    ),
    Entry(
        "binary-file",
        lambda corpus, _: (corpus / "blob.txt").write_bytes(b"\x00\x01\x02binary\xff"),
        "blob.txt",
        ("binary",),
    ),
    Entry(
        "broken-pdf",
        write_broken_pdf,
        "broken.pdf",
        ("broken PDF", "pypdf said: EOF marker not found"),
    ),
]
SKIPPED = [entry for entry in ENTRIES if entry.text is None and not entry.hidden]


def load_beside_good_file(
    tmp_path: Path, make: Callable[[Path, Path], None], **limit: int
) -> dict[str, SourceDocument]:
    """The documents of a corpus holding ``good.txt`` and the entry ``make`` adds, by path."""
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (corpus / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    make(corpus, outside)
    documents = finish_within(10, lambda: list(load_corpus(corpus, **limit)))
    return {str(Path(doc.path).relative_to(corpus)): doc for doc in documents}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.id)
def test_an_odd_entry_is_skipped_by_name_or_read_and_the_rest_loads(entry, tmp_path, caplog):
    if entry.needs_non_root and os.geteuid() == 0:
        pytest.skip("root reads a file whatever its permissions")
    limit = {} if entry.limit is None else {"max_file_bytes": entry.limit}
    with caplog.at_level(logging.DEBUG, logger="assistant.load"):
        documents = load_beside_good_file(tmp_path, entry.make, **limit)

    assert documents.pop("good.txt").text == GOOD_TEXT
    for document in documents.values():  # what is cited must go into UTF-8 JSON
        json.dumps(document.path, ensure_ascii=False).encode("utf-8")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    for message in [r.getMessage() for r in caplog.records]:
        message.encode("utf-8")  # a hostile name never makes the log itself fail
    if entry.text is not None:
        (document,) = documents.values()
        assert document.text == entry.text
        assert "\ufeff" not in document.text
        assert warnings == []
    elif entry.hidden:
        assert documents == {}
        assert warnings == []
        debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
        assert any(entry.named in message for message in debug), debug
    else:
        assert documents == {}
        (warning,) = warnings  # pypdf's own messages included, none of them left unnamed
        assert entry.named in warning
        for words in entry.reason:
            assert words in warning


def test_assistant_ingest_names_each_skipped_entry_once(tmp_path, caplog):
    """What the loader says must reach whoever runs ``assistant ingest``: one line per skipped
    entry with its reason, although ingest lists the corpus (the walk's skips) before reading
    the files listed (the reading's skips). Checking for a change says nothing: it runs at
    every start, and the ingest it may start gives the warnings."""
    from assistant.load import corpus_fingerprint

    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (corpus / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    skipped = [entry for entry in SKIPPED if not (entry.needs_non_root and os.geteuid() == 0)]
    for entry in skipped:
        entry.make(corpus, outside)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    environment.update(
        ASSISTANT_CORPUS_DIR="corpus",
        ASSISTANT_INDEX_DIR="index",
        ASSISTANT_DATA_DIR="data",
        ASSISTANT_MAX_FILE_MB=str(SMALL_LIMIT / 2**20),  # exactly SMALL_LIMIT bytes
    )
    result = run_cli(tmp_path, "ingest", env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 documents" in result.stdout

    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(skipped), warnings  # none repeated, none without a name
    for entry in skipped:
        (warning,) = [line for line in warnings if f"/{entry.named}: " in line]
        for words in entry.reason:
            assert words in warning, warning

    with caplog.at_level(logging.DEBUG, logger="assistant.load"):
        corpus_fingerprint(corpus)
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


def link_file_inside(corpus: Path, outside: Path) -> None:
    (corpus / "real.txt").write_text(ODD_TEXT, encoding="utf-8")
    (corpus / "alias.txt").symlink_to(corpus / "real.txt")


def link_into_hidden_folder(corpus: Path, outside: Path) -> None:
    (corpus / ".archive").mkdir()
    (corpus / ".archive" / "old.txt").write_text(ODD_TEXT, encoding="utf-8")
    (corpus / "archive").symlink_to(corpus / ".archive", target_is_directory=True)


def link_to_folder_read_already(corpus: Path, outside: Path) -> None:
    (corpus / "zeta").mkdir()
    (corpus / "zeta" / "notes.txt").write_text(ODD_TEXT, encoding="utf-8")
    (corpus / "alpha").symlink_to(corpus / "zeta", target_is_directory=True)


@pytest.mark.parametrize(
    ("make", "read_as"),
    [
        (link_file_inside, {"real.txt", "alias.txt"}),
        (link_into_hidden_folder, {"archive/old.txt"}),
        (link_to_folder_read_already, {"zeta/notes.txt"}),  # once, by its real name
    ],
    ids=["file", "folder", "folder-read-already"],
)
def test_a_link_into_the_corpus_is_followed(make, read_as, tmp_path):
    documents = load_beside_good_file(tmp_path, make)
    assert set(documents) == {"good.txt", *read_as}
    for name in read_as:
        assert documents[name].text == ODD_TEXT


@pytest.mark.parametrize(
    ("value", "problem"),
    [("many", "must be a number"), ("0", "above 0"), ("-2", "above 0"), ("nan", "above 0")],
)
def test_the_file_size_limit_is_a_positive_number_of_megabytes(value, problem):
    from assistant import Settings
    from assistant.load import DEFAULT_MAX_FILE_BYTES

    assert Settings.load(environ={}).max_file_bytes == DEFAULT_MAX_FILE_BYTES
    assert Settings.load(environ={"ASSISTANT_MAX_FILE_MB": "0.5"}).max_file_bytes == 2**19
    with pytest.raises(ValueError, match=problem):
        Settings.load(environ={"ASSISTANT_MAX_FILE_MB": value})


def test_the_assistant_answers_from_a_corpus_with_hostile_entries(tmp_path, embeddings):
    from assistant import Assistant, Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS_FILE, corpus / CORPUS_FILE.name)
    os.mkfifo(corpus / "pipe.txt")
    write_non_utf8_name(corpus, tmp_path)
    settings = Settings.load(
        environ={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data"
    )

    def build_and_ask():
        bot = Assistant(settings, embeddings=embeddings)
        return bot.ask("Which hospital will run the trial?")

    answer = finish_within(120, build_and_ask)
    assert "Third Affiliated Hospital" in answer.text
    assert {c.source for c in answer.citations} == {str(corpus / CORPUS_FILE.name)}


def test_the_eval_baseline_reads_the_corpus_as_the_loader_does(tmp_path, embeddings):
    """The tutorial baseline scored beside ours skips what the loader skips, instead of
    stopping the eval on a file that is not UTF-8."""
    from assistant.evals.baseline import TutorialBaseline

    (tmp_path / "good.txt").write_text("The trial runs at the Third Affiliated Hospital.\n")
    (tmp_path / "latin1.txt").write_bytes("Caf\u00e9 notes in Latin-1.\n".encode("latin-1"))
    baseline = TutorialBaseline(tmp_path, embeddings=embeddings)
    assert "Third Affiliated" in baseline.ask("Which hospital runs the trial?").text


def test_the_corpus_fingerprint_covers_every_file_the_loader_reads(tmp_path):
    """An unchanged fingerprint means an unchanged corpus, so it must see what the loader sees:
    here a file reached only through a link into a hidden folder of the corpus."""
    from assistant.load import corpus_fingerprint, load_corpus

    (tmp_path / ".store").mkdir()
    stored = tmp_path / ".store" / "notes.txt"
    stored.write_text("First version.\n")
    (tmp_path / "docs").symlink_to(tmp_path / ".store", target_is_directory=True)
    assert [document.text for document in load_corpus(tmp_path)] == ["First version.\n"]

    before = corpus_fingerprint(tmp_path)
    stored.write_text("Second, longer version.\n")
    assert corpus_fingerprint(tmp_path) != before
