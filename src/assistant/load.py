"""Load: corpus files become ``SourceDocument``s; anything unreadable is skipped with a warning.

A bad entry must never stop an ingest: a collection grows by people dropping files into a folder,
and one stray entry is normal. Some entries are worse than stray: a FIFO blocks its first reader
forever, a link to ``/dev/zero`` never ends, a link to ``/etc/passwd`` would make a system file
quotable, a 50 MB log takes hours to embed, and a name that is not UTF-8 cannot be cited in JSON.
So the folder is walked by hand rather than with ``Path.rglob``: hidden entries are left out,
links are followed only into the corpus folder, each folder is listed once, only regular files
are opened, each up to a size limit, and every problem becomes one warning naming the entry.

An ingest gives each warning once: the walk names the entries it leaves out (``corpus_files``),
the reading names the files it cannot read (``load_documents``), and neither sees the other's
entries. The fingerprint that only tells whether anything changed stays quiet: it is taken at
every start and every few seconds while serving, and would repeat every warning each time.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from assistant.config import EXAMPLES_FILE

logger = logging.getLogger(__name__)

MB = 1 << 20
DEFAULT_MAX_FILE_BYTES = 20 * MB
"""The per-file limit when a caller names none; ``Settings.max_file_mb`` has the same default."""

_SNIFF_BYTES = 8192

_COMPLAINTS_SHOWN = 3
"""How many of pypdf's distinct messages a warning quotes: a broken PDF can give hundreds."""

_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


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


def printable(path: str | os.PathLike[str]) -> str:
    """``path`` as a message can show it: bytes that are not UTF-8 as ``\\xff``, control
    characters escaped, so a hostile name can neither break a log line nor fake another one."""
    return _one_line(os.fsencode(path).decode("utf-8", "backslashreplace"))


def _one_line(text: str) -> str:
    """``text`` with its control characters escaped, so it can neither break nor fake a line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def decode_text(raw: bytes) -> str:
    """Decode the way a reader checking a citation will: UTF-8, or UTF-16 when a byte order
    mark says so, the mark dropped, with universal newlines.

    The text returned is the one citation offsets count in, so the mark must not stay in it: a
    UTF-8 mark would otherwise end up at the start of a quoted answer.
    """
    encoding, body = "utf-8", raw
    for mark, marked_encoding in _BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            encoding, body = marked_encoding, raw[len(mark) :]
            break
    else:
        if b"\x00" in raw[:_SNIFF_BYTES]:
            raise UnreadableFile("looks binary (NUL bytes)")
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        name = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        raise UnreadableFile(
            f"not valid {name} ({error.reason} at byte {error.start + len(raw) - len(body)})"
        ) from None
    if "\x00" in text[:_SNIFF_BYTES]:
        raise UnreadableFile("looks binary (NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class _Reading:
    """A file's text as its reader found it, and what the parser complained of on the way:
    pypdf's messages name no file, so whoever knows the file reports them."""

    text: str
    page_starts: tuple[int, ...] = ()
    complaints: tuple[str, ...] = ()


def _with_complaints(reason: str, complaints: tuple[str, ...]) -> str:
    """``reason`` followed by the first few of pypdf's ``complaints``, when it made any."""
    if not complaints:
        return reason
    shown = "; ".join(complaints[:_COMPLAINTS_SHOWN])
    if len(complaints) > _COMPLAINTS_SHOWN:
        shown += f"; and {len(complaints) - _COMPLAINTS_SHOWN} more"
    return f"{reason}; pypdf said: {shown}"


