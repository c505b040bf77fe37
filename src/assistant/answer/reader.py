"""The reader: reads the question against one sentence and says whether the sentence holds
what is asked.

A MiniLM cross-encoder: the packaged all-MiniLM-L6-v2 reads ``[CLS] question [SEP] sentence
[SEP]`` whole, so it sees whether the *detail* asked for (a number, a name, a date, a reason)
is in the sentence, not only whether the two are about the same thing, which is all that a
cosine between separate embeddings can say. It was tuned on our QA corpus
(``evals/corpora/``: questions written blind under several briefs, a third or more of them
near-misses the documents do not answer) by ``python -m assistant.train``.

Only what differs from the packaged model ships (``reader/adapter.safetensors``: LoRA
matrices for every attention and feed-forward layer, and the head), checked by sha256 against
``reader/reader.json``. At first use the adapters are merged into the hash-checked packaged
weights and exported to ONNX in the index folder, so answering never imports torch; the
export's own hash is kept beside it and checked at every load.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.answer.scorer import pooled
from assistant.model_identity import MODEL_SHA256, file_sha256
from assistant.onnx_model import INPUTS as TEXT_INPUTS
from assistant.onnx_model import padded as padded_tokens
from assistant.onnx_model import recorded_ok

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

READER_DIR = Path(__file__).with_name("reader")
ADAPTER_FILE = READER_DIR / "adapter.safetensors"
CONFIG_FILE = READER_DIR / "reader.json"
INPUTS = (*TEXT_INPUTS, "features")
DRAFT_PREFIX = "reader-export-"
TOLERANCE = 1e-3  # logits of the export against the merged torch model on probe pairs
PROBES = [
    ("Which hospital will run the trial?", "The trial will be run at Mercy General Hospital."),
    ("how much did they raise", "The company raised $40 million in a Series B round."),
    ("x", ""),
]


@dataclass(frozen=True)
class Decision:
    """How the reader's best probability becomes one of three outcomes, chosen on the dev
    documents by the training script. The confidence is the reader's best probability and the
    scorer's prior for the question (how often questions worded like it are answered at all),
    pooled as the scorer pools them (``scorer.pooled``, ``prior_weight`` on the prior). At or
    above ``answer`` the best sentences are quoted (a second one when the reader puts it within
    ``margin`` of the best); from ``hedge`` up, the best is quoted as what the documents come
    closest to saying; below it, the documents are judged silent and the answer is a refusal.
    ``shortlist`` is how many of the ranker's best candidates the reader reads."""

    answer: float
    hedge: float
    margin: float
    shortlist: int = 8
    prior_weight: float = 0.0

    def confidence(self, best: float, prior: float) -> float:
        return pooled(best, prior, self.prior_weight)

    @classmethod
    def read(cls, path: Path = CONFIG_FILE) -> Decision:
        return cls(**json.loads(path.read_text(encoding="utf-8"))["decision"])

    def to_dict(self) -> dict:
        return asdict(self)


class ReaderUnavailable(RuntimeError):
    """The reader's adapters are missing or are not the files ``reader.json`` names."""


