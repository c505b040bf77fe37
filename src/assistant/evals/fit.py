"""Refit the answerer's ``scorer.json``: ``python -m assistant.evals.fit`` from the project root.

1. Fit: every question of the *fit* sets is retrieved for as the assistant would, each candidate
   sentence measured (``FEATURES``) and labelled (1 when it overlaps the case's supporting
   passage or holds its facts; every sentence of a question to refuse is 0).  A logistic
   *ranker* learns from all pairs; a *judge* (small networks) learns, one row per question,
   whether the ranker's best sentence is right, from a ranker fitted without that question's
   document (never, for a near-miss the documents do not answer: those teach it to refuse).
2. Choose: on the *dev* documents (never fitted on), the refusal threshold and the margin for
   quoting a second sentence that answer the most questions with their facts while refusing as
   many of those the documents do not answer as CI holds dev to (its ``thresholds.yaml``),
   replaying the answerer's own decision; among those, only decisions that keep the product's
   own release (the golden set, fitted on) within the floors CI holds it to. The product's own
   questions may count more than others in the prior and the judge (``PRODUCT_WEIGHTS``): the
   weight and decision with the best balanced accuracy on dev that keep the release within its
   gate are shipped.
   Dev's questions were written to the same briefs (terse, chatty, ...) as the fit set's, and
   the prior, which reads only the question's wording, learns a brief's habits: it tells dev's
   answerable questions from the rest with an area under the ROC curve of 0.733 when fitted on
   every brief, 0.669 when fitted without the question's own brief (2026-12-07), near what it
   does on the held-out briefs. So each dev question is replayed with the prior fitted without
   its brief (``unbriefed_priors``), as a question of a brief never seen would be; the chosen
   decision must keep dev's floors (refusal recall, and fact accuracy where any decision keeps
   both) with the prior as shipped, as CI measures them.
The held-out documents are read only by ``--curve``, to report on, never to choose.  Retrieval
is exact (the index searches its chunks exhaustively), so a refit from the same data and model
writes the same file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.answer.compose import combine
from assistant.answer.extractive import ExtractiveAnswerer
from assistant.answer.features import FEATURES
from assistant.answer.reading import Reading, read
from assistant.answer.scorer import MODEL_FILE, Linear, Networks, Scorer, judge_row
from assistant.answer.types import Answer
from assistant.assistant import Assistant
from assistant.embed import load_embeddings
from assistant.evals.cases import by_document_fraction, load_cases, norm
from assistant.evals.runner import HELD_OUT, eval_set, load_thresholds
from assistant.evals.scoring import has_any
from assistant.question import Question

# What the scorer, the reader (``assistant.train``) and the embedding's tuning all learn from.
FIT_SETS = (  # (corpus folder, cases files)
    ("evals/corpora/fit", ("evals/corpora/fit/cases.yaml",)),
    ("corpus", ("evals/cases.yaml", "evals/dev.yaml", "evals/holdout.yaml")),
)
DEV_SET = ("evals/corpora/dev", ("evals/corpora/dev/cases.yaml",))
CURVE_SEED = 1205  # train.py's SEED: the scorer's curve keeps the reader's curve's documents
GOLDEN_SET = ("corpus", ("evals/cases.yaml",))
GOLDEN_THRESHOLDS = "evals/thresholds.yaml"
DEV_THRESHOLDS = "evals/corpora/dev/thresholds.yaml"
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.025), 3)
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # how much the prior counts beside the judge
MARGINS = (0.0, 0.05, 0.1)  # wider margins quote more, and answers grow long
OVERLAP = 0.3  # a sentence is labelled right when it shares this much with the support
PRIOR_C = 0.1  # 384 embedding dimensions from a few hundred questions: regularise firmly
PRODUCT_WEIGHTS = (1.0, 2.0, 4.0, 8.0, 16.0)  # how much one of the release's questions counts
FOLDS = 5  # the judge is fitted on the ranker's verdicts for documents it did not see
# The judge: networks of 32 hidden units, L2 penalty 0.3, five seeds averaged. Compared on the
# dev documents (balanced accuracy at the chosen decision) with the logistic judge (1.248),
# 8 or 16 units, penalties 0.3 to 3, and single networks (1.21 to 1.27, by seed).
JUDGE_UNITS = 32
JUDGE_ALPHA = 0.3
JUDGE_MEMBERS = 5


@dataclass
class Measured:
    """One case, retrieved for and measured once, so decisions can be replayed cheaply."""

    case: object
    question: Question
    reading: Reading
    documents: list
    positions: list[int]
    rows: np.ndarray
    asked: np.ndarray  # the question's embedding
    labels: np.ndarray
    special: object  # the answer when the question bypasses the scorer (overview, definition)
    # A question in several parts ("Where will it run, and who leads it?") is answered part
    # by part: each part measured as the answerer measures it. The whole question's rows
    # still train the models; replays decide the parts, as the answerer does.
    parts: tuple[Measured, ...] = ()

    @property
    def source(self) -> str:
        return self.case.source


def measure_set(
    corpus: str,
    case_files: tuple[str, ...],
    embeddings,
    k: int | None = None,
    index_root: str = "evals/.index",
) -> tuple[list, object]:
    bot = Assistant(
        corpus_dir=corpus, index_dir=f"{index_root}/{Path(corpus).name}", embeddings=embeddings
    )
    if k is not None:
        bot = bot.with_settings(k=k)
    answerer: ExtractiveAnswerer = bot.answerer
    measured = []
    for case_file in case_files:
        if not Path(case_file).exists():
            continue
        for case in load_cases(case_file, root=Path.cwd()):
            history = list(case.history)
            documents = bot.retrieve(case.question, history)
            question = Question.read(case.question, history, answerer.collection.spelling)
            whole = _measured(bot, answerer, case, question, documents)
            parts = question.parts()
            if len(parts) > 1:
                measured_parts = (_measured(bot, answerer, case, p, documents) for p in parts)
                whole = replace(whole, parts=tuple(measured_parts))
            measured.append(whole)
    return measured, answerer


def _measured(bot, answerer: ExtractiveAnswerer, case, question: Question, documents) -> Measured:
    reading = read(question, answerer.collection)
    positions, rows, asked = answerer.measure(question, documents, reading)
    labels = _labels(bot, answerer, case, positions)
    special = answerer.direct(reading, documents)
    return Measured(case, question, reading, documents, positions, rows, asked, labels, special)


def answer_of(m: Measured, answerer: ExtractiveAnswerer, scorer: Scorer) -> Answer:
    """The answer ``answerer`` gives ``m`` under ``scorer``, decided as
    ``ExtractiveAnswerer.answer`` decides it: a question in parts answered part by part."""
    if m.parts:
        answers = [answer_of(part, answerer, scorer) for part in m.parts]
        return combine(answers, [part.question.cleaned for part in m.parts])
    if m.special is not None:
        return m.special
    return answerer.decide(m.reading, m.documents, m.positions, m.rows, m.asked, scorer)


def _labels(bot, answerer: ExtractiveAnswerer, case, positions: list[int]) -> np.ndarray:
    if not case.answerable:
        return np.zeros(len(positions))
    text = bot.source_text(case.source)
    start = text.find(case.support)
    end = start + len(case.support)
    labels = []
    for position in positions:
        span = answerer.collection.spans[position]
        shared = min(end, span.end) - max(start, span.start)
        same_file = Path(span.source).resolve() == Path(case.source).resolve()
        enough = shared >= OVERLAP * min(len(span.text), len(case.support))
        says_it = holds_facts(case, span.text)  # the facts, in other words than the support's
        labels.append(float(same_file and ((start >= 0 and enough) or says_it)))
    return np.asarray(labels)


def holds_facts(case, text: str) -> bool:
    """Every fact of ``case`` in ``text``, matched as the eval harness matches them."""
    text = norm(text)
    return all(has_any(text, alternatives) for alternatives in case.facts)


def right(case, answer) -> bool:
    if not case.answerable:
        return answer.refused
    return not answer.refused and holds_facts(case, answer.text)


def _standardising(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and spread (1 where it never varies), as the models store them."""
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _linear(
    rows: np.ndarray, labels: np.ndarray, strength: float = 1.0, weights: np.ndarray | None = None
) -> Linear:
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardising(rows)
    model = LogisticRegression(C=strength, class_weight="balanced", max_iter=5000)
    model.fit((rows - mean) / scale, labels, sample_weight=weights)
    return Linear(mean, scale, model.coef_[0], float(model.intercept_[0]))


