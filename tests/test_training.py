"""The fitting and training scripts' own decisions, on real parts: the golden guard that keeps a
refit within the release's CI floors, the product weight, and the embedding report's count."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest

from assistant.answer.scorer import Linear, Networks, default_scorer, pooled
from assistant.evals.cases import by_document_fraction
from assistant.evals.fit import (
    GOLDEN_SET,
    GOLDEN_THRESHOLDS,
    Guard,
    Measured,
    _linear,
    _networks,
    _weights,
    answer_of,
    choose,
    measure_set,
    replay,
    unbriefed_priors,
)
from assistant.evals.runner import load_thresholds
from assistant.train_embedding import Candidates, closest_right, packaged_model
from conftest import PROJECT

FLOORS = ("fact_accuracy", "refusal_recall", "refusal_precision")


@pytest.fixture(scope="module")
def golden(embeddings, tmp_path_factory):
    """The golden set measured once, as ``Guard.golden`` measures it, its index kept apart."""
    with contextlib.chdir(PROJECT):
        index_root = str(tmp_path_factory.mktemp("fit-index"))
        return measure_set(*GOLDEN_SET, embeddings, index_root=index_root)


def guard_with(golden, floors) -> Guard:
    measured, answerer = golden
    return Guard(measured, answerer, tuple(floors))


def test_the_shipped_scorer_replays_the_golden_set_within_its_ci_floors(golden):
    floors = load_thresholds(PROJECT / GOLDEN_THRESHOLDS)["min"]
    guard = guard_with(golden, (floors[name] for name in FLOORS))
    assert guard.allows(default_scorer()), guard.replayed(default_scorer())


def test_the_replay_gives_each_golden_question_the_answer_the_answerer_gives(golden):
    """The fit chooses by replaying decisions on measured questions, so a replay must answer as
    ``ExtractiveAnswerer.answer`` does, a question in two parts part by part (replayed whole,
    one refit's choice kept the release's floors in the replay and failed them in CI)."""
    measured, answerer = golden
    assert any(m.parts for m in measured)
    for m in measured:
        expected = answerer.answer(m.question, m.documents)
        got = answer_of(m, answerer, answerer.scorer)
        assert (got.text, got.refused) == (expected.text, expected.refused), m.case.id


def test_the_guard_refuses_a_decision_below_any_floor(golden):
    shipped = default_scorer()
    facts, recall, precision = guard_with(golden, (0, 0, 0)).replayed(shipped)
    assert guard_with(golden, (facts, recall, precision)).allows(shipped)
    assert not guard_with(golden, (facts + 0.01, recall, precision)).allows(shipped)
    assert not guard_with(golden, (facts, recall, precision + 0.01)).allows(shipped)
    refuses_all = shipped.with_decision(1.01, shipped.margin, 0.0)
    got = guard_with(golden, (0, 0, 0)).replayed(refuses_all)
    assert got[1] == 1.0 and got[0] < 0.5  # only overviews and definitions still answer
    assert not guard_with(golden, (facts, recall, precision)).allows(refuses_all)


def test_choosing_under_a_guard_that_allows_nothing_chooses_nothing(golden):
    measured, answerer = golden
    impossible = guard_with(golden, (1.01, 1.01, 1.01))
    assert choose(measured[:10], answerer, default_scorer(), impossible) is None
    chosen, facts, recall = choose(measured[::3], answerer, default_scorer())
    assert 0 < chosen.threshold < 1 and 0 < facts <= 1 and 0 < recall <= 1


def test_each_question_is_replayed_with_the_prior_fitted_without_its_brief(golden):
    """Each brief's prior is fitted on the other briefs' questions, and a question meets its
    own brief's in the replay: a prior that never answers, given for one brief, refuses that
    brief's questions and no others. (The release's questions, split into two briefs.)"""
    measured, answerer = golden
    measured = [
        dataclasses.replace(m, case=dataclasses.replace(m.case, brief="ab"[i % 2]))
        for i, m in enumerate(measured)
    ]
    priors = unbriefed_priors(measured, 1.0, {"a", "b"})
    assert set(priors) == {"a", "b"}
    assert not np.allclose(priors["a"].weights, priors["b"].weights)
    shipped = default_scorer().with_decision(0.5, 0.1, 1.0)  # the prior decides alone
    never = Linear(np.zeros(384), np.ones(384), np.zeros(384), -1e3)
    facts = replay(measured, answerer, shipped)[0]
    one = replay(measured, answerer, shipped, {"a": never, "b": shipped.prior})[0]
    both = replay(measured, answerer, shipped, {"a": never, "b": never})
    assert both[1] == 1.0 and both[0] < one < facts  # overviews, definitions still answer


def test_the_judge_learns_features_that_count_only_together_and_refits_alike():
    """A wanted kind of answer says something only beside the verb asked about: features that
    count together (here as exclusive-or, the extreme case) are what one line of weights cannot
    learn and the judge's networks do. Seeded, a refit from the same rows is the same file."""
    rows = np.random.default_rng(0).integers(0, 2, size=(400, 2)).astype(float)
    labels = (rows[:, 0] != rows[:, 1]).astype(float)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    judge = _networks(rows, labels, np.ones(len(rows)))
    assert (judge(corners) > 0.5).tolist() == [False, True, True, False]
    linear = _linear(rows, labels)
    assert (linear(corners) > 0.5).tolist() != [False, True, True, False]
    again = _networks(rows, labels, np.ones(len(rows)))
    assert json.dumps(again.to_dict()) == json.dumps(judge.to_dict())
    stored = Networks.from_dict(json.loads(json.dumps(judge.to_dict())))
    assert np.allclose(stored(corners), judge(corners), atol=1e-12)


