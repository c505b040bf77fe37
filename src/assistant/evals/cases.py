"""Eval cases: the labels every score is measured against, checked when they are read.

A *case* is a question (with optional history) that is either answerable, with the facts the
answer must contain and the supporting passage copied verbatim from its source, or must be
refused.  The support is checked against the source at load time so a label cannot silently
drift from the document it describes; a case that cannot hold raises ``CaseError`` naming it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from assistant.config import project_root

T = TypeVar("T")

KINDS = (
    "fact",
    "paraphrase",
    "typo",
    "list",
    "span",
    "multiturn",
    "overview",
    "name",
    "definition",
    "unanswerable",
    "hostile",
)


class CaseError(ValueError):
    """A set of cases is malformed; the message names the case."""


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    question: str
    answerable: bool
    facts: tuple[tuple[str, ...], ...] = ()
    support: str = ""
    source: str = ""
    history: tuple[tuple[str, str], ...] = ()
    brief: str = ""  # the instructions its question was written to (terse, chatty, ...)


def load_cases(path: Path | str, root: Path | None = None) -> list[Case]:
    """Read and validate a set of cases; relative sources resolve against ``root``
    (by default ``project_root(path)``)."""
    path = Path(path)
    root = Path(root) if root is not None else project_root(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, list):
        data = {"cases": data}
    default_source = (data.get("defaults") or {}).get("source", "")
    cases, seen = [], set()
    for number, raw in enumerate(data.get("cases") or [], start=1):
        cid = str(raw.get("id") or f"#{number}")
        if cid in seen:
            raise CaseError(f"case {cid}: duplicate id")
        seen.add(cid)
        cases.append(_parse_case(cid, raw, default_source, root))
    if not cases:
        raise CaseError(f"{path} holds no cases")
    return cases


def _parse_case(cid: str, raw: dict[str, Any], default_source: str, root: Path) -> Case:
    def fail(message: str) -> CaseError:
        return CaseError(f"case {cid}: {message}")

    missing = {"question", "kind", "answerable"} - set(raw)
    if missing:
        raise fail(f"missing {', '.join(sorted(missing))}")
    if not isinstance(raw["answerable"], bool):  # e.g. a draft from `assistant feedback export`
        raise fail(
            "answerable must be true or false (fill it in when reviewing a draft), "
            f"not {raw['answerable']!r}"
        )
    if raw["kind"] not in KINDS:
        raise fail(f"kind {raw['kind']!r} is not one of {', '.join(KINDS)}")
    history = tuple(tuple(turn) for turn in raw.get("history") or ())
    if any(len(turn) != 2 or not all(isinstance(t, str) for t in turn) for turn in history):
        raise fail("history must be a list of [user, assistant] string pairs")
    facts = tuple(
        tuple(str(a) for a in (fact if isinstance(fact, list) else [fact]))
        for fact in raw.get("facts") or ()
    )
    support = str(raw.get("support") or "")
    source = str(raw.get("source") or default_source)
    if raw["answerable"]:
        if not facts or not support or not source:
            raise fail("an answerable case needs facts, support and a source")
        path = resolve_source(source, root)
        if not path.is_file():
            raise fail(f"source {source} does not exist")
        if support not in read_source(path):
            raise fail(f"support is not a verbatim substring of {source}: {support!r}")
        for alternatives in facts:
            if not any(norm(a) in norm(support) for a in alternatives):
                raise fail(f"no alternative of fact {list(alternatives)} is in the support")
    elif facts or support:
        raise fail("a case to refuse has no facts or support")
    question = str(raw["question"])
    brief = str(raw.get("brief") or "")
    return Case(
        cid, raw["kind"], question, bool(raw["answerable"]), facts, support, source, history, brief
    )


def resolve_source(source: str, root: Path) -> Path:
    path = Path(source)
    if path.is_absolute() or path.exists():
        return path
    return root / path


def read_source(path: Path | str) -> str:
    """A source's text as citations index it: UTF-8 with universal newlines for text files,
    the loader's extraction for other formats (PDF, HTML)."""
    from assistant.load import load_document

    return load_document(Path(path)).text


def norm(text: str) -> str:
    """Text as facts are matched in it: ``[n]`` markers dropped, curly apostrophes straightened,
    lower case, whitespace collapsed."""
    text = re.sub(r"\[\d+\]", " ", text).replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.lower().split())


def by_document_fraction(items: list[T], fraction: float, seed: int) -> list[T]:
    """The items (each with a ``source``) of a ``fraction`` of the training documents (whole
    documents, fixed seed): the learning curves' smaller training sets, for the embedding
    model, the scorer and the reader."""
    documents = sorted({item.source for item in items})
    random.Random(seed).shuffle(documents)
    kept = set(documents[: max(1, round(fraction * len(documents)))])
    return [item for item in items if item.source in kept]