@dataclass(frozen=True)
class ReaderConfig:
    """How the adapters were made and are applied; written by the training script."""

    rank: int
    alpha: int
    targets: tuple[str, ...]
    layers: tuple[int, ...]  # the encoder layers that get adapters (the lower ones stay)
    max_tokens: int
    features: int  # how many of the answerer's FEATURES the head weighs beside the text
    sha256: str  # of adapter.safetensors

    @classmethod
    def read(cls, path: Path = CONFIG_FILE) -> ReaderConfig:
        data = json.loads(path.read_text(encoding="utf-8"))["adapter"]
        return cls(
            int(data["rank"]),
            int(data["alpha"]),
            tuple(data["targets"]),
            tuple(int(n) for n in data["layers"]),
            int(data["max_tokens"]),
            int(data["features"]),
            str(data["sha256"]),
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": list(self.targets), "layers": list(self.layers)}


def verified_config(adapter: Path = ADAPTER_FILE, config: Path = CONFIG_FILE) -> ReaderConfig:
    if not adapter.is_file() or not config.is_file():
        raise ReaderUnavailable(
            f"the reader's adapters are missing ({adapter}): run python -m assistant.train"
        )
    try:
        settings = ReaderConfig.read(config)
    except (ValueError, KeyError, TypeError) as error:
        raise ReaderUnavailable(f"{config} cannot be read ({error!r})") from error
    digest = file_sha256(adapter)
    if digest != settings.sha256:
        raise ReaderUnavailable(
            f"{adapter} has sha256 {digest}, but {config.name} names {settings.sha256}: "
            "reinstall the package or run python -m assistant.train"
        )
    return settings


class Reader:
    """The exported reader: ``probabilities(question, sentences)``, thread-safe."""

    def __init__(self, model_dir: Path, onnx_path: Path, max_tokens: int) -> None:
        import onnxruntime

        self.tokenizer = pair_tokenizer(model_dir, max_tokens)
        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def logits(self, question: str, sentences: Sequence[str], rows: np.ndarray) -> np.ndarray:
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        encodings = self.tokenizer.encode_batch([(question, s) for s in sentences])
        return self.session.run(None, padded(encodings, rows))[0].reshape(-1)

    def probabilities(
        self, question: str, sentences: Sequence[str], rows: np.ndarray
    ) -> np.ndarray:
        """For each sentence, the reader's chance that it holds the answer to ``question``;
        ``rows`` are the sentences' ``FEATURES`` as the answerer measured them."""
        return 1.0 / (1.0 + np.exp(-self.logits(question, sentences, rows).astype(np.float64)))

    @classmethod
    def open(cls, cache_dir: Path, model_dir: Path | None = None) -> Reader:
        """The reader exported in ``cache_dir`` for the shipped adapters, exported first when
        missing or damaged."""
        from assistant.embed import packaged_model_path, verify_weights

        settings = verified_config()
        model_dir = model_dir or packaged_model_path()
        onnx_path = cache_dir / f"reader-{settings.sha256[:12]}-{MODEL_SHA256[:8]}.onnx"
        record = onnx_path.with_suffix(".json")
        if not recorded_ok(onnx_path, record):
            verify_weights(model_dir)
            export(model_dir, ADAPTER_FILE, settings, onnx_path)
            record.write_text(json.dumps({"sha256": file_sha256(onnx_path)}))
        return cls(model_dir, onnx_path, settings.max_tokens)


@functools.cache
def shipped_decision() -> Decision:
    """The decision the training script chose for the shipped reader."""
    return Decision.read()


_opened: dict[Path, Reader | None] = {}
_opening = threading.Lock()


def shipped_reader(cache_dir: Path) -> Reader | None:
    """The shipped reader, exported in ``cache_dir`` on first use and shared by every answerer
    of the process; None (with one warning) when its files are not there."""
    key = Path(cache_dir).resolve()
    with _opening:
        if key not in _opened:
            try:
                _opened[key] = Reader.open(key)
            except ReaderUnavailable as error:
                logger.warning("%s; answering without the reader", error)
                _opened[key] = None
        return _opened[key]


def pair_tokenizer(model_dir: Path, max_tokens: int) -> Tokenizer:
    """The tokenizer for (question, sentence) pairs, shared by training, export and answering.
    The packaged ``tokenizer.json`` pads every text to 128 tokens; without ``no_padding`` a
    batch of short pairs costs as much as one of 128-token pairs (the reader's training took
    55 minutes instead of 8), and truncation cuts the sentence, never the question."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_tokens, strategy="only_second")
    tokenizer.no_padding()
    return tokenizer


def padded(encodings: list, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The model's inputs for a batch: the texts as the embedding model pads them, and the
    answerer's feature rows."""
    feeds = padded_tokens(encodings)
    feeds["features"] = np.asarray(rows, dtype=np.float32).reshape(len(encodings), -1)
    return feeds


class CrossEncoder:
    """The reader as torch sees it: encoder (with LoRA while training), mean pooling, a
    linear head giving one logit. Training (``assistant.train``) and export share it."""

    def __init__(
        self,
        model_dir: Path,
        settings: ReaderConfig,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.settings = settings
        size = settings.features
        self.mean = np.zeros(size) if mean is None else np.asarray(mean)
        self.scale = np.ones(size) if scale is None else np.asarray(scale)

    @cached_property
    def module(self):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(str(self.model_dir), add_pooling_layer=False)
        lora = LoraConfig(
            r=self.settings.rank,
            lora_alpha=self.settings.alpha,
            target_modules=list(self.settings.targets),
            layers_to_transform=list(self.settings.layers),
            lora_dropout=0.1,
        )
        mean = torch.tensor(self.mean, dtype=torch.float32)
        scale = torch.tensor(self.scale, dtype=torch.float32)

        class Scored(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = get_peft_model(encoder, lora)
                self.register_buffer("mean", mean)
                self.register_buffer("scale", scale)
                self.head = torch.nn.Linear(encoder.config.hidden_size + len(mean), 1)

            def forward(self, input_ids, attention_mask, token_type_ids, features):
                hidden = self.encoder(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                measured = (features - self.mean) / self.scale
                return self.head(torch.cat([pooled, measured], dim=-1)).squeeze(-1)

        return Scored()

    def trainable_state(self) -> dict:
        """What ships: the LoRA matrices and the head."""
        return {
            name: tensor.detach().contiguous()
            for name, tensor in self.module.state_dict().items()
            if "lora_" in name or name.startswith("head.") or name in ("mean", "scale")
        }

    def load_trainable(self, path: Path) -> None:
        from safetensors.torch import load_file

        missing = set(self.trainable_state()) - set(load_file(str(path)))
        if missing:
            raise ReaderUnavailable(f"{path} lacks {len(missing)} of the reader's tensors")
        self.module.load_state_dict(load_file(str(path)), strict=False)


def export(model_dir: Path, adapter: Path, settings: ReaderConfig, onnx_path: Path) -> None:
    """Merge ``adapter`` into the packaged weights and write the ONNX reader, checked against
    the merged torch model on probe pairs."""
    import torch

    model = CrossEncoder(model_dir, settings)
    model.load_trainable(adapter)
    scored = model.module.eval()
    scored.encoder = scored.encoder.merge_and_unload()
    tokenizer = pair_tokenizer(model_dir, settings.max_tokens)
    rows = np.random.default_rng(0).normal(size=(len(PROBES), settings.features))
    feeds = padded(tokenizer.encode_batch(PROBES), rows)
    sample = tuple(torch.from_numpy(feeds[name]) for name in INPUTS)
    with torch.no_grad():
        expected = scored(*sample).numpy()
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in onnx_path.parent.glob(f"{DRAFT_PREFIX}*"):  # left by a killed export
        shutil.rmtree(stale, ignore_errors=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in TEXT_INPUTS}
    with tempfile.TemporaryDirectory(dir=onnx_path.parent, prefix=DRAFT_PREFIX) as scratch:
        draft = Path(scratch) / onnx_path.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                scored,
                sample,
                str(draft),
                input_names=list(INPUTS),
                output_names=["logit"],
                dynamic_axes={**axes, "features": {0: "batch"}, "logit": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        session = Reader(model_dir, draft, settings.max_tokens).session
        got = session.run(None, feeds)[0].reshape(-1)
        if np.abs(got - expected).max() > TOLERANCE:
            raise ReaderUnavailable("the reader's ONNX export does not reproduce the model")
        os.replace(draft, onnx_path)
