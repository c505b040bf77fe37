"""An ONNX export of the packaged MiniLM: questions one at a time, documents in batches.

Exported from the hash-checked weights, with mean pooling and normalisation inside the graph,
then checked against sentence-transformers on probe texts, one at a time and as a padded batch;
the export's own sha256 is kept beside it and checked at every load, so a damaged file is
re-made rather than trusted.  Loading it needs neither torch nor sentence-transformers.

Documents are embedded in batches of similar length (sorted by word pieces, each batch padded
to its own longest), because a padded token costs as much as a real one: a sentence batched with
an 800-character chunk would be computed at the chunk's length.  The batch sizes and threading
below were measured on a 2-core machine (``benchmarks/embed_speed.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from assistant.model_identity import MODEL_SHA256, file_sha256
from assistant.tuned_model import Tuning

logger = logging.getLogger(__name__)

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
# A batch holds at most this many word pieces, padding included: about 16 sentences or two
# 800-character chunks.  Measured: 256 to 512 is fastest, 1024 about 10% slower and 4096 30 to
# 35% slower (attention over long padded batches no longer fits the cache).
BATCH_TOKENS = 512
# Batches run side by side, each on one thread: on this 2-core machine (busy with other work)
# that embedded 1.7 times as fast as one batch at a time on ONNX Runtime's two spinning
# intra-op threads, and 1.1 to 1.5 times as fast as on two that do not spin.  Measured on 2
# cores only: on a larger machine, try `benchmarks/embed_speed.py --workers N`.
WORKERS = min(2, os.cpu_count() or 1)
DRAFT_PREFIX = "onnx-export-"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PROBES = [
    "Which hospital will run the trial?",
    "x",
    "",
    "In 2023, a cell therapy for CNS diseases received FDA approval and orphan drug designation.",
    # Over 256 word pieces: the export must cut it where sentence-transformers does.
    " ".join(["The Phase I trial enrols adults with chronic spinal cord injury in Shanghai."] * 30),
]
TOLERANCE = 1e-4

Reference = Callable[[list[str]], np.ndarray]


class OnnxMiniLM:
    """Tokenizer plus one ONNX Runtime session, safe to use from several threads at once."""

    def __init__(self, model_dir: Path, onnx_path: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        # ORT_DISABLE_TELEMETRY (set by the package) stops the uploader when onnxruntime loads;
        # this stops new events as well, should onnxruntime have loaded before the package.
        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        # One thread per run: parallelism comes from running batches side by side (WORKERS),
        # and a lone question, a dozen word pieces, gains nothing from a second thread.
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.dimensions = int(self.session.get_outputs()[0].shape[-1])

    def embed(self, text: str) -> list[float]:
        """One question's vector (no padding, so no batching work)."""
        encoding = self.tokenizer.encode(text)
        feeds = {
            name: np.asarray([values], dtype=np.int64)
            for name, values in zip(
                INPUTS, (encoding.ids, encoding.attention_mask, encoding.type_ids), strict=True
            )
        }
        return self.session.run(None, feeds)[0][0].tolist()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``, in their order, one row each (float32, L2-normalised)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        batches = list(_length_sorted_batches([len(encoding.ids) for encoding in encodings]))

        def run(rows: list[int]) -> np.ndarray:
            return self.session.run(None, padded([encodings[row] for row in rows]))[0]

        if WORKERS == 1 or len(batches) < 2:
            results = [run(rows) for rows in batches]
        else:
            with ThreadPoolExecutor(WORKERS, thread_name_prefix="embed") as pool:
                results = list(pool.map(run, batches))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for rows, got in zip(batches, results, strict=True):
            vectors[rows] = got
        return vectors

    @classmethod
    def open_or_export(
        cls, model_dir: Path, cache_dir: Path, reference: Reference, tuning: Tuning | None = None
    ) -> OnnxMiniLM | None:
        """Load the checked export from ``cache_dir``, making it first when missing or damaged.

        ``reference`` embeds texts with sentence-transformers, which the export must reproduce;
        ``tuning`` names the adapters merged into the packaged weights, if any.
        Returns None (texts then go through sentence-transformers) when export fails.
        """
        tuned = f"-{tuning.sha256[:12]}" if tuning else ""
        onnx_path = cache_dir / f"minilm-{MODEL_SHA256[:12]}{tuned}.onnx"
        record = onnx_path.with_suffix(".json")
        try:
            if not recorded_ok(onnx_path, record):
                _export(model_dir, onnx_path, record, reference, tuning)
            return cls(model_dir, onnx_path)
        except Exception as error:  # the slow path still embeds correctly
            logger.warning("ONNX embedding unavailable (%s); using sentence-transformers", error)
            return None


def _length_sorted_batches(lengths: Sequence[int]) -> Iterator[list[int]]:
    """Row numbers grouped shortest first, each group within ``BATCH_TOKENS`` once padded."""
    batch: list[int] = []
    for row in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Sorted, so this row is the batch's longest: padding brings every row to its length.
        if batch and (len(batch) + 1) * lengths[row] > BATCH_TOKENS:
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def padded(encodings: list) -> dict[str, np.ndarray]:
    """The model's inputs for a batch, each row zero-padded to the batch's longest."""
    longest = max(len(encoding.ids) for encoding in encodings)
    feeds = {name: np.zeros((len(encodings), longest), dtype=np.int64) for name in INPUTS}
    for row, encoding in enumerate(encodings):
        for name, values in zip(
            INPUTS, (encoding.ids, encoding.attention_mask, encoding.type_ids), strict=True
        ):
            feeds[name][row, : len(values)] = values
    return feeds


def recorded_ok(onnx_path: Path, record: Path) -> bool:
    """Whether the export at ``onnx_path`` is the file its record names (by sha256)."""
    try:
        expected = json.loads(record.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return False
    return onnx_path.is_file() and file_sha256(onnx_path) == expected


def _export(
    model_dir: Path, onnx_path: Path, record: Path, reference: Reference, tuning: Tuning | None
) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    class MeanPooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoder = AutoModel.from_pretrained(str(model_dir)).eval()
    if tuning is not None:
        encoder = tuning.merged(encoder)
    sample = tokenizer([PROBES[0]], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in onnx_path.parent.glob(f"{DRAFT_PREFIX}*"):  # left by a killed export
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=onnx_path.parent, prefix=DRAFT_PREFIX) as scratch:
        draft = Path(scratch) / onnx_path.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                MeanPooled(encoder),
                tuple(sample[name] for name in INPUTS),
                str(draft),
                input_names=list(INPUTS),
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        candidate = OnnxMiniLM(model_dir, draft)
        expected = np.asarray(reference(PROBES))
        one_by_one = np.asarray([candidate.embed(probe) for probe in PROBES])
        batched = candidate.embed_batch(PROBES)
        if max(np.abs(expected - got).max() for got in (one_by_one, batched)) > TOLERANCE:
            raise RuntimeError("the ONNX export does not reproduce sentence-transformers")
        os.replace(draft, onnx_path)
    tuned = {"adapters": tuning.sha256} if tuning else {}
    record.write_text(
        json.dumps({"sha256": file_sha256(onnx_path), "model": MODEL_SHA256, **tuned})
    )
