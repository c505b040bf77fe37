"""The packaged model and our adapters: their hashes are checked, and the ONNX paths (questions
and documents) give sentence-transformers' vectors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant.embed import (
    MiniLMEmbeddings,
    ModelIntegrityError,
    packaged_model_path,
    verify_weights,
)
from assistant.index import embeddings_identity
from assistant.onnx_model import BATCH_TOKENS, MAX_TOKENS, _length_sorted_batches
from assistant.tuned_model import ADAPTER_FILE, CONFIG_FILE, shipped_tuning

SENTENCE = "The Phase I trial will enrol 18 patients with chronic spinal cord injury."
CHUNK = (
    "SHANGHAI, March 3, 2025 -- XellSmart Bio-Pharmaceutical today announced that the FDA has "
    "cleared its IND application for XS228, an allogeneic iPSC-derived motor neuron progenitor "
    "cell therapy for subacute spinal cord injury. The multicentre trial will evaluate safety, "
    "tolerability and preliminary efficacy, with the first patients expected to be dosed at "
    "hospitals in the United States later this year, the company said in a statement."
)
OVER_MAX_TOKENS = " ".join(["Orphan drug designation for XS228 was granted in 2023."] * 40)
# Each row: texts of very different lengths (an empty-ish one, one over 256 word pieces), in
# an order that is not their length order, so a lost permutation shows as a wrong row.
TEXT_SETS = {
    "long first": [OVER_MAX_TOKENS, "", SENTENCE, "x", CHUNK],
    "short first": [" ", SENTENCE, CHUNK, OVER_MAX_TOKENS, "XS228"],
    "many batches": [CHUNK, SENTENCE, OVER_MAX_TOKENS] * 4 + ["", "Which hospital?"] * 6,
}


def test_the_packaged_weights_pass_the_hash_check():
    verify_weights(packaged_model_path())


def test_other_weights_fail_with_a_clear_message(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError, match="expected 53aa5117"):
        verify_weights(tmp_path)
    with pytest.raises(ModelIntegrityError, match="no model weights"):
        verify_weights(tmp_path / "missing")


def test_the_tuned_model_embeds_differently_and_is_named_apart(embeddings):
    """The adapters change the vectors, so an index built without them (or with others) must
    not be searched with them: the manifest's identity tells the two apart."""
    packaged = MiniLMEmbeddings(tuned=False)
    assert embeddings.tuning == shipped_tuning()
    assert embeddings_identity(embeddings) != embeddings_identity(packaged)
    assert embeddings.identity_suffix == f"tuned:{shipped_tuning().sha256[:12]}"
    tuned = embeddings.embed_with_sentence_transformers([SENTENCE, CHUNK])
    plain = packaged.embed_with_sentence_transformers([SENTENCE, CHUNK])
    assert np.allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    assert np.abs(tuned - plain).max() > 1e-2


@pytest.mark.parametrize("damage", ["truncated", "missing", "unreadable record"])
def test_damaged_adapters_fail_with_a_clear_message(tmp_path, damage):
    adapter, config = tmp_path / ADAPTER_FILE.name, tmp_path / CONFIG_FILE.name
    adapter.write_bytes(ADAPTER_FILE.read_bytes()[: -10 if damage == "truncated" else None])
    config.write_text(CONFIG_FILE.read_text())
    if damage == "missing":
        adapter.unlink()
    if damage == "unreadable record":
        config.write_text("{not json")
    expected = {"truncated": "has sha256", "missing": "missing", "unreadable record": "cannot"}
    with pytest.raises(ModelIntegrityError, match=expected[damage]):
        shipped_tuning(adapter, config)


def test_questions_embed_the_same_on_the_fast_path(bot):
    fast = bot.embeddings._onnx
    assert fast is not None, "the ONNX model should be in use"
    questions = ["Which hospital will run the trial?", "wat r the cels derived frm", "XS228"]
    slow = bot.embeddings.embed_with_sentence_transformers(questions)
    quick = np.asarray([fast.embed(q) for q in questions])
    assert np.abs(slow - quick).max() < 1e-4


