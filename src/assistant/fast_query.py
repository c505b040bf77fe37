"""An ONNX export of the packaged MiniLM, used only to embed questions quickly.

Exported from the hash-checked weights, with mean pooling and normalisation inside the graph,
then checked against sentence-transformers on probe sentences; the export's own sha256 is kept
beside it and checked at every load, so a damaged file is re-made rather than trusted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embed import MODEL_SHA256, file_sha256

logger = logging.getLogger(__name__)

MAX_TOKENS = 256
DRAFT_PREFIX = "onnx-export-"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PROBES = [
    "Which hospital will run the trial?",
    "x",
    "In 2023, a cell therapy for CNS diseases received FDA approval and orphan drug designation.",
]


class FastQueryModel:
    """Tokenizer plus ONNX Runtime session: no torch import on the question path."""

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
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, text: str) -> list[float]:
        encoding = self.tokenizer.encode(text)
        feeds = {
            name: np.asarray([values], dtype=np.int64)
            for name, values in zip(
                INPUTS, (encoding.ids, encoding.attention_mask, encoding.type_ids), strict=True
            )
        }
        return self.session.run(None, feeds)[0][0].tolist()

    @classmethod
    def open_or_export(
        cls, model_dir: Path, cache_dir: Path, reference: Any
    ) -> FastQueryModel | None:
        """Load the checked export from ``cache_dir``, making it first when missing or damaged.

        Returns None (questions then go through sentence-transformers) when export fails.
        """
        onnx_path = cache_dir / f"minilm-{MODEL_SHA256[:12]}.onnx"
        record = onnx_path.with_suffix(".json")
        try:
            if not _recorded_ok(onnx_path, record):
                _export(model_dir, onnx_path, record, reference)
            return cls(model_dir, onnx_path)
        except Exception as error:  # the slow path still answers correctly
            logger.warning("fast question embedding unavailable (%s); using the slower path", error)
            return None


def _recorded_ok(onnx_path: Path, record: Path) -> bool:
    try:
        expected = json.loads(record.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return False
    return onnx_path.is_file() and file_sha256(onnx_path) == expected


def _export(model_dir: Path, onnx_path: Path, record: Path, reference: Any) -> None:
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
        candidate = FastQueryModel(model_dir, draft)
        expected = np.asarray(reference.embed_documents(PROBES))
        got = np.asarray([candidate.embed(probe) for probe in PROBES])
        if float(np.abs(expected - got).max()) > 1e-4:
            raise RuntimeError("the ONNX export does not reproduce sentence-transformers")
        os.replace(draft, onnx_path)
    record.write_text(json.dumps({"sha256": file_sha256(onnx_path), "model": MODEL_SHA256}))
