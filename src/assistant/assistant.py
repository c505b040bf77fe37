"""The ``Assistant``: settings, index, retriever and answerer wired into one object."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.answer.collection import ANALYSIS_VERSION, Collection
from assistant.answer.extractive import ExtractiveAnswerer
from assistant.answer.language import nlp, thinc_without_torch
from assistant.answer.llm import NOT_FOUND, LLMAnswerer, chat_model_from_settings
from assistant.answer.protocol import Answerer
from assistant.answer.reader import shipped_reader
from assistant.answer.support import SupportMeasure
from assistant.answer.types import Answer
from assistant.config import Settings
from assistant.embed import load_embeddings
from assistant.index import GenerationGone, Index, IndexUnavailable, damaged
from assistant.ingest import SyncReport, sync
from assistant.load import corpus_fingerprint
from assistant.question import (
    MAX_HISTORY_ANSWER_CHARS,
    MAX_HISTORY_TURNS,
    CheckedQuestion,
    History,
    Question,
)
from assistant.retrieve import HybridSearch, LexicalIndex
from assistant.snapshot import DamagedSnapshot, open_snapshot

if TYPE_CHECKING:  # LangChain's model and runnable machinery loads only when it is used
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

    from assistant.runnables import HybridRetriever

logger = logging.getLogger(__name__)

T = TypeVar("T")
RECHECK_SECONDS = 2.0
WATCH_SECONDS = 2.0
SHARED_SETTINGS = (
    "corpus_dir",
    "index_dir",
    "chunk_size",
    "chunk_overlap",
    "chroma_host",
    "chroma_port",
    "max_sentences",
    "reader",
)


@dataclass(frozen=True)
class _Loaded:
    """What one index generation needs in memory: built once, shared by every question."""

    generation: str
    collection: Collection  # each sentence read once: what answers and suggestions draw on
    lexical: LexicalIndex
    vocabulary: frozenset[str]
    extractive: ExtractiveAnswerer
    support: SupportMeasure  # what an LLM answerer cites from: this generation's sentences
    texts: dict[str, str]  # documents' indexed texts, read on first use


@dataclass(frozen=True)
class IndexedDocument:
    """One document the assistant answers from, as the answering index generation records it.

    ``size`` is the file's size when it was read; ``indexed_at`` is None for a document indexed
    before the index kept the time."""

    name: str  # relative to the corpus folder: what a reader knows the file as
    source: str  # as citations name it
    size: int
    passages: int  # the chunks retrieval ranks
    sentences: int
    indexed_at: datetime | None


def _may_be_refusing(text: str) -> bool:
    """Whether a reply streamed so far is, or may yet become, the model's ``NOT_FOUND`` token,
    which the reader sees as a refusal once the reply is checked, never as text."""
    shown = text.strip()
    return NOT_FOUND in shown or NOT_FOUND.startswith(shown)


@dataclass(frozen=True)
class _Pipeline:
    """One generation's search and answerer."""

    loaded: _Loaded
    search: HybridSearch
    answerer: Answerer  # the LLM one when a chat model is set, else the extractive one

    def read(self, checked: CheckedQuestion) -> Question:
        """The question read once, against this generation's words."""
        return Question.read(checked.text, checked.history, self.loaded.vocabulary)