class _Collected(logging.Handler):
    """Keeps the messages of the records it is handed, once each, in order."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: dict[str, None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages[_one_line(record.getMessage())] = None
        except Exception:  # a message that cannot be formatted is pypdf's bug, not a reason to stop
            self.handleError(record)


_PYPDF_LOGGER = logging.getLogger("pypdf")
_ONE_PDF_AT_A_TIME = threading.Lock()


@contextmanager
def _pypdf_complaints() -> Iterator[dict[str, None]]:
    """pypdf's warnings while the block runs, taken out of the log (where they would name no
    file) and handed to the block's caller, who knows which file they are about.

    A logger is shared by every thread, so PDFs are parsed one at a time: the messages caught
    are then all about this PDF, and no other thread's are swallowed meanwhile. Parsing holds
    the interpreter's lock anyway, so little is lost.
    """
    collected = _Collected()
    with _ONE_PDF_AT_A_TIME:
        propagate = _PYPDF_LOGGER.propagate
        _PYPDF_LOGGER.addHandler(collected)
        _PYPDF_LOGGER.propagate = False
        try:
            yield collected.messages
        finally:
            _PYPDF_LOGGER.propagate = propagate
            _PYPDF_LOGGER.removeHandler(collected)


def _read_text(raw: bytes) -> _Reading:
    return _Reading(decode_text(raw))


def _read_html(raw: bytes) -> _Reading:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(raw), "html.parser")
    for hidden in soup(["script", "style", "noscript", "template", "head"]):
        hidden.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return _Reading("\n".join(line for line in lines if line))


def _read_pdf(raw: bytes) -> _Reading:
    from pypdf import PdfReader

    with _pypdf_complaints() as complaints:
        try:
            pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(raw)).pages]
        # A malformed PDF makes pypdf raise nearly anything (PdfReadError, ValueError, KeyError,
        # TypeError, struct.error, RecursionError...); each of them means this one file is broken.
        except Exception as error:
            reason = f"broken PDF ({type(error).__name__}: {_one_line(str(error))})"
            raise UnreadableFile(_with_complaints(reason, tuple(complaints))) from None
    starts, text = [], ""
    for page in pages:
        starts.append(len(text))
        text += page.strip() + "\n\n"
    return _Reading(text, tuple(starts), tuple(complaints))


_READERS: dict[str, Callable[[bytes], _Reading]] = {
    ".txt": _read_text,
    ".md": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
}


def _size(count: int) -> str:
    return f"{count:,} bytes" if count < MB else f"{count / MB:.1f} MB ({count:,} bytes)"


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "a special file")


def _os_reason(error: OSError) -> str:
    return f"cannot be read ({error.strerror or error})"


def _read_regular_file(path: Path, max_file_bytes: int) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``max_file_bytes``.

    The kind and size are checked with ``stat`` before opening, so a FIFO is never opened (that
    would block) and a device never read (``/dev/zero`` never ends). The file is opened
    non-blocking and checked again in case it was swapped in between, and at most one byte past
    the limit is read, so a file that grows while it is read cannot exhaust memory either.
    """
    try:
        before = os.stat(path)
    except OSError as error:
        raise UnreadableFile(_os_reason(error)) from None
    if not stat.S_ISREG(before.st_mode):
        raise UnreadableFile(f"is {_kind(before.st_mode)}, not a regular file, so it is not read")
    if before.st_size > max_file_bytes:
        raise UnreadableFile(
            f"is {_size(before.st_size)}, over the limit of {_size(max_file_bytes)} per file "
            "(raise ASSISTANT_MAX_FILE_MB to read it)"
        )
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            opened = os.fstat(descriptor)
            if not stat.S_ISREG(opened.st_mode):
                raise UnreadableFile(f"is {_kind(opened.st_mode)}, not a regular file")
            with os.fdopen(descriptor, "rb", closefd=False) as stream:
                raw = stream.read(max_file_bytes + 1)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise UnreadableFile(_os_reason(error)) from None
    if len(raw) > max_file_bytes:
        raise UnreadableFile(
            f"grew past the limit of {_size(max_file_bytes)} per file while it was read"
        )
    return raw