@pytest.mark.parametrize("texts", TEXT_SETS.values(), ids=TEXT_SETS.keys())
def test_documents_embed_through_onnx_as_sentence_transformers_would(embeddings, texts):
    assert embeddings._onnx is not None, "documents should go through the ONNX export"
    got = np.asarray(embeddings.embed_documents(texts))
    expected = embeddings.embed_with_sentence_transformers(texts)
    assert got.shape == expected.shape
    assert np.einsum("ij,ij->i", got, expected).min() >= 0.999  # row by row: order kept
    assert np.abs(got - expected).max() < 1e-4
    reversed_order = np.asarray(embeddings.embed_documents(texts[::-1]))
    assert np.abs(reversed_order[::-1] - got).max() < 1e-6


def test_threads_embedding_at_once_get_the_vectors_of_one_at_a_time(embeddings):
    assert embeddings._onnx is not None, "documents should go through the ONNX export"
    work = [texts for texts in TEXT_SETS.values() for _ in range(2)]
    alone = [np.asarray(embeddings.embed_documents(texts)) for texts in work]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(embeddings.embed_documents, work))
    for one, other in zip(alone, together, strict=True):
        assert np.abs(one - np.asarray(other)).max() < 1e-6


def test_documents_embed_without_importing_torch(embeddings, tmp_path):
    """With the export made, an ingest's embedding needs neither torch nor
    sentence-transformers: both are slow to import and large to hold."""
    embeddings.prepare_fast_queries()
    saved = tmp_path / "vectors.json"
    code = """
import json, sys
from pathlib import Path
from assistant.embed import MiniLMEmbeddings
cache_dir, saved, texts = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
vectors = MiniLMEmbeddings(cache_dir=Path(cache_dir)).embed_documents(texts)
saved.write_text(json.dumps(vectors))
print(sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
"""
    arguments = [str(embeddings.cache_dir), str(saved), json.dumps(TEXT_SETS["long first"])]
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    expected = embeddings.embed_with_sentence_transformers(TEXT_SETS["long first"])
    assert np.abs(np.asarray(json.loads(saved.read_text())) - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("cache_dir", "warnings"),
    [
        pytest.param(None, 0, id="no cache_dir"),
        pytest.param("a-file/cache", 1, id="export fails, warned once"),
    ],
)
def test_without_the_export_sentence_transformers_embeds(
    embeddings, tmp_path, caplog, cache_dir, warnings
):
    (tmp_path / "a-file").write_text("a file where the cache folder would go")
    fallback = MiniLMEmbeddings(cache_dir=tmp_path / cache_dir if cache_dir else None)
    texts = TEXT_SETS["short first"]
    with caplog.at_level(logging.WARNING, logger="assistant.onnx_model"):
        fallback.prepare_fast_queries()
        got = np.asarray(fallback.embed_documents(texts))
        fallback.prepare_fast_queries()  # a failed export is not tried again
        question = fallback.embed_query(SENTENCE)
    assert len([r for r in caplog.records if r.name.startswith("assistant")]) == warnings
    assert fallback._onnx is None
    assert np.abs(got - embeddings.embed_with_sentence_transformers(texts)).max() < 1e-6
    assert np.abs(np.asarray(question) - embeddings.embed_query(SENTENCE)).max() < 1e-4


@pytest.mark.parametrize(
    "lengths",
    [
        pytest.param([], id="nothing"),
        pytest.param([7], id="one"),
        pytest.param([MAX_TOKENS, 3, 40, 3, MAX_TOKENS, 120, 9], id="mixed"),
        pytest.param([30] * 100, id="many sentences"),
        pytest.param([MAX_TOKENS] * 5, id="long only"),
    ],
)
def test_batches_are_length_sorted_and_within_the_token_budget(lengths):
    batches = list(_length_sorted_batches(lengths))
    rows = [row for batch in batches for row in batch]
    assert sorted(rows) == list(range(len(lengths)))
    assert [lengths[row] for row in rows] == sorted(lengths)
    for batch in batches:
        padded = len(batch) * max(lengths[row] for row in batch)
        assert padded <= BATCH_TOKENS or len(batch) == 1
