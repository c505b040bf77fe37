"""Putting an answer into words: whole source sentences, each quoted at its exact offsets.

Also what a refusal shows instead (the closest passages, with their best sentence marked) and
the overview a "what is this about?" question gets: each document's headline and its most
central sentences (by embedding centrality, as LexRank does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from langchain_core.documents import Document

from assistant.answer.collection import Collection
from assistant.answer.types import MARKER, Answer, Citation, Passage

# A refusal says what was found, not that the documents are silent: on documents it was not
# fitted on, about half the questions the answerer refuses are answered somewhere in them.
REFUSAL = "I could not find the answer in the documents."
HEDGE = "I could not confirm this in the documents; the closest passage says:"
OVERVIEW_SENTENCES = 2  # central sentences quoted after a document's headline
OVERVIEW_DOCUMENTS = 5  # headlines listed when a collection is asked what it is about
MIN_BODY_CHARS = 60  # shorter lines are datelines, headings or contacts, not overview material


def quote(collection: Collection, positions: Sequence[int], score: float) -> Answer:
    """An answer quoting ``positions`` best first, each preceded by any sentence it leans on
    ("In 2023, ... . The following year, they ..."), each marked with its citation number."""
    ordered: list[int] = []
    for position in positions:
        for needed in (collection.previous(position), position):
            if needed is not None and needed not in ordered:
                ordered.append(needed)
    spans = collection.spans
    pieces, citations = [], []
    for n, position in enumerate(ordered, start=1):
        span = spans[position]
        text = span.text.rstrip()
        citations.append(
            Citation(n, span.source, span.start, span.start + len(text), text, round(score, 4))
        )
        body, stop = (text[:-1], text[-1]) if text[-1] in ".!?" else (text, ".")
        pieces.append(f"{body} [{n}]{stop}")
    return Answer(" ".join(pieces), citations)


def hedge(
    collection: Collection,
    documents: Sequence[Document],
    candidates: Sequence[int],
    probabilities: np.ndarray,
) -> Answer:
    """The sentence the documents come closest with, quoted and cited, and said to be
    unconfirmed: the reader could not tell whether it holds what was asked. The next closest
    passages come with it (``closest``), as a refusal's do."""
    best = int(np.argmax(probabilities))
    quoted = quote(collection, [candidates[best]], float(probabilities[best]))
    others = [i for i in range(len(candidates)) if i != best]
    nearby = closest_passages(
        collection, documents, [candidates[i] for i in others], probabilities[others], limit=2
    )
    return Answer(f"{HEDGE} {quoted.text}", quoted.citations, hedged=True, closest=nearby)


def refusal(
    collection: Collection,
    documents: Sequence[Document],
    candidates: Sequence[int],
    probabilities: np.ndarray,
) -> Answer:
    """A refusal showing the passages that came closest."""
    closest = closest_passages(collection, documents, candidates, probabilities)
    return Answer(REFUSAL, refused=True, closest=closest)


def closest_passages(
    collection: Collection,
    documents: Sequence[Document],
    candidates: Sequence[int],
    probabilities: np.ndarray,
    limit: int = 3,
) -> list[Passage]:
    """The ``limit`` passages that came closest, each around its best sentence and within the
    chunk that held it, so the offsets stay exact."""
    spans = collection.spans
    order = np.argsort(-probabilities) if len(probabilities) else []
    closest: list[Passage] = []
    for index in order:
        position = candidates[int(index)]
        best = spans[position]
        chunk = next(
            (
                d
                for d in documents
                if d.metadata["source"] == best.source
                and d.metadata["start"] <= best.start
                and best.end <= d.metadata["end"]
            ),
            None,
        )
        if chunk is None or any(p.start <= best.start < p.end for p in closest):
            continue
        start, end = best.start, best.end
        for neighbour in (position - 1, position + 1):
            if 0 <= neighbour < len(spans) and spans[neighbour].source == best.source:
                other = spans[neighbour]
                if chunk.metadata["start"] <= other.start and other.end <= chunk.metadata["end"]:
                    start, end = min(start, other.start), max(end, other.end)
        offset = chunk.metadata["start"]
        text = chunk.page_content[start - offset : end - offset]
        closest.append(
            Passage(
                best.source,
                start,
                end,
                text,
                best.start,
                best.end,
                round(float(probabilities[int(index)]), 4),
            )
        )
        if len(closest) == limit:
            break
    return closest


def overview(collection: Collection, sources: Sequence[str]) -> Answer:
    """One document: its headline and its most central sentences.  Several: their headlines."""
    if len(sources) == 1:
        positions = collection.by_source[sources[0]]
        body = [
            p
            for p in positions
            if not collection.read[p].headline
            and not collection.read[p].boilerplate
            and len(collection.spans[p].text) >= MIN_BODY_CHARS
        ]
        central: list[int] = []
        if body:
            vectors = collection.vectors(body)
            centrality = (vectors @ vectors.T).mean(axis=1)
            central = [body[int(i)] for i in np.argsort(-centrality)[:OVERVIEW_SENTENCES]]
        return quote(collection, [positions[0], *central], 1.0)
    headlines = [collection.by_source[s][0] for s in sources[:OVERVIEW_DOCUMENTS]]
    answer = quote(collection, headlines, 1.0)
    more = len(sources) - len(headlines)
    suffix = f" ({more} more documents are not listed.)" if more > 0 else ""
    return Answer(
        f"The documents announce: {answer.text}{suffix}", answer.citations, answer.refused
    )


def combine(answers: Sequence[Answer], parts: Sequence[str]) -> Answer:
    """A question in several parts: each part's answer in turn, markers renumbered; the parts
    the documents do not answer are named, and cite nothing."""
    if all(answer.refused for answer in answers):
        closest = [p for answer in answers for p in answer.closest][:3]
        return Answer(REFUSAL, refused=True, closest=closest)
    texts, citations, missing = [], [], []
    for answer, part in zip(answers, parts, strict=True):
        if answer.refused:
            missing.append(f'"{part.strip(" ,?")}"')
            continue
        shift = len(citations)
        texts.append(MARKER.sub(lambda m, s=shift: f"[{int(m.group(1)) + s}]", answer.text))
        citations += [replace(c, n=c.n + shift) for c in answer.citations]
    if missing:
        texts.append(f"The documents do not answer {'; '.join(missing)}.")
    hedged = all(answer.hedged for answer in answers if not answer.refused)
    return Answer(" ".join(texts), citations, hedged=hedged)
