"""The eval sets' data: every set loads, is balanced, covers its documents, and the held-out set
has no near-twin of a question anyone could tune against.

Failures name case ids only: the held-out questions are never printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.evals import Case, load_cases

PROJECT = Path(__file__).resolve().parent.parent
EVALS = PROJECT / "evals"
SETS = ("fit", "dev", "heldout")
NEAR_TWIN = 0.9  # cosine of MiniLM question embeddings


@pytest.fixture(scope="session")
def eval_sets() -> dict[str, list[Case]]:
    """Each multi-document set's cases (loading checks every support verbatim)."""
    return {name: load_cases(EVALS / "corpora" / name / "cases.yaml") for name in SETS}


def other_case_files() -> list[Path]:
    """Every case file that is not the held-out set: the golden set, the other sets' files and
    any other evals/*.yaml that holds cases."""
    loose = [p for p in sorted(EVALS.glob("*.yaml")) if p.name != "thresholds.yaml"]
    return loose + [EVALS / "corpora" / name / "cases.yaml" for name in SETS if name != "heldout"]


@pytest.mark.parametrize("name", SETS)
def test_each_set_loads_is_balanced_and_covers_its_documents(eval_sets, name):
    folder = EVALS / "corpora" / name
    cases = eval_sets[name]
    to_refuse = sum(not c.answerable for c in cases)
    assert to_refuse * 3 >= len(cases), f"{name}: {to_refuse} of {len(cases)} to refuse"
    prefix = f"evals/corpora/{name}/"
    assert all(c.source.startswith(prefix) for c in cases), f"{name}: a source outside {folder}"
    documents = {p.name for p in folder.glob("*.txt")}
    covered = {Path(c.source).name for c in cases}
    assert documents, f"{name}: no documents"
    assert not documents - covered, f"{name}: documents without a case"
    assert not covered - documents, f"{name}: cases on a missing document"


def test_no_held_out_question_is_a_near_twin_of_another_sets(eval_sets, embeddings):
    held = eval_sets["heldout"]
    others = [c for path in other_case_files() for c in load_cases(path)]

    def unit(cases: list[Case]) -> np.ndarray:
        vectors = np.asarray(embeddings.embed_documents([c.question for c in cases]))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    rows, columns = np.nonzero(unit(held) @ unit(others).T >= NEAR_TWIN)
    pairs = [f"{held[i].id} ~ {others[j].id}" for i, j in zip(rows, columns, strict=True)]
    assert not pairs, "held-out near-twins (cosine >= 0.9): " + ", ".join(pairs)