class Assistant:
    """Answers questions about the documents in ``corpus/`` with exact, checkable citations.

    The index is built (or brought up to date) when the assistant is made; the model loads then
    too, so the first question is as fast as the rest.

    >>> from assistant import Assistant
    >>> bot = Assistant()
    >>> answer = bot.ask("Which hospital will run the trial?")
    >>> answer.text.startswith("The clinical trial will be conducted at the Third Affiliated")
    True
    >>> c = answer.citations[0]
    >>> bot.source_text(c.source)[c.start : c.end] == c.quote  # the text as indexed
    True
    >>> refusal = bot.ask("Who is the CEO of XellSmart?")
    >>> refusal.refused, len(refusal.closest) > 0  # the passages that came closest, not cited
    (True, True)

    Parts can be swapped by argument: ``embeddings`` (a LangChain ``Embeddings``),
    ``chat_model`` (a LangChain chat model: answers then come from it, checked for citations)
    and ``client`` (a Chroma client, embedded or ``HttpClient``).  Other keyword arguments are
    settings (see ``Settings``), e.g. ``Assistant(corpus_dir="docs", k=6)``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embeddings: Embeddings | None = None,
        chat_model: BaseChatModel | None = None,
        client: Any = None,
        build_index: bool = True,
        **overrides: Any,
    ) -> None:
        self.settings = settings.replace(**overrides) if settings else Settings.load(**overrides)
        self.embeddings = embeddings or load_embeddings(cache_dir=self.settings.index_dir)
        if chat_model is None and self.settings.answerer != "extractive":
            chat_model = chat_model_from_settings(self.settings)
        self.llm = LLMAnswerer(chat_model) if chat_model is not None else None
        self.index = Index(self.settings, self.embeddings, client)
        self._loaded: _Loaded | None = None
        self._checked_at = 0.0
        self._built: _Pipeline | None = None
        self._lock = threading.RLock()
        self._opening = threading.Lock()
        if build_index:
            self.ensure_index()

    # -- the index ------------------------------------------------------------------------

    def ensure_index(self) -> SyncReport | None:
        """Build or update the index when it is missing or stale; None when it was current.

        A corpus whose files all have the names, sizes and times they had at the last build
        is current without reading a document; otherwise an ingest compares its spans with the
        index's (and embeds nothing when only times changed).  A damaged index is reported
        (``IndexUnavailable`` naming the repair), never silently re-embedded."""
        if self.index.generation is not None and self.index.corpus_unchanged():
            self._load(wait=True)  # which checks the generation before reading it
            return None
        return self.ingest()

    def ingest(self, rebuild: bool = False, progress: bool | None = None) -> SyncReport:
        """Bring the index in step with the corpus (embedding only what changed)."""
        report = sync(self.index, rebuild=rebuild, progress=progress)
        self._checked_at = 0.0
        self._load(wait=True)
        return report

    def watch_corpus(self, every: float = WATCH_SECONDS) -> threading.Event:
        """Re-index in the background whenever a corpus file changes (looked for every
        ``every`` seconds, by name, size and modification time).  Questions go on being
        answered from the current generation until the new one is ready.  Setting the returned
        event stops the watch."""
        stop = threading.Event()

        def watch() -> None:
            seen = corpus_fingerprint(self.settings.corpus_dir)
            while not stop.wait(every):
                now = corpus_fingerprint(self.settings.corpus_dir)
                if now == seen:
                    continue
                seen = now
                try:
                    report = self.ensure_index()
                    if report is not None and (report.embedded or report.removed):
                        logger.warning(
                            "the corpus changed: re-indexed %d documents (%d spans embedded)",
                            report.documents,
                            report.embedded,
                        )
                except Exception as error:  # keep answering from the generation we have
                    logger.warning("re-indexing the changed corpus failed: %s", error)

        threading.Thread(target=watch, name="watch-corpus", daemon=True).start()
        return stop

    def _load(self, wait: bool = False) -> _Loaded:
        """The in-memory state of the answering generation.

        Another process may re-index at any time, so the manifest is read again every few
        seconds (not on every question).  One thread reads a new generation while the others
        go on answering from the one they have, which stays on disk until readers have moved
        on; ``wait`` makes the caller wait for the newest instead.
        """
        loaded = self._loaded
        if (
            not wait
            and loaded is not None
            and time.monotonic() - self._checked_at < RECHECK_SECONDS
        ):
            return loaded
        if not self._opening.acquire(blocking=wait or loaded is None):
            return loaded  # another thread is already looking: answer from what we have
        try:
            if not wait and self._loaded is not loaded:
                return self._loaded  # another thread finished looking while we waited
            generation = self.index.generation
            if generation is None:
                raise IndexUnavailable("the index is not built yet: run `assistant ingest`")
            if self._loaded is None or self._loaded.generation != generation:
                self._loaded = self._read(generation)
            self._checked_at = time.monotonic()
            return self._loaded
        finally:
            self._opening.release()

    def _read(self, generation: str) -> _Loaded:
        self.index.verify(generation)
        # The question parser (which also reads an LLM's reply sentences) loads while the
        # index opens; first, here, the one step of it that must not overlap the model
        # exports below (they import torch, which it hides for a moment).
        thinc_without_torch()
        threading.Thread(target=nlp, name="load-spacy", daemon=True).start()
        snapshot = open_snapshot(self.index, generation, Collection.prepare, ANALYSIS_VERSION)
        try:
            collection = Collection.open(snapshot)
        except DamagedSnapshot as error:
            raise damaged(self.settings, f"snapshot {snapshot.folder.name}: {error}") from error
        # Beside the embedding model's export when there is one: assistants sharing a model
        # (the eval sets' indexes) share the reader's export too.
        reader_dir = Path(getattr(self.embeddings, "cache_dir", None) or self.settings.index_dir)
        extractive = ExtractiveAnswerer(
            collection,
            self.embeddings,
            self.settings.max_sentences,
            reader=(lambda: shipped_reader(reader_dir)) if self.settings.reader else None,
        )
        support = SupportMeasure(collection, self.embeddings)
        prepare_fast_queries = getattr(self.embeddings, "prepare_fast_queries", None)
        if prepare_fast_queries is not None:
            prepare_fast_queries()
        self.embeddings.embed_query("warm up")
        if self.llm is None and self.settings.reader:
            shipped_reader(reader_dir)
        return _Loaded(
            generation,
            collection,
            LexicalIndex(snapshot),
            snapshot.spelling,
            extractive,
            support,
            {},
        )

    def with_settings(self, **changes: Any) -> Assistant:
        """An assistant with other query-time settings (k, answerer) sharing model and index."""
        settings = self.settings.replace(**changes)
        if any(getattr(settings, name) != getattr(self.settings, name) for name in SHARED_SETTINGS):
            raise ValueError(f"with_settings cannot change {', '.join(SHARED_SETTINGS)}")
        other = Assistant(
            settings,
            embeddings=self.embeddings,
            client=self.index.client,
            chat_model=(
                self.llm.chat_model
                if self.llm and settings.answerer == self.settings.answerer
                else None
            ),
            build_index=False,
        )
        other._loaded = self._loaded
        return other

    def documents(self) -> list[IndexedDocument]:
        """The documents answers come from, by name: read from the answering generation's
        record, not from the files, so it is cheap enough to ask every few seconds."""
        record = self.index.record(self._load().generation)
        listed = []
        for source, entry in record.documents.items():
            try:
                name = PurePath(source).relative_to(self.settings.corpus_dir).as_posix()
            except ValueError:  # indexed under another spelling of the folder
                name = source
            indexed_at = datetime.fromtimestamp(entry.indexed_at, UTC) if entry.indexed_at else None
            listed.append(
                IndexedDocument(name, source, entry.size, entry.chunks, entry.sentences, indexed_at)
            )
        return sorted(listed, key=lambda document: document.name)

    def source_text(self, source: str) -> str:
        """The text of ``source`` as indexed, which citation offsets count in (the file may
        have changed since; the index keeps the text each generation was built from)."""
        loaded = self._load()
        if source not in loaded.texts:
            loaded.texts[source] = self.index.text(source, loaded.generation)
        return loaded.texts[source]

    def headlines(self) -> list[str]:
        """Each document's first sentence (a press release's title), by source, as indexed:
        what the collection is about in its own words, for a page to suggest questions from."""
        collection = self._load().collection
        return [
            collection.spans[positions[0]].text
            for _, positions in sorted(collection.by_source.items())
        ]

    def defined_acronyms(self) -> list[str]:
        """The acronyms the documents spell out ("spinal cord injury (SCI)"), as they write
        them ("iPSC" for "iPSCs"), in the order they are first spelled out."""
        collection = self._load().collection
        return [collection.written[acronym] for acronym in collection.acronyms]

    # -- questions ------------------------------------------------------------------------

    @property
    def retriever(self) -> HybridRetriever:
        """A LangChain retriever over the current index generation: the chunks ``retrieve``
        returns, for programs composing retrieval with other LangChain parts."""
        from assistant.runnables import HybridRetriever

        return HybridRetriever(search=self._pipeline().search)

    @property
    def chain(self) -> Runnable:
        """The pipeline as an LCEL runnable: ``{"question", "history"}`` → ``Answer``, for
        programs composing it with other LangChain parts (``ask`` is the same path)."""
        from assistant.runnables import answer_chain

        return answer_chain(self.ask)

    def _pipeline(self) -> _Pipeline:
        """Search and answerer for the loaded generation, made together so they agree:
        chunks retrieved from one generation are never cited from another's sentences (an
        upload or another process may switch generations between two steps)."""
        loaded = self._load()
        with self._lock:
            if self._built is None or self._built.loaded is not loaded:
                answerer = self._answerer_for(loaded)
                search = HybridSearch(
                    index=self.index,
                    lexical=loaded.lexical,
                    embeddings=self.embeddings,
                    k=self.settings.k,
                )
                self._built = _Pipeline(loaded, search, answerer)
            return self._built

    def retrieve(
        self, question: str | CheckedQuestion, history: History | None = ()
    ) -> list[Document]:
        """The ranked chunks an answer to ``question`` is drawn from."""
        checked = self._accepted(question, history)
        if len(checked.text) > self.settings.max_question_chars:
            raise ValueError(self._too_long(checked.text).text)

        def retrieve() -> list[Document]:
            pipeline = self._pipeline()
            return pipeline.search.search(pipeline.read(checked).query)

        return self._on_newest_generation(retrieve)

    def ask(self, question: str | CheckedQuestion, history: History | None = ()) -> Answer:
        """Answer ``question``; ``history`` holds earlier (question, answer) turns (see
        ``check_question`` for their shape and limits, and for a question checked already).

        The whole path: the question is read once (``Question``), the retriever ranks chunks
        for its query, and the answerer answers from them, all from one index generation."""
        checked = self._accepted(question, history)
        if len(checked.text) > self.settings.max_question_chars:
            return self._too_long(checked.text)

        def answer() -> Answer:
            pipeline = self._pipeline()
            asked = pipeline.read(checked)
            documents = pipeline.search.search(asked.query)
            return pipeline.answerer.answer(asked, documents)

        return self._on_newest_generation(answer)

    def stream_answers(
        self, question: str | CheckedQuestion, history: History | None = ()
    ) -> Iterator[Answer]:
        """Answers whose text grows as it is produced; the last is complete, with citations."""
        checked = self._accepted(question, history)
        if len(checked.text) > self.settings.max_question_chars or self.llm is None:
            final = self.ask(checked)
            words = re.findall(r"\S+\s*", final.text)
            for count in range(1, len(words)):
                yield Answer("".join(words[:count]), refused=final.refused)
            yield final
            return

        def retrieved() -> tuple[Question, list[Document], LLMAnswerer]:
            pipeline = self._pipeline()  # one generation for the chunks and their citations
            asked = pipeline.read(checked)
            return asked, pipeline.search.search(asked.query), pipeline.answerer

        asked, documents, llm = self._on_newest_generation(retrieved)
        text = ""
        for piece in llm.stream(asked, documents):
            text += piece
            if not _may_be_refusing(text):  # the refusal token is the model's, not the reader's
                yield Answer(text)
        yield llm.check(text, asked, documents)

    def stream(self, question: str | CheckedQuestion, history: History = ()) -> Iterator[str]:
        """The answer's text in pieces, as it is produced.

        When the checked answer differs from what was streamed (an LLM's markers renumbered,
        its uncited sentences flagged), the checked text follows in full on a new line.
        """
        shown = ""
        for answer in self.stream_answers(question, history):
            yield answer.text[len(shown) :] if answer.text.startswith(shown) else f"\n{answer.text}"
            shown = answer.text

    def _on_newest_generation(self, step: Callable[[], T]) -> T:
        """Run ``step``; when the generation it read is gone (the index was rebuilt under a
        running page), read the manifest again and run it once more on the newest."""
        try:
            return step()
        except GenerationGone:
            self._load(wait=True)
            return step()

    # -- what a caller may ask ------------------------------------------------------------

    def check_question(self, question: Any, history: Any = None) -> CheckedQuestion:
        """``question`` and ``history`` as answering takes them, or a one-sentence
        ``TypeError`` or ``ValueError`` saying what is expected, for a caller to pass on to
        whoever sent them (not a Python message from deep inside the pipeline).

        The question is stripped; ``history`` (None for none) is a list of earlier
        (question, answer) pairs of strings, of which only the last ``MAX_HISTORY_TURNS`` are
        kept, each question cut to ``max_question_chars`` and each answer to
        ``MAX_HISTORY_ANSWER_CHARS``. A question over ``max_question_chars`` passes: ``ask``
        answers it with a refusal saying so. ``ask`` takes the result as it is."""
        return CheckedQuestion(self._checked_text(question), self._checked_history(history))

    def _accepted(self, question: Any, history: Any) -> CheckedQuestion:
        """What ``ask`` and its siblings were given, checked unless it was already."""
        if not isinstance(question, CheckedQuestion):
            return self.check_question(question, history)
        if history:
            raise TypeError("a checked question carries its history: pass it to check_question")
        return question

    @staticmethod
    def _checked_text(question: Any) -> str:
        if not isinstance(question, str):
            raise TypeError(f"the question must be a string of text, not {type(question).__name__}")
        if not question.strip():
            raise ValueError("the question is empty: ask something about the documents")
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which no tokenizer or JSON encoder takes
            raise ValueError(
                "the question holds characters that are not valid text (such as a lone "
                "surrogate); send it as UTF-8"
            ) from None
        return question.strip()

    def _checked_history(self, history: Any) -> tuple[tuple[str, str], ...]:
        if history is None:
            return ()
        if not isinstance(history, list | tuple):
            raise TypeError(
                "history must be a list of earlier (question, answer) pairs of strings, "
                f"not {type(history).__name__}"
            )
        first = max(len(history) - MAX_HISTORY_TURNS, 0)
        pairs = []
        for number, turn in enumerate(history[first:], start=first + 1):
            if not (
                isinstance(turn, list | tuple)
                and len(turn) == 2
                and all(isinstance(text, str) for text in turn)
            ):
                shape = f"a {type(turn).__name__}"
                if isinstance(turn, list | tuple):
                    kinds = " and ".join(type(item).__name__ for item in turn)
                    shape += f" of {kinds}" if len(turn) == 2 else f" of {len(turn)} item(s)"
                raise TypeError(
                    "each history turn must be a (question, answer) pair of strings, "
                    f"but turn {number} is {shape}"
                )
            asked, answered = turn
            pairs.append(
                (asked[: self.settings.max_question_chars], answered[:MAX_HISTORY_ANSWER_CHARS])
            )
        return tuple(pairs)

    # -- the chain's steps ----------------------------------------------------------------

    def _too_long(self, question: str) -> Answer:
        return Answer(
            f"The question is too long ({len(question)} characters; the limit is "
            f"{self.settings.max_question_chars}). Please ask it more briefly.",
            refused=True,
        )

    @property
    def answerer(self) -> Answerer:
        """The answerer in use: the LLM one when a chat model is set (citing from the loaded
        generation's sentences), else the extractive one."""
        return self._answerer_for(self._load())

    def _answerer_for(self, loaded: _Loaded) -> Answerer:
        return self.llm.with_support(loaded.support) if self.llm else loaded.extractive
