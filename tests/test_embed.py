"""The packaged model: its hash is checked, and the fast question path matches it."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.embed import ModelIntegrityError, packaged_model_path, verify_weights


def test_the_packaged_weights_pass_the_hash_check():
    verify_weights(packaged_model_path())


def test_other_weights_fail_with_a_clear_message(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError, match="expected 53aa5117"):
        verify_weights(tmp_path)
    with pytest.raises(ModelIntegrityError, match="no model weights"):
        verify_weights(tmp_path / "missing")


def test_questions_embed_the_same_on_the_fast_path(bot):
    fast = bot.embeddings._query_model
    assert fast is not None, "the ONNX question model should be in use"
    questions = ["Which hospital will run the trial?", "wat r the cels derived frm", "XS228"]
    slow = np.asarray(bot.embeddings.embed_documents(questions))
    quick = np.asarray([fast.embed(q) for q in questions])
    assert np.abs(slow - quick).max() < 1e-4