def test_pooled_chances_keep_a_confident_judge_apart_and_weigh_as_told():
    """The two chances are pooled as log-odds: a judge at 0.99 stands further from one at 0.9
    than a geometric mean would put it, a weight of 0 or 1 gives one chance alone, and
    agreeing chances pool to themselves; a sure 0 or 1 stays finite, so the order holds."""
    prior = 0.3
    gap = pooled(0.99, prior, 0.25) - pooled(0.9, prior, 0.25)
    geometric_gap = prior**0.25 * (0.99**0.75 - 0.9**0.75)
    assert gap > 2 * geometric_gap
    assert pooled(0.8, prior, 0.0) == pytest.approx(0.8)
    assert pooled(0.8, prior, 1.0) == pytest.approx(prior)
    assert pooled(0.7, 0.7, 0.5) == pytest.approx(0.7)
    assert 0.0 < pooled(0.0, 0.9, 0.5) < pooled(0.5, 0.9, 0.5) < pooled(1.0, 0.9, 0.5) < 1.0


def test_only_the_releases_own_questions_count_the_product_weight():
    cases = [
        PROJECT / "corpus" / "xellsmart-sci-trial-announcement.txt",
        PROJECT / "evals" / "corpora" / "fit" / "any-document.md",
    ]
    measured = [SimpleNamespace(case=SimpleNamespace(source=str(path))) for path in cases]
    assert _weights(measured, 4.0).tolist() == [4.0, 1.0]
    assert _weights(measured, 1.0).tolist() == [1.0, 1.0]


def test_the_embedding_report_counts_a_ranking_right_when_a_right_sentence_is_closest():
    sentences = [
        "The trial will run at the Third Affiliated Hospital of Sun Yat-sen University.",
        "Spinal cord injury affects more than three million people in China.",
    ]
    question = "Which hospital will run the trial?"
    rankings = [  # the same sentences in two rankings, once labelled right and once wrong
        Candidates(question, sentences, np.array([1, 0])),
        Candidates(question, sentences, np.array([0, 1])),
        Candidates("How many people in China have a spinal cord injury?", sentences[::-1],
                   np.array([1, 0])),
    ]  # fmt: skip
    assert closest_right(packaged_model(), rankings) == {
        "closest_right": 2,
        "of": 3,
        "share": 0.6667,
    }


