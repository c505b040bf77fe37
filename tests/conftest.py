"""Shared fixtures: the real model and a real Chroma index, built once per test session."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Importing the package first sets its offline and telemetry switches (assistant/__init__.py).
from assistant.cli import PROGRAM_GC_THRESHOLDS

# Tests build indexes and assistants as the program does, so they collect as rarely (cli.run).
gc.set_threshold(*PROGRAM_GC_THRESHOLDS)

PROJECT = Path(__file__).resolve().parent.parent
CORPUS_FILE = PROJECT / "corpus" / "xellsmart-sci-trial-announcement.txt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_call(
    cwd: Path, args: tuple[str, ...], env: dict[str, str] | None, more_env: dict[str, str] | None
) -> dict[str, Any]:
    """How a test runs ``python -m assistant.cli *args`` in ``cwd`` (``run_cli`` to its end,
    ``start_cli`` in the background): by default with this process's environment and the
    corpus and index folders of ``cwd``, and ``more_env`` on top; output as text."""
    if env is None:
        env = {**os.environ, "ASSISTANT_CORPUS_DIR": "corpus", "ASSISTANT_INDEX_DIR": "index"}
    return {
        "args": [sys.executable, "-m", "assistant.cli", *args],
        "cwd": cwd,
        "env": env | (more_env or {}),
        "text": True,
    }


def run_cli(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    more_env: dict[str, str] | None = None,
    timeout: float = 180,
    **options,
) -> subprocess.CompletedProcess:
    """The CLI run to its end (see ``cli_call``), its output captured."""
    return subprocess.run(
        **cli_call(cwd, args, env, more_env), capture_output=True, timeout=timeout, **options
    )


def start_cli(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    more_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """The CLI started (see ``cli_call``), its output captured through pipes, or sent to
    ``log`` (for a server, whose unread pipe would fill and stall it)."""
    call = cli_call(cwd, args, env, more_env)
    if log is None:
        return subprocess.Popen(**call, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with log.open("w") as output:
        return subprocess.Popen(**call, stdout=output, stderr=subprocess.STDOUT)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (the page's feedback log); none before it exists."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@contextmanager
def running_chroma(path: Path) -> Iterator[int]:
    """A ``chroma run`` server keeping its data in ``path``, on a free loopback port (yielded),
    until the block ends."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "the chroma command ships with chromadb"
    port = free_port()
    server = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with serving(server, f"http://127.0.0.1:{port}/api/v2/heartbeat", 30, lambda: "chroma run"):
        yield port


