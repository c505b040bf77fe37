"""Load: corpus files become ``SourceDocument``s; unreadable files are skipped with a warning.

A bad file (binary, undecodable, empty, unsupported, vanished) must never stop an ingest: a
collection grows by people dropping files into a folder, and one stray file is normal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class UnreadableFile(Exception):
    """A corpus file that cannot be turned into text; its message says why."""


@dataclass(frozen=True)
class SourceDocument:
    """A document's path (as citations will name it) and its full text.

    ``page_starts`` holds the offset where each PDF page begins (empty for other formats), so a
    citation's offset can be turned back into a page number.
    """

    path: str
    text: str
    page_starts: tuple[int, ...] = field(default=())

    def page_of(self, offset: int) -> int | None:
        """The 1-based PDF page holding ``offset``, or None for documents without pages."""
        if not self.page_starts:
            return None
        return sum(1 for start in self.page_starts if start <= offset)


def read_text_file(path: Path) -> str:
    """Read the way a reader checking a citation will: UTF-8, universal newlines."""
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise UnreadableFile("looks binary (NUL bytes)")
    try:
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"not valid UTF-8 ({error.reason} at byte {error.start})") from None


def _read_html(path: Path) -> tuple[str, tuple[int, ...]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text_file(path), "html.parser")
    for hidden in soup(["script", "style", "noscript", "template", "head"]):
        hidden.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line), ()


def _read_pdf(path: Path) -> tuple[str, tuple[int, ...]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except (PdfReadError, ValueError, KeyError) as error:
        raise UnreadableFile(f"broken PDF ({error})") from None
    starts, text = [], ""
    for page in pages:
        starts.append(len(text))
        text += page.strip() + "\n\n"
    return text, tuple(starts)


_READERS: dict[str, Callable[[Path], tuple[str, tuple[int, ...]]]] = {
    ".txt": lambda path: (read_text_file(path), ()),
    ".md": lambda path: (read_text_file(path), ()),
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
}


def load_document(path: Path, name: str | None = None) -> SourceDocument:
    """Read one file; raises ``UnreadableFile`` with the reason when it cannot."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableFile(f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        text, page_starts = reader(path)
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error})") from None
    if not text.strip():
        raise UnreadableFile("has no text")
    return SourceDocument(path=name or str(path), text=text, page_starts=page_starts)


def load_corpus(corpus_dir: Path) -> Iterator[SourceDocument]:
    """Every readable document under ``corpus_dir``, recursively, in a stable order.

    Paths are given as ``corpus_dir`` joined with the file's relative path, so a citation's
    ``source`` opens from the same working directory the corpus was named from.
    """
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {str(corpus_dir)!r} does not exist")
    for path in sorted(p for p in corpus_dir.rglob("*") if not p.is_dir()):
        if path.name.startswith("."):
            continue
        try:
            yield load_document(path)
        except UnreadableFile as reason:
            logger.warning("skipping %s: %s", path, reason)


def corpus_fingerprint(corpus_dir: Path) -> frozenset[tuple[str, int, int]]:
    """Name, size and modification time of every corpus file: cheap to take (no file is read),
    and it changes whenever a file is added, removed, edited or replaced."""
    fingerprint = set()
    for path in corpus_dir.rglob("*"):
        try:
            status = path.stat()
        except OSError:
            continue
        fingerprint.add((str(path), status.st_size, status.st_mtime_ns))
    return frozenset(fingerprint)
