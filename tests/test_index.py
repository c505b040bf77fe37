"""The index: incremental by content hash, rebuilt on a settings change, safe to interrupt."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.index import Index
from conftest import running_chroma, shown


class CountingEmbeddings(Embeddings):
    """Wraps the real model and counts what it is asked to embed; can fail on demand."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.embedded = inner, fail_after, 0

    def embed_documents(self, texts):
        if self.fail_after is not None and self.embedded >= self.fail_after:
            raise KeyboardInterrupt("ingest interrupted")
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture
def small_corpus(tmp_path, corpus_text):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = corpus_text.split("\n\n")
    (corpus / "announcement.txt").write_text(corpus_text, encoding="utf-8")
    (corpus / "extra.md").write_text("\n\n".join(paragraphs[2:4]), encoding="utf-8")
    return corpus


def settings_for(tmp_path, corpus, **extra):
    return Settings.load(
        environ={},
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        data_dir=tmp_path / "d",
        **extra,
    )


def test_reindexing_embeds_only_what_changed(tmp_path, small_corpus, embeddings):
    counting = CountingEmbeddings(embeddings)
    settings = settings_for(tmp_path, small_corpus)
    bot = Assistant(settings, embeddings=counting)
    first = counting.embedded
    assert first > 0 and bot.index.generation

    assert bot.ingest().embedded == 0 and counting.embedded == first

    extra = small_corpus / "extra.md"
    extra.write_text(extra.read_text(encoding="utf-8") + "\n\nA brand new closing line.")
    report = bot.ingest()
    assert 0 < report.embedded <= 4, report  # the changed file's new spans only
    assert report.kept > 20

    extra.unlink()
    report = bot.ingest()
    assert report.embedded == 0 and report.removed > 0
    answer = bot.ask("Which hospital will run the trial?")
    sources = {c.source for c in answer.citations} | {p.source for p in answer.closest}
    assert sources == {str(small_corpus / "announcement.txt")}


def test_one_changed_file_is_the_only_one_read_and_parsed(
    tmp_path, small_corpus, embeddings, monkeypatch
):
    import assistant.answer.collection as collection_module

    bot = Assistant(settings_for(tmp_path, small_corpus), embeddings=embeddings)
    extra = small_corpus / "extra.md"
    extra.write_text(extra.read_text(encoding="utf-8") + "\n\nA brand new closing line.")
    parsed: list[str] = []
    spacy_pipeline = collection_module.nlp()

    class CountingPipeline:  # the real spaCy pipeline, counting the sentences it reads
        def pipe(self, texts, **options):
            texts = list(texts)
            parsed.extend(texts)
            return spacy_pipeline.pipe(texts, **options)

    monkeypatch.setattr(collection_module, "nlp", CountingPipeline)
    report = bot.ingest()
    assert report.read == 1 and report.documents == 2
    assert sorted(parsed) == sorted(
        span.text for span in bot.index.spans("sentences") if span.source == str(extra)
    ), "the unchanged document's sentences keep their reading"
    assert "brand new closing line" in shown(bot.ask("What is the brand new closing line?"))


def test_a_renamed_file_reuses_its_vectors(tmp_path, small_corpus, embeddings):
    counting = CountingEmbeddings(embeddings)
    bot = Assistant(settings_for(tmp_path, small_corpus), embeddings=counting)
    embedded = counting.embedded
    (small_corpus / "announcement.txt").rename(small_corpus / "renamed.txt")
    report = bot.ingest()
    assert report.embedded == 0 and counting.embedded == embedded, report
    answer = bot.ask("Which hospital will run the trial?")
    sources = {c.source for c in answer.citations} | {p.source for p in answer.closest}
    assert str(small_corpus / "renamed.txt") in sources
    assert str(small_corpus / "announcement.txt") not in sources


def test_a_new_chunking_setting_rebuilds_instead_of_mixing(tmp_path, small_corpus, embeddings):
    from assistant.chunk import chunk_document
    from assistant.load import load_corpus

    first = Assistant(settings_for(tmp_path, small_corpus), embeddings=embeddings).index.record()
    counting = CountingEmbeddings(embeddings)
    bot = Assistant(settings_for(tmp_path, small_corpus, chunk_size=500), embeddings=counting)
    assert counting.embedded > 0
    record = bot.index.record()
    assert not set(record.segments) & set(first.segments)
    expected = {
        (span.source, span.start, span.end)
        for document in load_corpus(small_corpus)
        for span in chunk_document(document, 500, bot.settings.chunk_overlap)
    }
    assert {(s.source, s.start, s.end) for s in bot.index.spans("chunks")} == expected
    assert bot.index.held("chunks") == len(expected)  # no chunk of the old setting is searched