def test_a_learning_curve_point_keeps_whole_documents_the_same_for_every_training():
    """The reader's, the embedding model's and the scorer's smaller training sets are cut
    alike: whole documents, the same ones for the same seed, whatever the items are."""
    from assistant.train_embedding import Pair

    pairs = [Pair(f"doc{i % 8}.md", f"q{i}", "right", "wrong") for i in range(40)]
    cases = [SimpleNamespace(source=p.source, question=p.question) for p in pairs]
    measured = [Measured(case, *[None] * 8) for case in cases]
    half = by_document_fraction(pairs, 0.5, seed=7)
    assert len({p.source for p in half}) == 4 and len(half) == 20
    assert [c.source for c in by_document_fraction(cases, 0.5, seed=7)] == [p.source for p in half]
    assert [m.source for m in by_document_fraction(measured, 0.5, seed=7)] == [
        p.source for p in half
    ]


def test_a_decision_is_chosen_only_among_those_refusing_as_much_as_ci_holds_dev_to(monkeypatch):
    """The fit never ships a decision the dev gate would fail on refusal recall: the floor is
    dev's thresholds.yaml's, and it binds when refusing less would answer more."""
    from assistant.evals import fit

    dev_floor = load_thresholds(PROJECT / fit.DEV_THRESHOLDS)["min"]["refusal_recall"]
    with contextlib.chdir(PROJECT):
        assert fit.refusal_floor() == dev_floor

    def replay(measured, answerer, scorer, priors=None):  # refuses more, answers less
        return 1 - 1.5 * scorer.threshold, scorer.threshold, 1.0

    monkeypatch.setattr(fit, "replay", replay)
    monkeypatch.setattr(fit, "refusal_floor", lambda: 0.0)
    assert choose([], None, default_scorer())[2] == fit.THRESHOLDS.min()
    monkeypatch.setattr(fit, "refusal_floor", lambda: dev_floor)
    chosen, _, recall = choose([], None, default_scorer())
    assert recall == chosen.threshold == min(t for t in fit.THRESHOLDS if t >= dev_floor)


def test_balanced_accuracy_is_weighed_with_unbriefed_priors_and_the_floors_as_ci_measures(
    monkeypatch,
):
    """With each brief's prior fitted without it, dev's questions are weighed as questions of
    an unseen brief would be; but CI measures dev with the shipped prior, so the floors are
    kept on that replay. Here refusing more always scores better, unbriefed priors refuse
    less (their recall is 0.3 lower), and the fact floor caps the threshold at 0.8."""
    from assistant.evals import fit

    def replay(measured, answerer, scorer, priors=None):
        t = scorer.threshold
        return 1 - t / 2, t - (0.3 if priors else 0.0), 1.0

    monkeypatch.setattr(fit, "replay", replay)
    monkeypatch.setattr(fit, "refusal_floor", lambda: 0.6)
    monkeypatch.setattr(fit, "fact_floor", lambda: 0.6)
    chosen, facts, recall = choose([], None, default_scorer(), priors={"terse": None})
    assert chosen.threshold == 0.8  # kept 0.6 <= t <= 0.8; unbriefed, no t keeps both
    assert (facts, recall) == pytest.approx((0.6, 0.5))  # the figures it was chosen on
    monkeypatch.setattr(fit, "fact_floor", lambda: 0.0)
    assert choose([], None, default_scorer(), priors={"terse": None})[0].threshold == 0.95
    monkeypatch.setattr(fit, "fact_floor", lambda: 0.99)  # none keeps both: refusal first
    assert choose([], None, default_scorer(), priors={"terse": None})[0].threshold == 0.95


