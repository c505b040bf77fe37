"""The examples in the docstrings run, against the real model and index."""

from __future__ import annotations

import doctest
import shutil

import assistant.assistant


def test_the_assistant_docstring_example_runs(bot, workspace, tmp_path, monkeypatch):
    # The example uses corpus/ and index/ of the working directory: a copy of the session's, as
    # the generation it indexes names the documents by relative path, which the session's
    # assistant (absolute paths) would then read (it did, on a worker of pytest-xdist).
    for folder in ("corpus", "index"):
        shutil.copytree(workspace / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(assistant.assistant, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
