"""Loading and chunking: bad files are skipped by name, offsets are exact by construction."""

from __future__ import annotations

import logging
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.chunk import chunk_document, split_sentences
from assistant.load import SourceDocument, load_corpus


def tiny_pdf(path, words: str) -> None:
    """A one-page PDF showing ``words``, built with pypdf (which has no text-drawing call)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=100)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 12 Tf 10 50 Td ({words}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(content)
    with open(path, "wb") as stream:
        writer.write(stream)


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("The trial runs at a hospital.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Notes\n\nMarkdown is read too.", encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "page.html").write_text(
        "<html><head><title>t</title><script>var secret = 1;</script></head>"
        "<body><p>Visible words.</p><style>p{}</style></body></html>",
        encoding="utf-8",
    )
    tiny_pdf(tmp_path / "report.pdf", "Hello from page one")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    with caplog.at_level(logging.WARNING):
        documents = {doc.path.split("/")[-1]: doc for doc in load_corpus(tmp_path)}
    assert set(documents) == {"good.txt", "notes.md", "page.html", "report.pdf"}
    assert documents["page.html"].text == "Visible words."
    assert "Hello from page one" in documents["report.pdf"].text
    assert documents["report.pdf"].page_of(0) == 1
    warnings = [record.getMessage() for record in caplog.records]
    skipped = ("binary.txt", "latin1.txt", "empty.txt", "image.png", "broken.pdf")
    assert len(warnings) == len(skipped), warnings  # pypdf's own messages among them, by name
    for name in skipped:
        assert len([message for message in warnings if name in message]) == 1, warnings


def test_a_pdf_read_despite_problems_is_named_with_what_pypdf_said(tmp_path, caplog):
    """pypdf mends a PDF whose cross-reference offset is wrong, and says so without naming the
    file: the loader keeps the text and gives pypdf's words in one warning that names it."""
    tiny_pdf(tmp_path / "mended.pdf", "Hello from page one")
    raw = (tmp_path / "mended.pdf").read_bytes()
    (tmp_path / "mended.pdf").write_bytes(re.sub(rb"startxref\s+\d+", b"startxref\n7", raw))
    with caplog.at_level(logging.WARNING):
        (document,) = load_corpus(tmp_path)
    assert "Hello from page one" in document.text
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "mended.pdf" in warning
    assert "pypdf said: incorrect startxref pointer" in warning


def test_corpus_chunks_fit_the_model_and_match_the_source(corpus_text):
    from transformers import AutoTokenizer

    from assistant.embed import packaged_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    document = SourceDocument("corpus/x.txt", corpus_text)
    chunks = chunk_document(document, 800, 160)
    assert len(chunks) > 3
    for chunk in chunks:
        assert corpus_text[chunk.start : chunk.end] == chunk.text
        assert len(tokenizer(chunk.text)["input_ids"]) <= 256
    sentences = split_sentences(document)
    assert sentences[0].text.startswith("FDA Approves")
    assert sentences[1].text == "27 May 2025"
    assert any(s.text.startswith("The following year, they launched") for s in sentences)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("abc XYZ.,!?\n\n\t-'é")), min_size=1, max_size=3000),
    size=st.integers(min_value=20, max_value=400),
)
def test_every_span_is_exactly_its_source_text(text, size):
    document = SourceDocument("doc.txt", text)
    for span in chunk_document(document, size, size // 5) + split_sentences(document):
        assert text[span.start : span.end] == span.text
        assert span.text.strip()
