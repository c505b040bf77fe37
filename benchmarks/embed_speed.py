"""Document embedding speed: sentence-transformers against the ONNX paths, in one run.

    python benchmarks/embed_speed.py [--texts 2000] [--batch-tokens 512] [--workers 2]

The texts are what an ingest embeds: a third ~800-character chunks, two thirds sentences, cut
from corpus/ and the dev and fit documents under evals/ (repeated to --texts), handed over in
the index's batches (chunks first, then sentences).  Each batch goes through every variant in
turn, so a machine busy with other work slows them alike and the ratios hold.  Variants:
sentence-transformers fp32 (batch 32, the reference), the ONNX fp32 export as ingest uses it
(length-sorted batches), and two int8 dynamic quantisations of that export, which ingest does
not use (see the "gate" column: cosine >= 0.99 against the reference for every text).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from assistant import onnx_model
from assistant.chunk import chunk_document, split_sentences
from assistant.config import Settings
from assistant.embed import MiniLMEmbeddings, packaged_model_path
from assistant.index import BATCH
from assistant.load import load_document

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = [
    PROJECT / "corpus",
    PROJECT / "evals" / "corpora" / "dev",
    PROJECT / "evals" / "corpora" / "fit",
]
GATE = 0.99
TARGET = 2.0
INGEST = "ONNX fp32, length-sorted (ingest)"

Embed = Callable[[list[str]], np.ndarray]


def ingest_texts(count: int) -> tuple[list[str], list[str]]:
    """``count`` texts as an ingest cuts them: (chunks, sentences), a third and two thirds."""
    settings = Settings.load(environ={})
    chunks: list[str] = []
    sentences: list[str] = []
    for path in sorted(path for folder in SOURCES for path in folder.glob("*.txt")):
        document = load_document(path)
        chunks += [
            span.text
            for span in chunk_document(document, settings.chunk_size, settings.chunk_overlap)
        ]
        sentences += [span.text for span in split_sentences(document)]
    chunk_count = count // 3
    return (
        list(itertools.islice(itertools.cycle(chunks), chunk_count)),
        list(itertools.islice(itertools.cycle(sentences), count - chunk_count)),
    )


def quantised(fp32_path: Path, folder: Path, keep_ffn_output: bool) -> Path:
    """An int8 dynamic quantisation of the export (per channel, matrix products only);
    ``keep_ffn_output`` leaves each layer's feed-forward output product in fp32, the one whose
    quantisation costs the most accuracy (measured by leaving out one group at a time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path), load_external_data=False)
    kept = [
        node.name
        for node in model.graph.node
        if keep_ffn_output
        and node.op_type == "MatMul"
        and node.name.endswith("/output/dense/MatMul")
        and "/attention/" not in node.name
    ]
    target = folder / f"int8-{'ffn-fp32' if keep_ffn_output else 'all'}.onnx"
    logging.disable(logging.WARNING)  # its advice to pre-process, printed for every model
    try:
        quantize_dynamic(
            fp32_path,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=kept,
        )
    finally:
        logging.disable(logging.NOTSET)
    return target


def measure(
    variants: dict[str, Embed], batches: list[list[str]]
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds and vectors per variant, every batch through every variant in a rotating order."""
    seconds = dict.fromkeys(variants, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in variants}
    names = list(variants)
    for number, batch in enumerate(batches):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            started = time.perf_counter()
            vectors[name].append(np.asarray(variants[name](batch)))
            seconds[name] += time.perf_counter() - started
    return seconds, {name: np.concatenate(parts) for name, parts in vectors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000, help="how many spans to embed")
    parser.add_argument("--batch-tokens", type=int, default=onnx_model.BATCH_TOKENS)
    parser.add_argument("--workers", type=int, default=onnx_model.WORKERS)
    options = parser.parse_args()
    onnx_model.BATCH_TOKENS = options.batch_tokens
    onnx_model.WORKERS = options.workers

    chunks, sentences = ingest_texts(options.texts)
    batches = [
        kind[start : start + BATCH]
        for kind in (chunks, sentences)
        for start in range(0, len(kind), BATCH)
    ]
    with tempfile.TemporaryDirectory(prefix="embed-speed-") as scratch:
        folder = Path(scratch)
        reference = MiniLMEmbeddings()
        ingest = MiniLMEmbeddings(cache_dir=folder)
        ingest.prepare_fast_queries()
        fp32_path = next(folder.glob("minilm-*.onnx"))
        model_dir = packaged_model_path()
        int8_all = onnx_model.OnnxMiniLM(
            model_dir, quantised(fp32_path, folder, keep_ffn_output=False)
        )
        int8_ffn = onnx_model.OnnxMiniLM(
            model_dir, quantised(fp32_path, folder, keep_ffn_output=True)
        )
        variants: dict[str, Embed] = {
            "sentence-transformers fp32, batch 32": reference.embed_with_sentence_transformers,
            INGEST: ingest.embed_documents,
            "ONNX int8, all matrix products": int8_all.embed_batch,
            "ONNX int8, FFN outputs fp32": int8_ffn.embed_batch,
        }
        for embed in variants.values():  # load and warm up outside the clock
            embed([chunks[0], sentences[0]])
        seconds, vectors = measure(variants, batches)

    base = next(iter(variants))
    base_rate = options.texts / seconds[base]
    print(
        f"{options.texts} spans ({len(chunks)} chunks, {len(sentences)} sentences) in batches "
        f"of {BATCH}; ONNX: {onnx_model.BATCH_TOKENS} word pieces a batch, "
        f"{onnx_model.WORKERS} workers"
    )
    print(f"{'variant':40} {'spans/s':>8} {'ratio':>6} {'min cos':>8} {'mean cos':>9}  gate")
    for name in variants:
        rate = options.texts / seconds[name]
        cosines = np.einsum("ij,ij->i", vectors[name], vectors[base])
        gate = "-" if name == base else "pass" if cosines.min() >= GATE else "fail"
        print(
            f"{name:40} {rate:8.1f} {rate / base_rate:6.2f} "
            f"{cosines.min():8.5f} {cosines.mean():9.5f}  {gate}"
        )
    ratio = seconds[base] / seconds[INGEST]
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"target: ingest >= {TARGET:.0f}x sentence-transformers spans/s: {ratio:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
