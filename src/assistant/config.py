"""Settings: one frozen object, read once, passed explicitly.

Precedence is keyword arguments, then ``ASSISTANT_*`` environment variables, then defaults,
so a test or a program can pin any value while an operator can still steer a deployment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "ASSISTANT_"
# In the corpus folder, beside the documents: the questions the page suggests (a YAML list).
# Not a document: the corpus walk leaves it out.
EXAMPLES_FILE = "examples.yaml"


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline can be told, with the defaults the evals were tuned on."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    data_dir: Path = Path("data")
    k: int = 6
    answerer: str = "extractive"
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    chunk_size: int = 800
    chunk_overlap: int = 160
    max_sentences: int = 3
    max_question_chars: int = 2000
    chroma_host: str | None = None
    chroma_port: int = 8000
    auth: str | None = field(default=None, repr=False)
    max_file_mb: float = 20.0
    allow_uploads: bool = False  # the page may add and remove documents (a login off loopback)
    reader: bool = False  # the trained reader decides (opt-in until it beats the judge)
    trusted_proxies: str = ""  # comma-separated addresses or networks whose X-Forwarded-For counts

    def __post_init__(self) -> None:
        for name in ("corpus_dir", "index_dir", "data_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be at least 1, got {self.max_sentences}")
        if self.max_question_chars < 1:
            raise ValueError("max_question_chars must be at least 1")
        if not 0 < self.chroma_port < 65536:
            raise ValueError(f"chroma_port must be a port number, got {self.chroma_port}")
        if not (math.isfinite(self.max_file_mb) and self.max_file_mb > 0):
            raise ValueError(f"max_file_mb must be a number above 0, got {self.max_file_mb}")
        for proxy in filter(None, (part.strip() for part in self.trusted_proxies.split(","))):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies must list IP addresses or networks, got {proxy!r}"
                ) from None

    @property
    def max_file_bytes(self) -> int:
        """``max_file_mb`` in bytes (1 MB = 2**20 bytes), the unit the loader counts in."""
        return int(self.max_file_mb * 2**20)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``overrides``, then ``ASSISTANT_*`` variables, then defaults."""
        environ = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, declared in known.items():
            if overrides.get(name) is not None:
                values[name] = overrides[name]
            elif (raw := environ.get(ENV_PREFIX + name.upper())) not in (None, ""):
                values[name] = _parse(raw, declared, name)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (the object itself never changes)."""
        return dataclasses.replace(self, **changes)


def project_root(cases_path: Path | str) -> Path:
    """The folder eval cases' sources are relative to: the parent of the ``evals`` folder
    holding the file (so ``evals/cases.yaml`` and ``evals/corpora/<set>/cases.yaml`` agree),
    else the folder above the file's folder.  Here rather than with the evals, since the page
    writes draft cases too and must not load the eval runner to do it."""
    path = Path(cases_path).resolve()
    for folder in path.parents:
        if folder.name == "evals":
            return folder.parent
    return path.parent.parent


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _parse_bool(raw: str) -> bool:
    """A switch as operators write it; anything else is a mistake worth stopping for, since
    guessing could turn on what they meant to leave off."""
    word = raw.strip().lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(raw)
    return word in _TRUE


# How an environment variable's text becomes a field's value, by the field's declared type;
# any other type (str, str | None) takes the text as it is.
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "bool": (_parse_bool, "true or false (or yes/no, 1/0)"),
    "int": (int, "a whole number"),
    "float": (float, "a number"),
    "Path": (Path, "a path"),
}


def _parse(raw: str, field: dataclasses.Field, name: str) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    for type_name, (parse, described) in _PARSERS.items():
        if kind.startswith(type_name):
            try:
                return parse(raw)
            except ValueError as error:
                raise ValueError(
                    f"{ENV_PREFIX}{name.upper()} must be {described}, got {raw!r}"
                ) from error
    return raw
