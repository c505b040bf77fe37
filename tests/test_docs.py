"""The examples in the docstrings run, against the real model and index."""

from __future__ import annotations

import doctest

import assistant.assistant


def test_the_assistant_docstring_example_runs(bot, workspace, monkeypatch):
    monkeypatch.chdir(workspace)  # the example uses corpus/ and index/ of the working directory
    result = doctest.testmod(assistant.assistant, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
