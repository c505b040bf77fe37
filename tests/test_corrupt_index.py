"""A corrupt index: a clear one-line error, and `ingest --rebuild` recovers without losing it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def test_a_corrupt_index_is_reported_then_set_aside_and_rebuilt(tmp_path, workspace):
    shutil.copytree(workspace / "corpus", tmp_path / "corpus")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "chroma.sqlite3").write_bytes(b"this is not a database")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "assistant.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "ASSISTANT_INDEX_DIR": "index", "ASSISTANT_CORPUS_DIR": "corpus"},
        )

    broken = cli("ask", "Which hospital will run the trial?")
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "cannot be opened" in broken.stderr and "--rebuild" in broken.stderr

    rebuilt = cli("ingest", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.broken-")]
    assert (
        len(aside) == 1 and (aside[0] / "chroma.sqlite3").read_bytes() == b"this is not a database"
    )

    answered = cli("ask", "Which hospital will run the trial?", "--json")
    assert answered.returncode == 0 and "Third Affiliated Hospital" in answered.stdout
