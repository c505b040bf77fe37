"""Refit the LLM answerer's ``support.json``: ``python -m assistant.evals.fit_support`` from the
project root.

An LLM's reply sentence is a *claim*; the marked chunk's sentence that best supports it is cited,
and a claim whose best support is below the threshold is flagged as weakly supported.  No LLM
is run here: each answerable case gives two claims such a model writes,

- *verbatim*: the case's supporting passage, as a model quoting its source writes it;
- *restated*: its question restated with its facts ("What protein does ALLO-316 go after:
  CD70."), as a model answering in the question's words writes it,

and each claim is measured (``SupportMeasure.rows``) against the sentences of every chunk
retrieved for the question.  A sentence is right when it overlaps the support or holds the facts
(labelled as ``fit`` labels the extractive ranker's data); a chunk with a right sentence
supports the claim, the others do not.

1. Fit: a logistic model over ``SUPPORT_FEATURES`` on every (claim, sentence) pair of the *fit*
   sets.
2. Choose, on the *dev* documents (never fitted on): the threshold on a chunk's best score that
   best tells chunks that support a claim from those that do not (balanced accuracy).
The held-out documents are not read here.  The figures printed compare the fitted model with
the extractive answerer's question ranker applied to the same pairs as it is.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.answer.extractive import ExtractiveAnswerer
from assistant.answer.scorer import Scorer, default_scorer
from assistant.answer.support import (
    SUPPORT_COLUMNS,
    SUPPORT_FEATURES,
    SUPPORT_FILE,
    SupportMeasure,
    SupportModel,
)
from assistant.assistant import Assistant
from assistant.embed import load_embeddings
from assistant.evals.cases import load_cases
from assistant.evals.fit import DEV_SET, FIT_SETS, _labels, _linear

THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 3)
CLAIMS = ("verbatim", "restated")


@dataclass
class Pair:
    """One claim against the sentences of one retrieved chunk."""

    claim: str  # which kind of claim: one of CLAIMS
    rows: np.ndarray
    labels: np.ndarray

    @property
    def supports(self) -> bool:
        return bool(self.labels.sum())


def claims(case) -> dict[str, str]:
    """The claims a model answering ``case`` could write, by kind."""
    facts = ", ".join(alternatives[0] for alternatives in case.facts)
    return {"verbatim": case.support, "restated": f"{case.question.rstrip(' ?')}: {facts}."}


def measure_set(corpus: str, case_files: tuple[str, ...], embeddings) -> list[Pair]:
    bot = Assistant(
        corpus_dir=corpus,
        index_dir=f"evals/.index/{Path(corpus).name}",
        embeddings=embeddings,
        answerer="extractive",  # whatever ASSISTANT_ANSWERER says: no LLM is asked here
    )
    extractive: ExtractiveAnswerer = bot.answerer
    support = SupportMeasure(extractive.collection, embeddings)
    pairs = []
    for case_file in case_files:
        if not Path(case_file).exists():
            continue
        for case in load_cases(case_file, root=Path.cwd()):
            if not case.answerable:
                continue
            documents = bot.retrieve(case.question, list(case.history))
            for kind, claim in claims(case).items():
                for document in documents:
                    positions = support.within(document)
                    if positions:
                        labels = _labels(bot, extractive, case, positions)
                        pairs.append(Pair(kind, support.rows(claim, positions), labels))
    return pairs


def best_right(pairs: list[Pair], score) -> float:
    """Of the chunks that support their claim, the share whose best-scored sentence is right."""
    chosen = [p.labels[int(np.argmax(score(p.rows)))] for p in pairs if p.supports]
    return float(np.mean(chosen)) if chosen else 0.0


def flags(pairs: list[Pair], score, threshold: float) -> tuple[float, float]:
    """The share of supporting chunks flagged weak (wrongly), and of the others (rightly)."""
    flagged = {True: [], False: []}
    for pair in pairs:
        flagged[pair.supports].append(float(score(pair.rows).max() < threshold))
    return float(np.mean(flagged[True] or [0])), float(np.mean(flagged[False] or [0]))


def choose(pairs: list[Pair], score) -> float:
    """The threshold with the best balanced accuracy: supporting chunks not flagged, the
    others flagged (the lowest such threshold, to flag no more than needed)."""
    balanced = []
    for threshold in THRESHOLDS:
        wrongly, rightly = flags(pairs, score, threshold)
        balanced.append(((1 - wrongly) + rightly) / 2)
    return float(THRESHOLDS[int(np.argmax(balanced))])


def report(name: str, score, threshold: float, fit: list[Pair], dev: list[Pair]) -> dict:
    """Print and return what ``score`` achieves, by kind of claim, on fit and dev."""
    figures = {}
    for kind in (*CLAIMS, "all"):
        of = {
            label: [p for p in pairs if kind in ("all", p.claim)]
            for label, pairs in (("fit", fit), ("dev", dev))
        }
        on_fit, on_dev = best_right(of["fit"], score), best_right(of["dev"], score)
        wrongly, rightly = flags(of["dev"], score, threshold)
        figures[kind] = {
            "best_sentence_right_fit": round(on_fit, 4),
            "best_sentence_right_dev": round(on_dev, 4),
            "dev_supporting_chunks_flagged_weak": round(wrongly, 4),
            "dev_other_chunks_flagged_weak": round(rightly, 4),
        }
        print(
            f"{name:>9} {kind:>9}: best sentence right: fit {on_fit:.3f}, dev {on_dev:.3f}; "
            f"flagged weak on dev (threshold {threshold}): supporting chunks {wrongly:.3f}, "
            f"others {rightly:.3f}"
        )
    return figures


def main() -> int:
    embeddings = load_embeddings(cache_dir=Path("evals/.index"))
    fit: list[Pair] = []
    for corpus, files in FIT_SETS:
        fit += measure_set(corpus, files, embeddings)
    dev = measure_set(*DEV_SET, embeddings)
    rows = np.vstack([p.rows for p in fit])
    fitted = SupportModel(
        _linear(rows[:, SUPPORT_COLUMNS], np.concatenate([p.labels for p in fit])), 0.5
    )
    model = SupportModel(fitted.linear, choose(dev, fitted.probability))
    ranker: Scorer = default_scorer()
    ranker_threshold = choose(dev, ranker.probability)
    print(f"{len(fit)} (claim, chunk) pairs to fit on, {len(dev)} on dev")
    measured = report("support", model.probability, model.threshold, fit, dev)
    report("ranker", ranker.probability, ranker_threshold, fit, dev)
    weights = dict(zip(SUPPORT_FEATURES, np.round(model.linear.weights, 2).tolist(), strict=True))
    print(f"weights: {weights}")
    about = {
        "fitted_on": {"pairs": len(fit), "sentences": len(rows),
                      "right_sentences": int(sum(p.labels.sum() for p in fit))},
        "chosen_on": {"pairs": len(dev), **measured["all"]},
    }  # fmt: skip
    SUPPORT_FILE.write_text(json.dumps(model.to_dict(**about), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
