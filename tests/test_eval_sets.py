"""The eval sets' data: every set loads, is balanced, covers its documents, and no held-out set
has a near-twin of a question anyone could tune against.

Failures name case ids only: the held-out questions are never printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.evals import SET_NAMES, Case, load_cases
from assistant.evals.runner import HELD_OUT

PROJECT = Path(__file__).resolve().parent.parent
EVALS = PROJECT / "evals"
SETS = tuple(name for name in SET_NAMES if name != "golden")  # each a folder of documents
NEAR_TWIN = 0.9  # cosine of MiniLM question embeddings


@pytest.fixture(scope="session")
def eval_sets() -> dict[str, list[Case]]:
    """Each multi-document set's cases (loading checks every support verbatim)."""
    return {name: load_cases(EVALS / "corpora" / name / "cases.yaml") for name in SETS}


def tuned_case_files() -> list[Path]:
    """Every case file that is not held out: the golden set, the fit and dev sets' files and
    any other evals/*.yaml that holds cases."""
    loose = [p for p in sorted(EVALS.glob("*.yaml")) if p.name != "thresholds.yaml"]
    tuned = [name for name in SETS if name not in HELD_OUT]
    return loose + [EVALS / "corpora" / name / "cases.yaml" for name in tuned]


# Written and audited for fitting but not fitted on (README, Evals): kept loadable as a set.
SPARE = "spare"


@pytest.mark.parametrize("name", [*SETS, SPARE])
def test_each_set_loads_is_balanced_and_covers_its_documents(eval_sets, name):
    folder = EVALS / "corpora" / name
    cases = eval_sets[name] if name in eval_sets else load_cases(folder / "cases.yaml")
    to_refuse = sum(not c.answerable for c in cases)
    assert to_refuse * 3 >= len(cases), f"{name}: {to_refuse} of {len(cases)} to refuse"
    prefix = f"evals/corpora/{name}/"
    assert all(c.source.startswith(prefix) for c in cases), f"{name}: a source outside {folder}"
    documents = {p.name for p in folder.glob("*.txt")}
    covered = {Path(c.source).name for c in cases}
    assert documents, f"{name}: no documents"
    assert not documents - covered, f"{name}: documents without a case"
    assert not covered - documents, f"{name}: cases on a missing document"


@pytest.fixture(scope="module")
def tuned_cases() -> list[Case]:
    return [c for path in tuned_case_files() for c in load_cases(path)]


def unit_vectors(embeddings, cases: list[Case]) -> np.ndarray:
    vectors = np.asarray(embeddings.embed_documents([c.question for c in cases]))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tuned_vectors(tuned_cases, vector_memory) -> np.ndarray:
    return unit_vectors(vector_memory, tuned_cases)


@pytest.mark.parametrize("name", HELD_OUT)
def test_no_held_out_question_is_a_near_twin_of_a_tuned_one(
    eval_sets, vector_memory, tuned_cases, tuned_vectors, name
):
    held = eval_sets[name]
    rows, columns = np.nonzero(unit_vectors(vector_memory, held) @ tuned_vectors.T >= NEAR_TWIN)
    pairs = [f"{held[i].id} ~ {tuned_cases[j].id}" for i, j in zip(rows, columns, strict=True)]
    assert not pairs, "held-out near-twins (cosine >= 0.9): " + ", ".join(pairs)


@pytest.mark.parametrize("name", HELD_OUT)
def test_each_held_out_set_has_a_brief_no_tuned_set_was_written_to(eval_sets, tuned_cases, name):
    """Questions written to the fit set's instructions share its habits: a held-out set must
    also measure wording of a kind nothing was tuned on."""
    briefs = {c.brief for c in eval_sets[name]}
    assert briefs - {c.brief for c in tuned_cases}, f"{name}: every brief is also a tuned set's"


@pytest.mark.parametrize("name", [name for name in SETS if name.startswith("release")])
def test_the_release_sets_ask_about_the_shipped_release_as_it_is(name):
    """They measure the product's own document in new words: their copy is the shipped file,
    byte for byte, so an edit of the release cannot leave them scoring an older text."""
    (copy,) = (EVALS / "corpora" / name).glob("*.txt")
    assert copy.read_bytes() == (PROJECT / "corpus" / copy.name).read_bytes()
