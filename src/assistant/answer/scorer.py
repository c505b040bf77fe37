"""The fitted part of the decision: which sentence answers best, and whether it answers at all.

Three small models, fitted by ``python -m assistant.evals.fit`` and saved in
``scorer.json`` beside this module (data refitted by the script, never edited by hand):

- the *ranker* weighs each (question, sentence) pair's ``FEATURES``: which sentence answers;
- the *prior* weighs the question's embedding alone: how often questions worded like it are
  answered by a press release at all (price, side effects and drop-outs seldom are);
- the *judge* weighs the best sentence's features with the question's own (how much of it the
  collection knows, how far ahead the best sentence is): whether that sentence is the answer.
  It is a few small networks averaged, not one line of weights: its features count together
  (a wanted kind of answer says something only beside the verb asked about; an unknown name
  only in a yes-or-no question), and on the dev documents it answered more while refusing more.
All three are fitted on the ``fit`` documents; how much the prior counts beside the judge, and
the threshold their combination must reach, are chosen on the ``dev`` ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np

from assistant.answer.features import FEATURES

MODEL_FILE = Path(__file__).with_name("scorer.json")
JUDGE_FEATURES = (
    "best",  # the ranker's probability for the best sentence
    "lead",  # how far it is ahead of the second
    *(f"best_{name}" for name in FEATURES),  # the best sentence's own features
    "top_cosine",  # the highest cosine among all candidates
    "typed_without_verb",  # wants a kind of answer, and the best lacks the question's verb
    "typed_not_beside",  # wants a kind of answer, and none stands by the thing asked about
    "typed_anywhere",  # some candidate holds the wanted kind of answer
    "polar_unknown_name",  # a yes-or-no question about something the collection never names
)
_TYPED, _VERB, _NEAR, _MISSING, _UNKNOWN_NAME = (
    FEATURES.index(name)
    for name in ("typed", "verb_here", "type_near_focus", "type_missing", "unknown_name")
)


@dataclass(frozen=True)
class Linear:
    """A standardised logistic model: ``sigmoid(((x - mean) / scale) @ weights + bias)``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        z = ((rows - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Linear:
        return cls(
            np.asarray(data["mean"]),
            np.asarray(data["scale"]),
            np.asarray(data["weights"]),
            float(data["bias"]),
        )


@dataclass(frozen=True)
class Networks:
    """Small networks fitted alike from different seeds, their chances averaged. Each member
    standardises its input, has one hidden layer of rectified units and a logistic output:
    ``sigmoid(relu(((x - mean) / scale) @ hidden + hidden_bias) @ weights + bias)``. One such
    network depends on its seed (on the dev documents, single ones ranged over half the gap
    the network closes); the average does not."""

    mean: np.ndarray
    scale: np.ndarray
    hidden: np.ndarray  # members x features x units
    hidden_bias: np.ndarray  # members x units
    weights: np.ndarray  # members x units
    bias: np.ndarray  # members

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        inputs = (rows - self.mean) / self.scale
        units = np.einsum("nf,mfu->mnu", inputs, self.hidden) + self.hidden_bias[:, None, :]
        logits = np.einsum("mnu,mu->mn", np.maximum(units, 0), self.weights) + self.bias[:, None]
        return (1.0 / (1.0 + np.exp(-logits))).mean(axis=0)

    def to_dict(self) -> dict:
        return {field.name: getattr(self, field.name).tolist() for field in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Networks:
        return cls(*(np.asarray(data[field.name]) for field in fields(cls)))


def judge_row(rows: np.ndarray, probabilities: np.ndarray, polar: bool) -> np.ndarray:
    """What the judge sees of one question's candidates; ``polar``: the question asks yes or
    no ("Is it approved in Europe?"), so a name it gives must be in the answer to confirm it."""
    order = np.argsort(-probabilities)
    best = probabilities[order[0]]
    second = probabilities[order[1]] if len(order) > 1 else 0.0
    top = rows[order[0]]
    typed = top[_TYPED]
    return np.concatenate(
        [
            [best, best - second],
            top,
            [
                rows[:, 0].max(),
                typed * (1 - top[_VERB]),
                typed * (1 - rows[:, _NEAR].max()),
                typed * (1 - rows[:, _MISSING].min()),
                float(polar) * top[_UNKNOWN_NAME],
            ],
        ]
    )


def pooled(chance: float, prior: float, prior_weight: float) -> float:
    """Two chances that a question is answered, pooled as the weighted mean of their
    log-odds (the normalised logarithmic opinion pool), ``prior_weight`` on the prior's.

    A weighted geometric mean of the chances themselves, used before, pools only the odds of
    answering: the log of a chance flattens near 1 (a judge at 0.9 and one at 0.99 differ by
    0.1 in log, 2.4 in log-odds), so among confident judges the prior alone decided. On the
    dev documents the pooled log-odds tell answerable questions from the others better (area
    under the ROC curve 0.774 against 0.746 with equal weights, 0.735 against 0.724 at a
    quarter on the prior)."""
    odds = (1 - prior_weight) * _log_odds(chance) + prior_weight * _log_odds(prior)
    return float(1.0 / (1.0 + np.exp(-odds)))


def _log_odds(chance: float) -> float:
    chance = min(max(chance, 1e-6), 1 - 1e-6)  # a sure 0 or 1: infinite odds, nothing beside
    return float(np.log(chance / (1 - chance)))


@dataclass(frozen=True)
class Scorer:
    """Rank candidates (``probability``); answer when the prior and the judge together
    reach ``threshold`` (``answers``); a second sentence is quoted when its rank probability is
    within ``margin`` of the best."""

    ranker: Linear
    prior: Linear
    judge: Networks
    threshold: float
    margin: float
    prior_weight: float = 0.0

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return self.ranker(rows)

    def question_prior(self, asked: np.ndarray) -> float:
        """The chance that a question worded like this is answered by a press release at all,
        from its embedding alone ("how much will it cost", "what side effects" seldom are)."""
        return float(self.prior(np.asarray(asked, dtype=np.float64)[None, :])[0])

    def confidence(self, rows: np.ndarray, probabilities: np.ndarray, polar: bool) -> float:
        """The judge's chance that the best-ranked sentence answers the question."""
        if not len(rows):
            return 0.0
        return float(self.judge(judge_row(rows, probabilities, polar)[None, :])[0])

    def answers(
        self, rows: np.ndarray, probabilities: np.ndarray, asked: np.ndarray, polar: bool
    ) -> bool:
        """Answer when the two chances together reach ``threshold``: that questions worded like
        this one are answered by such documents (the prior), and that the best sentence is the
        answer (the judge); ``prior_weight`` says how much the first counts (``pooled``)."""
        if not len(rows):
            return False
        prior, judge = self.question_prior(asked), self.confidence(rows, probabilities, polar)
        return pooled(judge, prior, self.prior_weight) >= self.threshold

    def with_decision(self, threshold: float, margin: float, prior_weight: float) -> Scorer:
        return Scorer(self.ranker, self.prior, self.judge, threshold, margin, prior_weight)

    def to_dict(self, **about: object) -> dict:
        return {
            "features": list(FEATURES),
            "judge_features": list(JUDGE_FEATURES),
            "ranker": self.ranker.to_dict(),
            "prior": self.prior.to_dict(),
            "judge": self.judge.to_dict(),
            "threshold": self.threshold,
            "prior_weight": self.prior_weight,
            "margin": self.margin,
            **about,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scorer:
        if tuple(data["features"]) != FEATURES or tuple(data["judge_features"]) != JUDGE_FEATURES:
            raise ValueError(
                "scorer.json was fitted on other features: run python -m assistant.evals.fit"
            )
        return cls(
            Linear.from_dict(data["ranker"]),
            Linear.from_dict(data["prior"]),
            Networks.from_dict(data["judge"]),
            float(data["threshold"]),
            float(data["margin"]),
            float(data["prior_weight"]),
        )


@cache
def default_scorer() -> Scorer:
    return Scorer.from_dict(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