def test_the_readers_pairs_are_padded_to_their_batch_not_to_the_model_limit():
    """The packaged tokenizer pads every text to 128 tokens; pairs for training, export and
    answering must not be, or a batch of short pairs costs as much as one of long ones
    (training took 55 minutes instead of 8) and batching by length gains nothing."""
    from assistant.answer.reader import padded, pair_tokenizer
    from assistant.embed import packaged_model_path

    tokenizer = pair_tokenizer(packaged_model_path(), max_tokens=128)
    short = ("Who runs the trial?", "Mercy General Hospital runs the trial.")
    long = ("Which hospital?", " ".join(["The hospital runs many trials."] * 40))
    lengths = [len(encoding.ids) for encoding in tokenizer.encode_batch([short, long])]
    assert lengths[0] < 20 and lengths[1] == 128, "short pairs unpadded, long ones cut"
    feeds = padded(tokenizer.encode_batch([short, short]), np.zeros((2, 3)))
    assert feeds["input_ids"].shape == (2, lengths[0])
    question = tokenizer.encode(long[0]).ids  # [CLS] question [SEP]
    assert tokenizer.encode(*long).ids[: len(question)] == question, "only the sentence is cut"


def test_the_readers_decision_is_chosen_only_among_those_its_gate_allows():
    from assistant.train import choose_decision

    class Allowing(SimpleNamespace):
        def allows(self, decision) -> bool:
            self.asked.append(decision)
            return decision.hedge >= self.from_

    assert choose_decision([], [], Allowing(from_=2.0, asked=[])) is None
    gate = Allowing(from_=0.5, asked=[])
    decision, _ = choose_decision([], [], gate)
    assert decision.hedge >= 0.5 and gate.asked, "the gate was asked, and obeyed"


def test_the_readers_decision_is_the_best_of_its_grid_whose_plain_answers_are_right_enough(
    golden,
):
    """Chosen whole: no decision of the grid (with or without a hedge band) whose plain answers
    are right often enough scores higher; and the figures it reports are the answerer's own,
    replayed case by case. The ranker's chances stand in for the reader's. (On the release's
    questions the two-step choice used before happens to pick the same decision; where it
    did not, on dev, is in ``choose_decision``'s docstring.)"""
    from assistant.evals.fit import right
    from assistant.train import (
        ANSWER_PRECISION,
        MARGINS,
        PRIOR_WEIGHTS,
        THRESHOLDS,
        Decision,
        choose_decision,
        replay,
        shortlisted,
    )

    asked = shortlisted(*golden)
    chances = [a.measured[1].scorer.probability(a.rows) for a in asked]
    decision, got = choose_decision(asked, chances)
    assert replay(asked, chances, decision) == got
    assert got["answers_right"] is None or got["answers_right"] >= ANSWER_PRECISION
    best = got["fact_accuracy"] + got["refusal_recall"]
    for margin, weight, hedge in itertools.product(MARGINS, PRIOR_WEIGHTS, THRESHOLDS[::6]):
        for answer in (hedge, min(hedge + 0.2, 1.0)):
            other = replay(asked, chances, Decision(answer, hedge, margin, 8, weight))
            if (other["answers_right"] or 1.0) >= ANSWER_PRECISION:
                assert other["fact_accuracy"] + other["refusal_recall"] <= best
    hedging = Decision(0.9, 0.3, 0.1, 8, 0.0)
    cells = []
    for a, read in zip(asked, chances, strict=True):
        m, answerer = a.measured
        answer = m.special or answerer.conclude(
            m.reading, m.documents, a.shortlisted, read[: len(a.shortlisted)], hedging, a.prior
        )
        cells.append((answer.refused, answer.hedged, a.case.answerable and right(a.case, answer)))
    got = replay(asked, chances, hedging)
    assert got["hedged_right"] + got["hedged_wrong"] + got["hedged_unanswerable"] == sum(
        hedged and not refused for refused, hedged, _ in cells
    )
    assert got["answered_right"] + got["hedged_right"] == sum(r for *_, r in cells)
    assert got["refused_right"] + got["refused_wrong"] == sum(refused for refused, *_ in cells)
