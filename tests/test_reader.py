"""The reader: shipped as small hash-checked adapters, exported once to ONNX, reading the
question against each sentence; and the three outcomes it decides between."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from assistant import tuned_model
from assistant.answer.compose import HEDGE, REFUSAL
from assistant.answer.features import FEATURES
from assistant.answer.reader import (
    ADAPTER_FILE,
    CONFIG_FILE,
    Decision,
    Reader,
    ReaderUnavailable,
    shipped_reader,
    verified_config,
)
from assistant.model_identity import file_sha256
from assistant.question import Question

MAX_SHIPPED_BYTES = 20 * 2**20  # the bound on what a retrain adds to the repository


@pytest.fixture(scope="module")
def reader(embeddings) -> Reader:
    """The shipped reader, exported beside the session's embedding model (as the bot's is)."""
    found = shipped_reader(embeddings.cache_dir)
    assert found is not None, "the reader's adapters ship with the package"
    return found


def test_only_small_adapters_ship_and_their_hash_is_recorded():
    """The reader's and the embedding model's deltas together stay under the bound."""
    shipped = (ADAPTER_FILE, CONFIG_FILE, tuned_model.ADAPTER_FILE, tuned_model.CONFIG_FILE)
    assert sum(path.stat().st_size for path in shipped) < MAX_SHIPPED_BYTES
    recorded = json.loads(CONFIG_FILE.read_text())["adapter"]["sha256"]
    assert file_sha256(ADAPTER_FILE) == recorded == verified_config().sha256


def test_a_changed_adapter_file_is_refused_naming_the_repair(tmp_path):
    changed = tmp_path / ADAPTER_FILE.name
    shutil.copyfile(ADAPTER_FILE, changed)
    with changed.open("r+b") as stream:
        stream.seek(-8, 2)
        stream.write(b"\x00" * 8)
    with pytest.raises(ReaderUnavailable, match=r"python -m assistant\.train"):
        verified_config(changed, CONFIG_FILE)
    with pytest.raises(ReaderUnavailable, match="missing"):
        verified_config(tmp_path / "gone.safetensors", CONFIG_FILE)


def test_a_damaged_export_is_made_again(embeddings, tmp_path):
    first = Reader.open(tmp_path)
    (onnx,) = tmp_path.glob("reader-*.onnx")
    onnx.write_bytes(onnx.read_bytes()[:1000])  # truncated
    again = Reader.open(tmp_path)
    rows = np.zeros((1, len(FEATURES)))
    question, sentence = "Which hospital?", ["The trial runs at Mercy Hospital."]
    assert np.allclose(
        first.probabilities(question, sentence, rows),
        again.probabilities(question, sentence, rows),
        atol=1e-5,
    )


def test_the_sentence_that_answers_reads_higher_than_one_on_the_topic_that_does_not(bot, reader):
    """The reader sees whether the detail asked for is there, not only the topic."""
    question = Question.read("Which hospital will conduct the clinical trial?")
    answerer = bot.answerer
    documents = bot.retrieve(question.text)
    positions, rows, _ = answerer.measure(question, documents)
    texts = [answerer.collection.spans[p].text for p in positions]
    chances = reader.probabilities(question.query, texts, rows)
    assert chances.shape == (len(texts),) and ((chances >= 0) & (chances <= 1)).all()
    best = texts[int(np.argmax(chances))]
    assert "Third Affiliated Hospital" in best


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [
        (Decision(answer=0.0, hedge=0.0, margin=0.0), "answer"),
        (Decision(answer=1.01, hedge=0.0, margin=0.0), "hedge"),
        (Decision(answer=1.01, hedge=1.01, margin=0.0), "refusal"),
    ],
)
def test_the_decision_answers_hedges_or_refuses(bot, decision, outcome):
    """The same reading, three thresholds: a plain answer, a hedged one quoting the closest
    passage with an exact citation, or a refusal showing the closest passages uncited."""
    question = Question.read("Which hospital will conduct the clinical trial?")
    answerer = bot.answerer
    documents = bot.retrieve(question.text)
    positions, _, _ = answerer.measure(question, documents)
    chances = np.linspace(0.9, 0.1, len(positions))
    from assistant.answer.reading import read

    answer = answerer.conclude(
        read(question, answerer.collection), documents, positions, chances, decision, 1.0
    )
    assert answer.refused == (outcome == "refusal")
    assert answer.hedged == (outcome == "hedge")
    assert answer.text.startswith(HEDGE) == (outcome == "hedge")
    assert (answer.text == REFUSAL) == (outcome == "refusal")
    for citation in answer.citations:
        assert bot.source_text(citation.source)[citation.start : citation.end] == citation.quote
    assert bool(answer.citations) == (outcome != "refusal")
    assert bool(answer.closest) == (outcome != "answer")  # a hedge shows the next closest too
    assert all(p.best_start not in {c.start for c in answer.citations} for p in answer.closest)
    assert answer.to_dict()["hedged"] == answer.hedged