def ready(url: str) -> bool:
    """Whether ``url`` answers with a success status within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def wait_serving(server: subprocess.Popen, probe: str, seconds: float, named) -> None:
    """Wait until ``probe`` answers, failing with ``named()`` (which may quote the server's log)
    when ``server`` exits or ``seconds`` pass."""

    def started() -> bool:
        if ready(probe):
            return True
        assert server.poll() is None, f"{named()} exited at start"
        return False

    wait_until(started, seconds, every=0.3, failure=lambda: f"{named()} did not start")


@contextmanager
def stopping(
    servers: list[subprocess.Popen], group: bool = False, sig: int = signal.SIGTERM
) -> Iterator[None]:
    """When the block ends, end together the processes ``servers`` then holds (it may grow in
    the block): ``sig`` to each, then SIGKILL to any still running after 20 s. With ``group``,
    the signals go to each one's process group (a server started with ``start_new_session``,
    whose children end with it)."""
    try:
        yield
    finally:

        def send(server: subprocess.Popen, number: int) -> None:
            if group:
                os.killpg(server.pid, number)
            else:
                server.send_signal(number)

        for server in servers:
            send(server, sig)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                send(server, signal.SIGKILL)
                server.wait()


@contextmanager
def serving(
    server: subprocess.Popen,
    probe: str,
    seconds: float,
    named,
    group: bool = False,
    sig: int = signal.SIGTERM,
) -> Iterator[None]:
    """Wait until ``probe`` answers (``wait_serving``), then end ``server`` when the block ends
    (``stopping``, with ``group`` and ``sig``)."""
    with stopping([server], group=group, sig=sig):
        wait_serving(server, probe, seconds, named)
        yield


def child_environment(
    root: Path,
    drop: Callable[[str], object] = lambda name: name.startswith("ASSISTANT_"),
    **settings,
) -> dict[str, str]:
    """This process's environment for a child working on ``root``: without the variables
    ``drop`` picks (by default the caller's ``ASSISTANT_*`` settings), with ``root``'s corpus,
    index and data folders and ``settings`` as ``ASSISTANT_*`` variables (``chroma_port=8000``
    sets ``ASSISTANT_CHROMA_PORT``)."""
    environment = {name: value for name, value in os.environ.items() if not drop(name)}
    folders = {f"{name}_dir": root / name for name in ("corpus", "index", "data")}
    environment |= {
        f"ASSISTANT_{name.upper()}": str(value) for name, value in (folders | settings).items()
    }
    return environment


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright, once per session (the browser tests fail, not
    skip, without it: CI must run them)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (make test does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def wait_until(check, timeout: float = 10.0, every: float = 0.1, failure=None):
    """Call ``check`` every ``every`` seconds until it returns something truthy (returned),
    failing once ``timeout`` has passed with ``failure()`` as the message (by default, what
    ``check``'s docstring says it waits for)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() >= deadline:
            message = failure() if failure else f"timed out waiting for {check.__doc__ or check}"
            raise AssertionError(message)
        time.sleep(every)
    return result


def ask_on_page(page, question: str, done_text: str | None = None) -> None:
    """Type ``question`` into the chat page and wait until the sources panel has finished
    answering it (the panel repeats the question, or ``done_text`` when it is shown otherwise)."""
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator('#sources [data-state="done"]', has_text=done_text or question).wait_for()


# A short document of our own words, for uploads: a fact the answerer quotes, and its question.
LIGHTHOUSE = """# Skerry Point lighthouse reopens to visitors

KIRKWALL, Orkney, May 2, 2024 -- The Skerry Point lighthouse, built in 1872 by the engineer \
Margaret Ellison, reopened to visitors on Saturday after a two-year restoration.

The restoration was led by the Northern Lights Heritage Trust. Its lamp can again be seen \
from 24 nautical miles away.
"""
LIGHTHOUSE_QUESTION = "who led the restoration"
LIGHTHOUSE_FACT = "The restoration was led by the Northern Lights Heritage Trust."


def shown(answer) -> str:
    """What a reader sees of an answer: its text and, for a refusal, the closest passages.

    Tests of the index and its recovery check that the right text is served with this, not
    whether the answerer decides to answer (that is the evals' job)."""
    return " ".join([answer.text, *(passage.text for passage in answer.closest)])


# Where the session's model keeps its ONNX exports (the packaged, tuned and reader models as
# tests ask for them): kept between runs, so a warm run exports nothing (each export is checked
# by its sha256 at every load and made again when damaged; delete the folder to start afresh).
# One folder per pytest-xdist worker, because an export clears other exports' drafts beside it.
MODEL_CACHE = PROJECT / ".pytest_cache" / "model-cache"


@pytest.fixture(scope="session")
def embeddings():
    """The packaged MiniLM, loaded once for the whole session, with its fast question path."""
    from filelock import FileLock

    from assistant.embed import load_embeddings

    cache = MODEL_CACHE / os.environ.get("PYTEST_XDIST_WORKER", "main")
    cache.mkdir(parents=True, exist_ok=True)
    model = load_embeddings(cache_dir=cache)
    with FileLock(cache.with_suffix(".lock")):  # another session on this checkout at once
        model.prepare_fast_queries()
    model.embed_query("warm up")
    return model


VECTOR_PROBE = "A probe sentence: its vector tells whether kept vectors are this model's."


@pytest.fixture(scope="session")
def vector_memory(embeddings):
    """The session's model with a memory of the vectors it gave, kept between runs beside its
    exports: fixtures that embed the same thousands of texts every run (the eval sets'
    questions, the thousand-sentence corpus of test_index_faults) read them back, a warm run
    sparing some 40 s of embedding. A text not in it is embedded by the model and kept. The
    memory is dropped whole when the model's vector for a probe text is not the one kept with
    it (another model, tuning or export); tests of embedding itself use ``embeddings``."""
    import numpy as np

    from index_kills import RememberedVectors

    probe = np.asarray(embeddings.embed_documents([VECTOR_PROBE])[0], dtype=np.float32)
    vectors: dict[str, list[float]] = {}
    for kept in sorted(MODEL_CACHE.glob("vectors-*.npz")):  # each worker's, merged
        try:
            with np.load(kept) as saved:
                if saved["probe"].shape == probe.shape and np.allclose(saved["probe"], probe):
                    rows = saved["vectors"].tolist()
                    vectors.update(zip(saved["texts"].tolist(), rows, strict=True))
        except (OSError, ValueError, KeyError):  # damaged or of another layout: made again
            continue
    known = len(vectors)
    memory = RememberedVectors(vectors, fallback=embeddings)
    yield memory
    if len(vectors) > known:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        target = MODEL_CACHE / f"vectors-{worker}.npz"
        draft = target.with_name(f"{target.stem}.draft.npz")
        texts = list(vectors)
        np.savez_compressed(
            draft,
            probe=probe,
            texts=np.asarray(texts),
            vectors=np.asarray([vectors[text] for text in texts], dtype=np.float32),
        )
        os.replace(draft, target)


def with_model_export(index: Path, embeddings) -> Path:
    """``index`` holding a copy of the tuned model's ONNX export from ``embeddings``' cache, as
    an earlier run there leaves it, so a program started there loads it instead of making it
    (about 10 s each; making it is tested by test_embed, and in a program by test_no_outbound
    and test_hostile_corpus, which start without it)."""
    index.mkdir(parents=True, exist_ok=True)
    for made in Path(embeddings.cache_dir).glob("minilm-*-*.*"):
        shutil.copy2(made, index / made.name)
    return index


def with_corpus_copy(root: Path) -> Path:
    """``root`` holding a copy of the corpus in ``corpus/``; index and data go beside it."""
    (root / "corpus").mkdir()
    shutil.copy(CORPUS_FILE, root / "corpus" / CORPUS_FILE.name)
    return root


def assistant_in(root: Path, embeddings, **settings):
    """An Assistant over ``root``'s ``corpus``, ``index`` and ``data`` folders, its index built,
    with no ``ASSISTANT_*`` variable read (``settings`` pins the others a test needs)."""
    from assistant import Assistant, Settings

    folders = {name: root / name for name in ("corpus", "index", "data")}
    loaded = Settings.load(
        environ={},
        corpus_dir=folders["corpus"],
        index_dir=folders["index"],
        data_dir=folders["data"],
        **settings,
    )
    return Assistant(loaded, embeddings=embeddings)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, embeddings) -> Path:
    """A working folder holding a copy of the corpus, with index and data folders beside it
    (the index folder holding the model's export, for the command-line tests run there)."""
    root = with_corpus_copy(tmp_path_factory.mktemp("workspace"))
    with_model_export(root / "index", embeddings)
    return root


@pytest.fixture(scope="session")
def bot(workspace, embeddings):
    """One Assistant over the copied corpus, its index built once (sources are absolute)."""
    return assistant_in(workspace, embeddings)


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return CORPUS_FILE.read_text(encoding="utf-8")


@contextmanager
def running_page(root: Path, log: Path, **settings: str) -> Iterator[str]:
    """``assistant serve`` over ``root``'s corpus, index and data folders on a free loopback
    port, its output in ``log``, with ``ASSISTANT_*`` variables from ``settings`` (``auth="u:p"``
    sets ``ASSISTANT_AUTH``) and none from this process; yields the page's URL. Gradio's upload
    folder is ``root/gradio``."""
    assistant = shutil.which("assistant", path=str(Path(sys.executable).parent))
    assert assistant, "the assistant command ships with the package"
    env = child_environment(root, **settings)
    env |= {"GRADIO_TEMP_DIR": str(root / "gradio"), "HF_HUB_OFFLINE": "1"}
    port = free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            [assistant, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    with serving(
        server, url + "config", 120, lambda: f"assistant serve ({log.read_text()[-2000:]})"
    ):
        yield url


@contextmanager
def page_server(assistant, **options) -> Iterator[str]:
    """The chat page and its API over ``assistant``, in this process on a free loopback port,
    until the block ends: yields its URL. ``options`` go to ``assistant.web.app.launch`` (which
    returns once the page answers)."""
    from assistant.web.app import build_app, launch

    demo = build_app(assistant)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, block=False, **options)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