def _networks(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> Networks:
    """The judge's networks, one per seed, fitted with both outcomes weighing alike in all (as
    ``class_weight="balanced"`` in the logistic models); fixed seeds, so a refit writes the
    same file."""
    from sklearn.neural_network import MLPClassifier

    mean, scale = _standardising(rows)
    share = labels.mean()
    balanced = weights * np.where(labels == 1, 0.5 / share, 0.5 / (1 - share))
    members = [
        MLPClassifier(
            hidden_layer_sizes=(JUDGE_UNITS,), alpha=JUDGE_ALPHA, max_iter=2000, random_state=seed
        ).fit((rows - mean) / scale, labels, sample_weight=balanced)
        for seed in range(JUDGE_MEMBERS)
    ]
    return Networks(
        mean,
        scale,
        np.stack([m.coefs_[0] for m in members]),
        np.stack([m.intercepts_[0] for m in members]),
        np.stack([m.coefs_[1][:, 0] for m in members]),
        np.asarray([m.intercepts_[1][0] for m in members]),
    )


def _ranker(scored: list[Measured]) -> Linear:
    return _linear(np.vstack([m.rows for m in scored]), np.concatenate([m.labels for m in scored]))


@dataclass
class Ranked:
    """The ranker, fitted on every labelled pair, and what the judge learns from: one row per
    question (the ranker's verdict on its candidates, from a ranker fitted without that
    question's document) labelled 1 when the question is answerable and the best sentence is
    a right one, 0 for every near-miss. It does not depend on the product's weight, so it is
    fitted once for all of them.

    Out of fold, by document, because the judge will meet the ranker's verdicts on documents
    it was not fitted on: a model judged on its own training documents looks surer than it
    is, and a judge fitted on that trusts it too much."""

    ranker: Linear
    judged: list[Measured]
    rows: np.ndarray
    labels: np.ndarray

    @classmethod
    def fit(cls, measured: list[Measured]) -> Ranked:
        scored = [m for m in measured if len(m.rows) and m.special is None]
        documents = sorted({m.case.source for m in measured})
        rows, labels, judged = [], [], []
        for fold in range(FOLDS):
            held = set(documents[fold::FOLDS])
            ranker = _ranker([m for m in scored if m.case.source not in held])
            for m in (m for m in scored if m.case.source in held):
                probabilities = ranker(m.rows)
                rows.append(judge_row(m.rows, probabilities, m.reading.polar))
                labels.append(float(m.labels[int(np.argmax(probabilities))] == 1))
                judged.append(m)
        return cls(_ranker(scored), judged, np.vstack(rows), np.asarray(labels))


def fit_models(measured: list[Measured], product_weight: float, ranked: Ranked) -> Scorer:
    """The ranker and the judge's rows (``ranked``), the judge and the prior on every
    question's embedding (1 when the documents answer it). In the prior and the judge, a
    question about the product's own release counts ``product_weight`` times."""
    judge = _networks(ranked.rows, ranked.labels, _weights(ranked.judged, product_weight))
    return Scorer(ranked.ranker, _prior(measured, product_weight), judge, 0.5, 0.0, 0.5)


def _weights(measured: list[Measured], product_weight: float) -> np.ndarray:
    return np.asarray([product_weight if _of_release(m) else 1.0 for m in measured])


def _of_release(measured: Measured) -> bool:
    """A question about the product's own release (the golden corpus)."""
    return Path(GOLDEN_SET[0]).resolve() in Path(measured.case.source).resolve().parents


def _prior(measured: list[Measured], product_weight: float = 1.0) -> Linear:
    """Answerable or not, from the question's embedding alone."""
    return _linear(
        np.vstack([m.asked for m in measured]).astype(np.float64),
        np.asarray([float(m.case.answerable) for m in measured]),
        strength=PRIOR_C,
        weights=_weights(measured, product_weight),
    )


def replay(
    measured: list[Measured], answerer, scorer: Scorer, priors: dict[str, Linear] | None = None
) -> tuple[float, float, float]:
    """Fact accuracy (answerable questions answered with every fact), refusal recall
    (questions the documents do not answer, refused) and refusal precision (refusals of such
    questions), replaying the answerer's decisions; with ``priors``, each question is weighed
    by its brief's prior there (``unbriefed_priors``) instead of the scorer's own."""
    right_of: dict[bool, list[bool]] = {True: [], False: []}
    refusals = 0
    for m in measured:
        judged = scorer if priors is None else replace(scorer, prior=priors[m.case.brief])
        answer = answer_of(m, answerer, judged)
        right_of[m.case.answerable].append(right(m.case, answer))
        refusals += answer.refused
    refused_right = sum(right_of[False])
    return (
        float(np.mean(right_of[True] or [0])),
        float(np.mean(right_of[False] or [1])),
        refused_right / refusals if refusals else 1.0,
    )


def choose(
    measured: list[Measured],
    answerer,
    scorer: Scorer,
    guard: Guard | None = None,
    priors: dict[str, Linear] | None = None,
) -> tuple[Scorer, float, float] | None:
    """The thresholds and margin with the best balanced accuracy on dev (the mean of the share
    of answerable questions answered with their facts and the share of the others refused)
    among those that ``guard`` allows and that keep CI's floors on dev as CI measures it:
    refusal recall first (``refusal_floor``: the product's promise is to refuse when the
    documents are silent, and then to answer as much as it can), fact accuracy too where some
    decision keeps both (``fact_floor``); when none refuses enough, what refuses most. None
    when ``guard`` allows nothing. With ``priors`` the balanced accuracy is replayed with them
    (``replay``, ``unbriefed_priors``); the floors always with the scorer's own prior."""
    decisions = [
        scorer.with_decision(float(judge), margin, float(prior))
        for margin in MARGINS
        for judge in THRESHOLDS
        for prior in PRIOR_WEIGHTS
        if guard is None or guard.allows(scorer.with_decision(judge, margin, prior))
    ]
    if not decisions:
        return None
    scored = [replay(measured, answerer, decision, priors) for decision in decisions]
    best_first = sorted(range(len(decisions)), key=lambda i: -(scored[i][0] + scored[i][1]))
    floor, facts_floor, refusing = refusal_floor(), fact_floor(), None
    for i in best_first:
        kept = scored[i] if priors is None else replay(measured, answerer, decisions[i])
        if kept[1] >= floor and kept[0] >= facts_floor:  # as keeps_dev_floors
            return decisions[i], scored[i][0], scored[i][1]
        if kept[1] >= floor and refusing is None:
            refusing = i
    if refusing is None:  # nothing refuses enough: what refuses most
        kept = scored if priors is None else [replay(measured, answerer, d) for d in decisions]
        refusing = max(best_first, key=lambda i: kept[i][1])
    return decisions[refusing], scored[refusing][0], scored[refusing][1]


def unbriefed_priors(
    fit: list[Measured], product_weight: float, briefs: set[str]
) -> dict[str, Linear]:
    """For each of ``briefs``, the prior fitted on the fit questions written to other briefs:
    how the prior weighs a question whose brief's habits it never learnt."""
    return {
        brief: _prior([m for m in fit if m.case.brief != brief], product_weight) for brief in briefs
    }


def refusal_floor() -> float:
    """The refusal recall CI holds the dev documents to (their ``thresholds.yaml``): a decision
    chosen below it would fail CI."""
    return float(load_thresholds(DEV_THRESHOLDS)["min"]["refusal_recall"])


def keeps_dev_floors(dev: list[Measured], answerer, scorer: Scorer) -> bool:
    """Whether ``scorer`` keeps CI's floors on dev's fact accuracy and refusal recall, replayed
    as CI measures it (with its own prior)."""
    facts, recall, _ = replay(dev, answerer, scorer)
    return facts >= fact_floor() and recall >= refusal_floor()


def fact_floor() -> float:
    """The fact accuracy CI holds the dev documents to: a decision that refuses more than dev's
    refusal floor asks may still answer too little to pass it."""
    return float(load_thresholds(DEV_THRESHOLDS)["min"]["fact_accuracy"])


def golden_floors() -> dict[str, float]:
    """The floors CI holds the golden set to on fact accuracy, refusal recall and refusal
    precision (in that order), which a fitted decision must keep."""
    floors = load_thresholds(GOLDEN_THRESHOLDS)["min"]
    return {name: floors[name] for name in ("fact_accuracy", "refusal_recall", "refusal_precision")}


@dataclass
class Guard:
    """The golden set's floors (``evals/thresholds.yaml``) on fact accuracy and refusal recall
    and precision, replayed: a decision that would fail CI on the product's own release is not
    chosen."""

    measured: list[Measured]
    answerer: object
    floors: tuple[float, float, float]

    @classmethod
    def golden(cls, embeddings) -> Guard:
        measured, answerer = measure_set(*GOLDEN_SET, embeddings)
        return cls(measured, answerer, tuple(golden_floors().values()))

    def replayed(self, scorer: Scorer) -> tuple[float, float, float]:
        return replay(self.measured, self.answerer, scorer)

    def allows(self, scorer: Scorer) -> bool:
        got = self.replayed(scorer)
        return all(value >= floor for value, floor in zip(got, self.floors, strict=True))


def ranked_first(measured: list[Measured], scorer: Scorer) -> tuple[int, int]:
    """How many answerable questions have a right sentence first, of those with one at all."""
    usable = [m for m in measured if m.case.answerable and m.labels.sum() and m.special is None]
    first = sum(m.labels[int(np.argmax(scorer.probability(m.rows)))] == 1 for m in usable)
    return int(first), len(usable)


def fit_and_choose(
    fit: list[Measured], dev: list[Measured], dev_answerer, guard: Guard, quiet: bool = False
) -> tuple[Scorer, float, float, float]:
    """Fit on ``fit`` at each product weight and choose on ``dev`` (``choose``, each dev
    question weighed by the prior fitted without its brief): the scorer, its product weight,
    and its dev fact accuracy and refusal recall so weighed. Weights whose decision keeps CI's
    floors on dev (``keeps_dev_floors``) come first."""
    ranked = Ranked.fit(fit)
    briefs = {m.case.brief for m in dev}
    tried = {}
    for weight in PRODUCT_WEIGHTS:
        priors = unbriefed_priors(fit, weight, briefs)
        tried[weight] = choose(dev, dev_answerer, fit_models(fit, weight, ranked), guard, priors)
        if not quiet:
            got = (
                "none keeps the golden set in its gate"
                if tried[weight] is None
                else tried[weight][1:]
            )
            print(f"product weight {weight}: {got}", flush=True)
    allowed = {weight: chosen for weight, chosen in tried.items() if chosen is not None}
    keeping = {w: c for w, c in allowed.items() if keeps_dev_floors(dev, dev_answerer, c[0])}
    allowed = keeping or allowed
    if not allowed:
        print("choosing on dev alone: the golden set will miss a floor")
        priors = unbriefed_priors(fit, 1.0, briefs)
        allowed = {1.0: choose(dev, dev_answerer, fit_models(fit, 1.0, ranked), None, priors)}
    product_weight = max(allowed, key=lambda weight: (sum(allowed[weight][1:]), -weight))
    scorer, facts, recall = allowed[product_weight]
    return scorer, product_weight, facts, recall


def curve_point(scorer: Scorer, measured_sets: dict[str, tuple[list[Measured], object]]) -> dict:
    """Each set's fact accuracy, refusal recall and precision with ``scorer``, replayed."""
    return {
        name: [round(x, 3) for x in replay(measured, answerer, scorer)]
        for name, (measured, answerer) in measured_sets.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.evals.fit", description=__doc__)
    parser.add_argument(
        "--curve",
        action="store_true",
        help="also fit on 25%% and 50%% of the fit documents and report every set's figures",
    )
    options = parser.parse_args(argv)
    embeddings = load_embeddings(cache_dir=Path("evals/.index"))
    fit: list[Measured] = []
    for corpus, files in FIT_SETS:
        fit += measure_set(corpus, files, embeddings)[0]
    dev, dev_answerer = measure_set(*DEV_SET, embeddings)
    guard = Guard.golden(embeddings)
    scorer, product_weight, dev_facts, dev_recall = fit_and_choose(fit, dev, dev_answerer, guard)
    positives = int(sum(m.labels.sum() for m in fit))
    about = {
        "fitted_on": {"cases": len(fit), "pairs": int(sum(len(m.rows) for m in fit)),
                      "positive_pairs": positives, "product_weight": product_weight},
        "chosen_on": {"cases": len(dev), "fact_accuracy": round(dev_facts, 4),
                      "refusal_recall": round(dev_recall, 4), "priors": "without each brief",
                      "with_the_shipped_prior": [round(x, 4) for x in replay(dev, dev_answerer,
                                                                              scorer)],
                      "refusal_recall_floor": refusal_floor(),
                      "golden_replayed": [round(x, 4) for x in guard.replayed(scorer)]},
    }  # fmt: skip
    MODEL_FILE.write_text(json.dumps(scorer.to_dict(**about), indent=2) + "\n", encoding="utf-8")
    weights = dict(zip(FEATURES, np.round(scorer.ranker.weights, 2).tolist(), strict=True))
    print(f"fitted on {len(fit)} cases; ranker weights: {weights}")
    (fit_first, fit_usable), (dev_first, dev_usable) = (
        ranked_first(fit, scorer),
        ranked_first(dev, scorer),
    )
    print(f"right sentence first: fit {fit_first}/{fit_usable}, dev {dev_first}/{dev_usable}")
    print(
        f"threshold {scorer.threshold}, prior weight {scorer.prior_weight}, "
        f"margin {scorer.margin}: "
        f"fact accuracy {dev_facts:.3f}, refusal recall {dev_recall:.3f} on {len(dev)} dev cases"
        " (each weighed by the prior fitted without its brief)"
    )
    if options.curve:
        learning_curve(fit, dev, dev_answerer, guard, scorer, embeddings)
    return 0


def learning_curve(fit, dev, dev_answerer, guard: Guard, scorer: Scorer, embeddings) -> None:
    """The same figures from a scorer fitted (and its decision chosen) on a quarter and a half
    of the fit documents, beside the full one's: whether more documents would still pay. The
    product's release stays in every part, since the decision must keep it within its gate;
    the held-out sets are replayed, in aggregate, never chosen on."""
    sets = {"dev": (dev, dev_answerer)}
    for name in HELD_OUT:
        held = eval_set(name, Path("."))
        sets[name] = measure_set(str(held.corpus_dir), (str(held.cases_path),), embeddings)
    release = [m for m in fit if _of_release(m)]
    others = [m for m in fit if not _of_release(m)]
    points = {}
    for fraction in (0.25, 0.5):
        part = release + by_document_fraction(others, fraction, CURVE_SEED)
        points[f"{fraction:.0%}"] = curve_point(
            fit_and_choose(part, dev, dev_answerer, guard, quiet=True)[0], sets
        )
    points["100%"] = curve_point(scorer, sets)
    print("learning curve (fact accuracy, refusal recall, refusal precision):")
    for fraction, point in points.items():
        print(f"  {fraction}: {json.dumps(point)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
