"""The embedding model as we ship it: the packaged MiniLM with LoRA adapters tuned on our QA corpus.

The packaged all-MiniLM-L6-v2 was trained to put texts on the same *topic* close together, so
among one document's sentences it often ranks a sentence that repeats the question's words
above the one that answers it. Tuned on our training questions, each paired with the sentence
that answers it and contrasted with the best-ranked sentence of the same document that does not
(``python -m assistant.train_embedding``, the first step of ``make train``), it puts the
answering sentence first more often; ``embedding_adapter.json`` records the figures.

Only what differs from the packaged model ships: low-rank matrices for every attention and
feed-forward layer (``embedding_adapter.safetensors``, under 3 MB), checked by sha256 against
``embedding_adapter.json``. They are merged into the hash-checked packaged weights when the
model loads (and the result exported to ONNX once, so embedding needs no torch afterwards). The
index's manifest names the adapters' hash: vectors of a retrained model are never mixed with
older ones, the index is rebuilt instead.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.model_identity import ModelIntegrityError, file_sha256

ADAPTER_FILE = Path(__file__).with_name("embedding_adapter.safetensors")
CONFIG_FILE = ADAPTER_FILE.with_suffix(".json")
# Adapters on the encoder's layers only, by full name: the pooler (which sentence-transformers
# does not use) also has a ``dense`` layer, and whether it is loaded depends on the loader.
LAYERS = r".*encoder\.layer\.\d+\..*\.({targets})"


@dataclass(frozen=True)
class Tuning:
    """The adapters' shape (written by the training script) and the hash of their file."""

    rank: int
    alpha: int
    targets: tuple[str, ...]
    sha256: str = ""

    @property
    def name(self) -> str:
        """How the index's manifest and the ONNX export's file name tell these adapters apart."""
        return f"tuned:{self.sha256[:12]}"

    def lora_config(self, dropout: float = 0.0):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            target_modules=LAYERS.format(targets="|".join(self.targets)),
            lora_dropout=dropout,
        )

    def merged(self, encoder, adapter: Path = ADAPTER_FILE):
        """``encoder`` (the packaged weights, as transformers loads them) with the adapters
        merged in: a plain model again, as fast as the packaged one."""
        from peft import get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        tuned = get_peft_model(encoder, self.lora_config())
        loaded = set_peft_model_state_dict(tuned, load_file(str(adapter)))
        if loaded.unexpected_keys or any("lora_" in key for key in loaded.missing_keys):
            raise ModelIntegrityError(f"{adapter} does not fit the packaged model's layers")
        return tuned.merge_and_unload().eval()

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, data: dict) -> Tuning:
        return cls(int(data["rank"]), int(data["alpha"]), tuple(data["targets"]), data["sha256"])


@functools.cache
def shipped_tuning(adapter: Path = ADAPTER_FILE, config: Path = CONFIG_FILE) -> Tuning:
    """The shipped adapters' settings, once their file is checked against the hash recorded
    beside it: a damaged or swapped adapter must fail loudly, not quietly embed differently."""
    try:
        tuning = Tuning.from_dict(json.loads(config.read_text(encoding="utf-8"))["adapter"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelIntegrityError(
            f"the embedding adapters' record {config} cannot be read ({error!r}); "
            "reinstall the package or run python -m assistant.train_embedding"
        ) from error
    if not adapter.is_file():
        raise ModelIntegrityError(f"the embedding adapters are missing ({adapter})")
    digest = file_sha256(adapter)
    if digest != tuning.sha256:
        raise ModelIntegrityError(
            f"{adapter} has sha256 {digest}, but {config.name} names {tuning.sha256}: "
            "reinstall the package or run python -m assistant.train_embedding"
        )
    return tuning
