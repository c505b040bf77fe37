"""Scaling out: several programs answering from one index kept on a ``chroma run`` server.

An ingest writes the index into the server, two ``assistant serve`` processes answer from it at
once, and a later ingest moves them both to a new generation. Every program here is a real
process talking to a real server on 127.0.0.1, because what is tested lies between them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from conftest import (
    CORPUS_FILE,
    child_environment,
    free_port,
    run_cli,
    running_chroma,
    start_cli,
    stopping,
    wait_serving,
    wait_until,
)

# Questions about the first document, with words the sentence cited for each must hold.
KNOWN = {
    "Which hospital will run the trial?": "Third Affiliated Hospital of Sun Yat-sen University",
    "Which agencies approved the Phase I trial?": "National Medical Products Administration",
    "What did XS228 receive in 2023?": "orphan drug designation",
}
NEW_QUESTION = "Where will the cells for the trial be made?"
NEW_FACT = "Suzhou Industrial Park"
NEW_DOCUMENT = (
    "XellSmart opens a cell manufacturing plant in Suzhou\n\n"
    "SUZHOU, China, September 3, 2025 -- XellSmart Biomedical today opened a cell "
    f"manufacturing plant in {NEW_FACT}. The neural progenitor cells for the Phase I trial "
    f"will be made at the new plant in {NEW_FACT}.\n"
)
STARTUP_SECONDS = 120  # two pages loading models at once on two cores
FOLLOW_SECONDS = 20  # readers look for a new generation every 2 s
# A test with deadlines on answers while its programs compete for the two cores runs alone
# (`serial`), not beside another worker's test; the others here wait on nothing but results.


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """A ``chroma run`` server on a free loopback port: its port and the folder it keeps."""
    path = tmp_path_factory.mktemp("chroma-server")
    with running_chroma(path) as port:
        yield port, path


def ingest(root: Path, environment: dict[str, str]) -> str:
    result = run_cli(root, "ingest", env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def serve_replicas(root: Path, environment: dict[str, str], count: int) -> Iterator[list[str]]:
    """``count`` ``assistant serve`` processes on free loopback ports, until the block ends:
    their base URLs. Each logs to ``serve-<n>.log`` in ``root``; all are ended together."""
    processes: list[subprocess.Popen] = []  # ended together when the block ends
    with stopping(processes):
        logs = [root / f"serve-{number}.log" for number in range(count)]
        urls = [f"http://127.0.0.1:{free_port()}" for _ in logs]
        for log_path, url in zip(logs, urls, strict=True):
            port = url.split(":")[-1]
            processes.append(
                start_cli(root, "serve", "--port", port, env=environment, log=log_path)
            )
        pages = list(zip(processes, logs, urls, strict=True))
        deadline = time.monotonic() + STARTUP_SECONDS
        for process, log_path, url in pages:
            wait_serving(
                process,
                f"{url}/config",
                deadline - time.monotonic(),
                lambda url=url, log_path=log_path: f"{url} ({log_path.read_text()})",
            )
        try:
            yield urls
        except Exception as error:  # a page that died since it started: say why
            for process, log_path, url in pages:
                if process.poll() is not None:
                    raise AssertionError(f"{url} exited: {log_path.read_text()}") from error
            raise


def ask(url: str, question: str) -> dict:
    """The page's answer through its plain-HTTP API: start a call, then read its event stream."""
    started = httpx.post(
        f"{url}/gradio_api/call/ask", json={"data": [question, None, None, None]}, timeout=30
    )
    started.raise_for_status()
    stream = httpx.get(f"{url}/gradio_api/call/ask/{started.json()['event_id']}", timeout=60)
    event = data = None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
    assert event == "complete", f"{url} answered {question!r} with {event}: {data}"
    return json.loads(data)[0]


def cites(answer: dict, expected: str) -> bool:
    return any(expected in citation["quote"] for citation in answer["citations"])


def answer_citing(url: str, question: str, expected: str) -> dict | None:
    """The page's answer to ``question`` when it cites ``expected``, else None."""
    answer = ask(url, question)
    return answer if cites(answer, expected) else None


def check_answer(answer: dict, expected: str, texts: dict[str, str], url: str) -> None:
    """The answer cites a sentence holding ``expected``, and every quote is the text at its
    offsets in the document as written."""
    assert not answer["refused"] and cites(answer, expected), f"{url}: {answer}"
    for citation in answer["citations"]:
        text = texts[citation["source"]]
        assert text[citation["start"] : citation["end"]] == citation["quote"], f"{url}: {citation}"