def test_an_interrupted_ingest_leaves_the_previous_index_answering(
    tmp_path, small_corpus, embeddings
):
    settings = settings_for(tmp_path, small_corpus)
    bot = Assistant(settings, embeddings=embeddings)
    before = bot.index.generation
    (small_corpus / "more.txt").write_text("Another document entirely. " * 40, encoding="utf-8")
    failing = Assistant(settings, embeddings=CountingEmbeddings(embeddings, 0), build_index=False)
    with pytest.raises(KeyboardInterrupt):
        failing.ingest()
    assert Index(settings, embeddings).generation == before
    answer = Assistant(settings, embeddings=embeddings, build_index=False)
    answer._load()
    assert "Third Affiliated Hospital" in shown(answer.ask("Which hospital will run the trial?"))


def test_a_chroma_server_works_like_the_embedded_index(tmp_path, small_corpus, embeddings):
    with running_chroma(tmp_path / "server") as port:
        settings = settings_for(tmp_path, small_corpus, chroma_host="127.0.0.1", chroma_port=port)
        bot = Assistant(settings, embeddings=embeddings)
        answer = bot.ask("Which hospital will run the trial?")
        assert "Third Affiliated Hospital" in shown(answer)
        assert Assistant(settings, embeddings=embeddings).ingest().embedded == 0


def test_an_empty_corpus_is_a_clear_error(tmp_path, embeddings):
    from assistant.index import IndexUnavailable

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "blank.txt").write_text("   ", encoding="utf-8")
    with pytest.raises(IndexUnavailable, match="no readable documents"):
        Assistant(settings_for(tmp_path, tmp_path / "corpus"), embeddings=embeddings)


def test_indexes_on_one_server_keep_to_their_own_collections(tmp_path, small_corpus, embeddings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    client.get_or_create_collection("chunks-someone-else", embedding_function=None)
    other = tmp_path / "other"
    shutil.copytree(small_corpus, other)
    server = {"chroma_host": "127.0.0.1"}  # names are namespaced as on a server
    first = Assistant(
        settings_for(tmp_path, small_corpus, **server), embeddings=embeddings, client=client
    )
    second = Assistant(
        settings_for(tmp_path, other, **server), embeddings=embeddings, client=client
    )
    assert first.index.namespace != second.index.namespace
    names = {getattr(c, "name", c) for c in client.list_collections()}
    assert "chunks-someone-else" in names
    assert "Third Affiliated" in shown(first.ask("Which hospital will run the trial?"))
    assert "Third Affiliated" in shown(second.ask("Which hospital will run the trial?"))


def test_an_unchanged_corpus_opens_without_reading_a_document(
    tmp_path, small_corpus, embeddings, monkeypatch
):
    settings = settings_for(tmp_path, small_corpus)
    Assistant(settings, embeddings=embeddings)
    reads = []

    def counting_load_documents(paths, **options):
        paths = list(paths)
        reads.extend(paths)
        return real_load_documents(paths, **options)

    from assistant import ingest as ingest_module

    real_load_documents = ingest_module.load_documents
    monkeypatch.setattr(ingest_module, "load_documents", counting_load_documents)

    bot = Assistant(settings, embeddings=embeddings)
    assert reads == [] and "Third Affiliated" in shown(
        bot.ask("Which hospital will run the trial?")
    )

    extra = small_corpus / "extra.md"
    extra.write_text(extra.read_text(encoding="utf-8"), encoding="utf-8")  # touched, same text
    assert Assistant(settings, embeddings=embeddings).index.generation == bot.index.generation
    assert reads == [extra], "a touched file is read again, and only it"
    reads.clear()
    assert Assistant(settings, embeddings=embeddings).index.generation == bot.index.generation
    assert reads == [], "the comparison recorded the touched file's new time"


def test_chunks_are_searched_exactly_not_approximately(tmp_path):
    """Chroma's default HNSW search misses about a quarter of the true ten nearest among 3,000
    scattered vectors, and its graph differs between builds; a segment is searched
    exhaustively instead, so retrieval is exact and the same on every machine."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    settings = settings_for(tmp_path, tmp_path / "corpus")
    index = Index(settings, DeterministicFakeEmbedding(size=384))
    chunks = index.handle("chunks", "segment", create=True)
    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(3000, 384)).astype(np.float32)
    for first in range(0, len(vectors), 500):
        ids = [str(n) for n in range(first, first + 500)]
        chunks.add(ids=ids, embeddings=vectors[first : first + 500])
    questions = generator.normal(size=(40, 384)).astype(np.float32)
    found = chunks.query(query_embeddings=questions, n_results=10, include=[])["ids"]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    nearest = np.argsort(-(questions @ unit.T), axis=1)[:, :10]
    assert found == [[str(n) for n in row] for row in nearest]