def load_document(
    path: Path, name: str | None = None, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SourceDocument:
    """Read one file; raises ``UnreadableFile`` with the reason when it cannot.

    The text returned is the reference text: citation offsets count in it, so whoever checks a
    citation reads the file through this function.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableFile(f"unsupported file type {path.suffix or '(none)'!r}")
    reading = reader(_read_regular_file(path, max_file_bytes))
    if not reading.text.strip():
        raise UnreadableFile(_with_complaints("has no text", reading.complaints))
    name = name or str(path)
    if reading.complaints:  # read all the same, but a page may be missing: say so, by name
        read_anyway = f"read {printable(name)} despite problems"
        logger.warning("%s", _with_complaints(read_anyway, reading.complaints))
    return SourceDocument(path=name, text=reading.text, page_starts=reading.page_starts)


def _unreachable(path: Path, error: OSError) -> str:
    """Why ``os.stat`` failed on a listed entry, in words: mostly a link going nowhere."""
    if error.errno == errno.ELOOP:
        return "is a symlink loop"
    if isinstance(error, FileNotFoundError):
        try:
            return f"is a broken symlink (to {printable(os.readlink(path))})"
        except OSError:
            return "vanished while the folder was read"
    return _os_reason(error)


def _skip(path: Path, reason: str) -> None:
    logger.warning("skipping %s: %s", printable(path), reason)


def _skip_quietly(path: Path, reason: str) -> None:
    """For walks that only look for a change: the ingest that follows gives the warnings."""


class _CorpusWalk:
    """The files under a corpus folder worth trying to read, found without trusting the tree.

    Folders are listed from a work list rather than by recursion (a deep tree cannot overflow
    the stack), each folder once by device and inode (a link loop ends), and folders reached
    through a link only after every real folder, so a file is named by its real path when a
    link offers a second way to it.
    """

    def __init__(self, corpus_dir: Path, skip: Callable[[Path, str], None] = _skip) -> None:
        self.skip = skip  # told of every entry left out, and why
        self.root = os.path.realpath(corpus_dir)
        self.examples = corpus_dir / EXAMPLES_FILE  # the page's suggested questions
        self.files: list[Path] = []
        self.listed: dict[tuple[int, int], Path] = {}
        self.real_folders: list[Path] = [corpus_dir]
        self.linked_folders: list[Path] = []

    def run(self) -> list[Path]:
        while self.real_folders or self.linked_folders:
            if self.real_folders:
                self._list(self.real_folders.pop())
            else:
                self._list(self.linked_folders.pop(0))
        return sorted(self.files)

    def _list(self, folder: Path) -> None:
        try:
            info = os.stat(folder)
            key = (info.st_dev, info.st_ino)
            if key in self.listed:
                self._second_way_in(folder, self.listed[key])
                return
            self.listed[key] = folder
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            self.skip(folder, f"cannot be listed ({error.strerror or error})")
            return
        for entry in entries:
            self._consider(folder / entry.name, entry)

    def _second_way_in(self, folder: Path, listed_as: Path) -> None:
        target = os.path.realpath(folder)
        parent = os.path.realpath(folder.parent)
        if os.path.commonpath([parent, target]) == target:
            self.skip(folder, f"is a symlink loop (it leads back to {printable(listed_as)})")
        else:
            self.skip(folder, f"leads to {printable(listed_as)}, which is read already")

    def _consider(self, path: Path, entry: os.DirEntry[str]) -> None:
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            self.skip(path, "its name is not valid UTF-8, so it cannot be cited; rename it")
            return
        if entry.name.startswith("."):
            logger.debug("skipping hidden %s", printable(path))
            return
        if path == self.examples:
            logger.debug("skipping %s: the page's example questions", printable(path))
            return
        try:
            is_link = entry.is_symlink()
            info = os.stat(path)
        except OSError as error:
            self.skip(path, _unreachable(path, error))
            return
        if is_link:
            target = os.path.realpath(path)
            if os.path.commonpath([self.root, target]) != self.root:
                self.skip(
                    path,
                    f"links outside the corpus folder (to {printable(target)}); "
                    "only links into the corpus folder are followed",
                )
                return
        if stat.S_ISDIR(info.st_mode):
            (self.linked_folders if is_link else self.real_folders).append(path)
        else:
            self.files.append(path)  # load_document reads regular files only, and says why


def load_corpus(
    corpus_dir: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Iterator[SourceDocument]:
    """Every readable document under ``corpus_dir``, recursively, in a stable order.

    Paths are given as ``corpus_dir`` joined with the file's relative path, so a citation's
    ``source`` opens from the same working directory the corpus was named from. Hidden files and
    folders (a name starting with ``.``, ``.git`` among them) are left out with a debug line, as a
    ``.git`` folder alone holds thousands, and so is the page's ``examples.yaml`` at the top;
    every other entry that is not read gets a warning.
    """
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {str(corpus_dir)!r} does not exist")
    yield from load_documents(_CorpusWalk(corpus_dir).run(), max_file_bytes=max_file_bytes)


def load_documents(
    paths: Iterable[Path], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Iterator[SourceDocument]:
    """The readable documents among ``paths``; each one that is not read gets a warning."""
    for path in paths:
        try:
            yield load_document(path, max_file_bytes=max_file_bytes)
        except UnreadableFile as reason:
            _skip(path, str(reason))


@dataclass(frozen=True)
class FileStamp:
    """A corpus file as the file system describes it, without reading it."""

    path: Path
    size: int
    mtime_ns: int


def corpus_files(corpus_dir: Path, *, warn: bool = True) -> list[FileStamp]:
    """Name, size and modification time of every file the loader would try (nothing is read):
    what tells an unchanged file from one to read again.

    Each entry left out gets its warning here, as an ingest lists the corpus this way and then
    reads only the files listed; ``warn=False`` is for a caller that only looks for a change.
    """
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {str(corpus_dir)!r} does not exist")
    skip = _skip if warn else _skip_quietly
    stamps = []
    for path in _CorpusWalk(corpus_dir, skip=skip).run():
        try:
            status = os.stat(path)
        except OSError as error:
            skip(path, _unreachable(path, error))
            continue
        stamps.append(FileStamp(path, status.st_size, status.st_mtime_ns))
    return stamps


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A digest of ``corpus_files``: different whenever a file the loader would try is added,
    removed, edited or replaced, so an unchanged corpus is known without reading it."""
    try:
        stamps = corpus_files(corpus_dir, warn=False)
    except FileNotFoundError:
        stamps = []
    entries = [f"{str(s.path)!r} {s.size} {s.mtime_ns}" for s in stamps]
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()
