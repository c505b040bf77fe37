"""Which model weights are which: the packaged MiniLM's hash, and how files are hashed.

Its own module so that the embedding model, its ONNX export and the reader can all name the
weights they were built from without importing one another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelIntegrityError(RuntimeError):
    """The packaged model or its adapters are missing, or are not the expected files."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