def ask_all(urls: list[str], questions: dict[str, str], texts: dict[str, str]) -> None:
    """Every question to every page at once, each answer checked."""
    jobs = [(url, question) for url in urls for question in questions]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(lambda job: ask(*job), jobs))
    for (url, question), answer in zip(jobs, answers, strict=True):
        check_answer(answer, questions[question], texts, url)


@pytest.mark.serial
def test_two_pages_answer_from_one_chroma_server_and_follow_a_new_ingest(
    tmp_path, chroma_server, embeddings
):
    """Two pages on one machine, as behind a load balancer: every process has the same settings,
    so they share one index_dir, whose lock makes writers take turns (each page re-indexes a
    changed corpus as well, so the second ingest may find the work done)."""
    chroma_port, server_path = chroma_server
    (tmp_path / "corpus").mkdir()
    first = tmp_path / "corpus" / CORPUS_FILE.name
    shutil.copy(CORPUS_FILE, first)
    texts = {str(first): first.read_text(encoding="utf-8")}
    # the query model's ONNX export, made once this session, spares the first ingest making it
    shutil.copytree(embeddings.cache_dir, tmp_path / "index")
    environment = child_environment(tmp_path, chroma_host="127.0.0.1", chroma_port=chroma_port)

    assert "1 documents" in ingest(tmp_path, environment)
    with serve_replicas(tmp_path, environment, count=2) as urls:
        ask_all(urls, KNOWN, texts)
        for url in urls:
            assert not cites(ask(url, NEW_QUESTION), NEW_FACT)

        added = tmp_path / "corpus" / "suzhou-plant.txt"
        added.write_text(NEW_DOCUMENT, encoding="utf-8")
        texts[str(added)] = NEW_DOCUMENT
        assert "2 documents" in ingest(tmp_path, environment)
        deadline = time.monotonic() + FOLLOW_SECONDS
        for url in urls:
            answer = wait_until(
                partial(answer_citing, url, NEW_QUESTION, NEW_FACT),
                deadline - time.monotonic(),
                every=0.5,
                failure=lambda url=url: f"{url} still answers from the old index",
            )
            check_answer(answer, NEW_FACT, texts, url)
        ask_all(urls, {**KNOWN, NEW_QUESTION: NEW_FACT}, texts)

    for number in range(2):  # a page that re-indexed the edit itself took its turn
        log = (tmp_path / f"serve-{number}.log").read_text()
        assert "Traceback" not in log and "failed" not in log, log
    assert (server_path / "chroma.sqlite3").exists(), "the index lives on the server"
    local = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("chroma.sqlite3*"))
    assert local == [], "a process made a Chroma database of its own"


class HeldEmbeddings(Embeddings):
    """The session's model behind a door: with ``hold``, embedding waits (at most ``seconds``)
    until ``release`` is set, so a writer can be stopped in the middle of a build."""

    def __init__(self, model: Embeddings, hold: bool = False, seconds: float = 8.0) -> None:
        self.inner, self.hold, self.seconds = model, hold, seconds
        self.entered, self.release = threading.Event(), threading.Event()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.hold:
            self.entered.set()
            self.release.wait(self.seconds)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def test_writers_on_two_machines_take_turns_on_one_server(tmp_path, chroma_server, embeddings):
    """Two machines share the corpus (one path, as on a shared mount) and the server, each with
    its own index_dir. Every ``assistant serve`` re-indexes a changed corpus, so there an edit
    brings two writers at once: the second must wait for the first, or at least not break it."""
    chroma_port, _ = chroma_server
    (tmp_path / "corpus").mkdir()
    shutil.copy(CORPUS_FILE, tmp_path / "corpus" / CORPUS_FILE.name)

    def machine(name: str, model: Embeddings) -> Assistant:
        settings = Settings.load(
            environ={},
            corpus_dir=tmp_path / "corpus",
            index_dir=tmp_path / name,
            chroma_host="127.0.0.1",
            chroma_port=chroma_port,
        )
        return Assistant(settings, embeddings=model, build_index=False)

    held, free = HeldEmbeddings(embeddings, hold=True), HeldEmbeddings(embeddings)
    failures: list[str] = []

    def write(bot: Assistant) -> None:
        try:
            bot.ingest()
        except Exception as error:
            failures.append(f"{bot.settings.index_dir.name}: {error}")

    first = threading.Thread(target=write, args=(machine("machine-a", held),))
    first.start()
    assert held.entered.wait(60), "the first writer never reached its first batch"
    second = threading.Thread(target=write, args=(machine("machine-b", free),))
    second.start()
    second.join(held.seconds)  # a second writer that takes turns is still waiting here
    held.release.set()
    first.join(120)
    second.join(120)

    assert failures == []
    answer = machine("machine-c", free).ask("Which hospital will run the trial?")
    assert "Third Affiliated Hospital" in answer.text
