"""The scale benchmark's generated newsroom: reproducible, varied, and readable by the loader.

The benchmark itself is not run here (minutes per collection size); these check that what it
measures is the collection it claims: the same bytes for the same seed, releases that are not
one text with names swapped, and files the assistant's loader reads.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from assistant.load import load_corpus

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def newsroom():
    spec = importlib.util.spec_from_file_location("newsroom", BENCHMARKS / "newsroom.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["newsroom"] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    del sys.modules["newsroom"]


def sentences(text: str) -> list[str]:
    return [part for part in re.split(r"(?<=[.!?”])\s+|\n+", text) if part.strip()]


def test_the_same_seed_writes_the_same_bytes(newsroom, tmp_path):
    first = newsroom.write_collection(tmp_path / "first", 12, seed=3)
    again = newsroom.write_collection(tmp_path / "again", 12, seed=3)
    other = newsroom.write_collection(tmp_path / "other", 12, seed=4)
    assert [path.name for path in first] == [path.name for path in again]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in again]
    assert {path.read_bytes() for path in first}.isdisjoint(path.read_bytes() for path in other)


def test_a_smaller_collection_is_the_start_of_a_larger_one(newsroom):
    """So figures at N=100 and N=2000 are taken on the same first hundred releases."""
    assert newsroom.generate_collection(10) == newsroom.generate_collection(30)[:10]


def test_releases_are_not_one_text_with_names_swapped(newsroom):
    releases = newsroom.generate_collection(20)
    said = [sentence for release in releases for sentence in sentences(release.text)]
    assert len(set(said)) / len(said) > 0.9
    vocabulary = {word.lower() for word in re.findall(r"[A-Za-z]+", " ".join(said))}
    assert len(vocabulary) > 1500
    companies = {release.text.split("About ", 1)[1].split("\n")[0] for release in releases}
    assert len(companies) >= 10  # several releases per company, as in a newsroom, but many


def test_releases_are_the_size_of_real_ones(newsroom):
    """The issue's reference: 300 press releases of 1.9 MB, about 6 KB each."""
    sizes = [len(release.text.encode()) for release in newsroom.generate_collection(60)]
    assert 4500 < sum(sizes) / len(sizes) < 7500
    assert min(sizes) > 1500


def test_the_loader_reads_every_release_as_written(newsroom, tmp_path):
    paths = newsroom.write_collection(tmp_path, 40)
    documents = {Path(document.path).name: document.text for document in load_corpus(tmp_path)}
    assert documents == {path.name: path.read_text(encoding="utf-8") for path in paths}
    assert {path.suffix for path in paths} == {".txt", ".md"}


def test_questions_have_known_answers_or_none(newsroom):
    releases = newsroom.generate_collection(30)
    asked = newsroom.questions(releases, 40)
    assert len({fact.question for fact in asked}) == 40
    unanswerable = [fact for fact in asked if fact.answer is None]
    assert len(unanswerable) == 8
    for release in releases:
        for fact in release.facts:
            assert fact.answer in release.text, fact
    few = newsroom.questions(releases[:3], 40)
    assert sum(fact.answer is None for fact in few) == round(len(few) * 0.2)  # the same mix
    everything = "\n".join(release.text for release in releases)
    for fact in unanswerable:
        named = re.search(r"(?:did|led) (\w+)", fact.question)
        assert named is None or named.group(1) not in everything, fact
