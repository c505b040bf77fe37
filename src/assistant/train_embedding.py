"""Tune the embedding model: ``python -m assistant.train_embedding`` (the first step of
``make train``) from the project root.

1. *Measure*: every question of the training sets is retrieved for with the *packaged* model (so
   a retrain does not depend on an earlier tuning), and each candidate sentence is labelled as
   the scorer's fit labels it (``assistant.evals.fit``): right when it is (part of) the case's
   verbatim support or holds its facts.
2. *Pair*: each answerable question with its right sentence and, as a hard negative, the wrong
   sentence the packaged model puts closest: same document, same topic, no answer. That
   contrast is what the packaged model lacks.
3. *Train*: LoRA adapters on every attention and feed-forward layer (``tuned_model.Tuning``),
   with a contrastive loss (the question against its sentence, the batch's other sentences and
   the hard negatives), fixed seeds, on the CPU.
4. *Report*: for the dev documents (never trained on) and, in aggregate, the held-out ones: how
   often a right sentence is the closest of the candidates, before and after; with ``--curve``
   also after training on a quarter and a half of the training documents.

Writes ``embedding_adapter.safetensors`` and ``embedding_adapter.json``. The scorer and the
reader read the tuned model's measurements, so refit them after (``make train`` does).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.model_identity import file_sha256
from assistant.tuned_model import ADAPTER_FILE, CONFIG_FILE, Tuning

SEED = 1206
TUNING = Tuning(rank=16, alpha=32, targets=("query", "key", "value", "dense"))
EPOCHS = 2  # dev top-1 rose after each of two epochs of a full fine-tune; about 3 min each
BATCH = 32
LEARNING_RATE = 5e-4  # LoRA matrices learn from zero: ten times a full fine-tune's 5e-5
SCALE = 20.0  # cosines times this are the logits: sentence-transformers' usual contrast
INDEX_ROOT = "evals/.index/packaged"  # the packaged model's indexes, apart from the tuned ones


@dataclass(frozen=True)
class Pair:
    """A question, a sentence that answers it, and the closest one that does not."""

    source: str
    question: str
    right: str
    wrong: str


@dataclass(frozen=True)
class Candidates:
    """A question to rank by: its candidate sentences and which of them are right."""

    question: str
    texts: list[str]
    labels: np.ndarray


def measured(sets, embeddings) -> tuple[list[Pair], list[Candidates]]:
    """The training pairs and the rankings to score, from the cases of ``sets``."""
    from assistant.evals.fit import measure_set

    pairs, rankings = [], []
    for corpus, files in sets:
        found, answerer = measure_set(corpus, files, embeddings, index_root=INDEX_ROOT)
        for m in found:
            if not m.case.answerable or not m.labels.sum() or m.special is not None:
                continue
            texts = [answerer.collection.spans[p].text for p in m.positions]
            rankings.append(Candidates(m.question.query, texts, m.labels))
            closest = np.argsort(-m.rows[:, 0])  # FEATURES[0] is the cosine
            right = next(i for i in closest if m.labels[i] == 1)
            wrong = next((i for i in closest if m.labels[i] == 0), None)
            if wrong is not None:
                pairs.append(Pair(m.case.source, m.question.query, texts[right], texts[wrong]))
    return pairs, rankings


def packaged_model():
    from sentence_transformers import SentenceTransformer

    from assistant.embed import packaged_model_path, verify_weights

    model_dir = packaged_model_path()
    verify_weights(model_dir)
    return SentenceTransformer(str(model_dir), device="cpu")


def train(pairs: list[Pair], seed: int = SEED, epochs: int = EPOCHS):
    """The packaged model with LoRA adapters trained on ``pairs`` (not merged), and the
    adapters' own handle (sentence-transformers keeps only the encoder they were put into)."""
    import torch
    from peft import get_peft_model

    from assistant.train import set_seeds

    set_seeds(seed)
    torch.set_num_threads(2)
    model = packaged_model()
    adapters = get_peft_model(model[0].auto_model, TUNING.lora_config(dropout=0.1))
    model[0].auto_model = adapters
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=LEARNING_RATE)
    order = random.Random(seed)
    started = time.monotonic()

    def embedded(texts: list[str]):
        return torch.nn.functional.normalize(
            model(model.preprocess(texts))["sentence_embedding"], dim=-1
        )

    model.train()
    for epoch in range(epochs):
        shuffled = order.sample(pairs, len(pairs))
        for first in range(0, len(shuffled), BATCH):
            batch = shuffled[first : first + BATCH]
            questions = embedded([p.question for p in batch])
            sentences = embedded([p.right for p in batch] + [p.wrong for p in batch])
            logits = questions @ sentences.T * SCALE
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        minutes = (time.monotonic() - started) / 60
        print(f"  epoch {epoch + 1}: loss {loss.item():.3f}, {minutes:.1f} min", flush=True)
    return model.eval(), adapters


def closest_right(model, rankings: list[Candidates]) -> dict:
    """How many rankings have a right sentence closest to the question, by the model's cosine.

    Each distinct text is encoded once: rankings from one document share most sentences, so
    this is several times faster than encoding every ranking apart."""
    import torch

    texts = sorted({text for r in rankings for text in (r.question, *r.texts)})
    with torch.no_grad():
        encoded = model.encode(texts, normalize_embeddings=True, batch_size=64)
    vector = dict(zip(texts, encoded, strict=True))
    first = 0
    for ranking in rankings:
        cosines = np.stack([vector[text] for text in ranking.texts]) @ vector[ranking.question]
        first += int(ranking.labels[int(np.argmax(cosines))] == 1)
    return {"closest_right": first, "of": len(rankings), "share": round(first / len(rankings), 4)}


def main(argv: list[str] | None = None) -> int:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from assistant.embed import MiniLMEmbeddings
    from assistant.evals.cases import by_document_fraction
    from assistant.evals.fit import DEV_SET, FIT_SETS
    from assistant.train import HELDOUT_SET

    parser = argparse.ArgumentParser(
        prog="python -m assistant.train_embedding", description=__doc__
    )
    parser.add_argument("--curve", action="store_true", help="also train on 25%% and 50%%")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    options = parser.parse_args(argv)
    started = time.monotonic()
    packaged = MiniLMEmbeddings(cache_dir=Path(INDEX_ROOT), tuned=False)
    pairs, _ = measured(FIT_SETS, packaged)
    _, dev = measured((DEV_SET,), packaged)
    _, held = measured((HELDOUT_SET,), packaged)
    print(f"{len(pairs)} training pairs; {len(dev)} dev and {len(held)} held-out rankings",
          flush=True)  # fmt: skip
    before = packaged_model()
    report = {"packaged": {"dev": closest_right(before, dev),
                           "heldout": closest_right(before, held)}}  # fmt: skip
    for fraction in (0.25, 0.5, 1.0) if options.curve else (1.0,):
        subset = by_document_fraction(pairs, fraction, SEED) if fraction < 1 else pairs
        model, adapters = train(subset, epochs=options.epochs)
        point = {"pairs": len(subset), "dev": closest_right(model, dev),
                 "heldout": closest_right(model, held)}  # fmt: skip
        report[f"{fraction:.0%}"] = point
        print(json.dumps({f"{fraction:.0%}": point}), flush=True)
    save_file(
        {k: v.contiguous() for k, v in get_peft_model_state_dict(adapters).items()},
        str(ADAPTER_FILE),
    )
    tuning = Tuning(**{**TUNING.to_dict(), "targets": TUNING.targets,
                       "sha256": file_sha256(ADAPTER_FILE)})  # fmt: skip
    record = {
        "adapter": tuning.to_dict(),
        "trained": {"seed": SEED, "epochs": options.epochs, "pairs": len(pairs),
                    "minutes": round((time.monotonic() - started) / 60, 1)},
        "closest_right": report,
    }  # fmt: skip
    CONFIG_FILE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {ADAPTER_FILE} ({ADAPTER_FILE.stat().st_size / 1e6:.1f} MB) and {CONFIG_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
