"""Processes sharing one index: writers take turns, readers never fail, citations always match.

Everything here runs as separate programs (the CLI and a served page), because the faults
reproduced were between processes: two ingests at once, asks that each start an ingest, an
ingest while the page answers, and a corpus edited under a running page.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from gradio_client import Client

from assistant import Assistant
from conftest import free_port, serving, shown, start_cli, wait_until, with_model_export
from index_kills import settings_in

QUESTION = "Which hospital will run the trial?"
FACT = "Third Affiliated Hospital"
RENAMED = "Riverside Teaching Hospital"
REBUILT = "Harbour View Hospital"
# A test with deadlines on answers while its programs compete for the two cores runs alone
# (`serial`), not beside another worker's test; the others here wait on nothing but results.


@pytest.fixture
def root(tmp_path, workspace, embeddings) -> Path:
    """A corpus and its index, built in this process (the model is already loaded), with the
    model's export beside it, which the programs started here load (as in test_scale_out)."""
    shutil.copytree(workspace / "corpus", tmp_path / "corpus")
    Assistant(settings_in(tmp_path), embeddings=embeddings)
    with_model_export(tmp_path / "index", embeddings)
    return tmp_path


def cli(root: Path, *args: str, log: Path | None = None) -> subprocess.Popen:
    """The real command line in ``root``, started; documents are named by their path, so it
    indexes under the same absolute paths as this process."""
    folders = {
        "ASSISTANT_CORPUS_DIR": str(root / "corpus"),
        "ASSISTANT_INDEX_DIR": str(root / "index"),
    }
    return start_cli(root, *args, more_env=folders, log=log)


def finished(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_two_ingests_and_three_asks_at_once_after_an_edit(root, embeddings):
    document = next((root / "corpus").iterdir())
    document.write_text(document.read_text(encoding="utf-8") + "\n\nOne more closing line.")
    processes = [cli(root, "ingest") for _ in range(2)] + [
        cli(root, "ask", QUESTION) for _ in range(3)
    ]
    results = [finished(process) for process in processes]
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    ingests, asks = results[:2], results[2:]
    for _, out, _ in asks:
        assert FACT in out
    embedded = [int(out.split(" spans embedded")[0].rsplit(" ", 1)[-1]) for _, out, _ in ingests]
    assert sorted(embedded)[0] == 0, "the second writer waited and found the work done"
    bot = Assistant(settings_in(root), embeddings=embeddings)
    bot.index.verify()
    assert bot.ingest().embedded == 0
    assert FACT in shown(bot.ask(QUESTION))


def test_a_killed_ingest_leaves_the_previous_index_answering(root, embeddings):
    settings = settings_in(root)
    before = Assistant(settings, embeddings=embeddings, build_index=False).index.generation
    for number in range(40):
        (root / "corpus" / f"bulk-{number}.txt").write_text(
            f"Bulk document {number}. " + "A sentence about nothing in particular. " * 40
        )
    process = cli(root, "ingest")
    for line in process.stderr:  # kill it once a first batch is stored in the new generation
        if line.startswith("info: stored"):
            break
    else:
        pytest.fail("the ingest ended before it stored a batch")
    process.send_signal(signal.SIGKILL)
    process.wait()
    bot = Assistant(settings, embeddings=embeddings, build_index=False)
    assert bot.index.generation == before
    assert FACT in shown(bot.ask(QUESTION))
    previous = bot.index.record()

    def spans_held() -> int:
        return sum(
            c.count()
            for c in bot.index.client.list_collections()
            if "-chunks-" in c.name or "-sentences-" in c.name
        )

    spans_before = previous.count("chunks") + previous.count("sentences")
    stored_by_the_killed_one = spans_held() - spans_before
    assert stored_by_the_killed_one > 0
    report = bot.ingest()  # the next ingest resumes: what the killed one stored is kept
    record = bot.index.record()
    assert record.name != before
    assert report.kept >= stored_by_the_killed_one
    assert report.kept < record.count("chunks") + record.count("sentences")
    segments = set(record.segments) | set(bot.index.record(before).segments)
    for collection in bot.index.client.list_collections():  # nothing half-built is left
        name = collection.name
        assert name.endswith(("manifest", "generations")) or name.split("-", 2)[2] in segments


@pytest.mark.serial
def test_a_served_page_under_load_survives_ingests_and_follows_edits_and_a_rebuild(root):
    port = free_port()
    log = root / "serve.log"
    server = cli(root, "serve", "--port", str(port), log=log)
    url = f"http://127.0.0.1:{port}/"
    with serving(
        server, url + "config", 120, lambda: f"the page ({log.read_text()})", sig=signal.SIGINT
    ):
        document = next((root / "corpus").iterdir())
        versions = {str(root / "corpus" / document.name): {document.read_text(encoding="utf-8")}}
        calls, failures, citations = [0], [], []
        stop = threading.Event()

        def hammer() -> None:
            api = Client(url, verbose=False, analytics_enabled=False)
            while not stop.is_set():
                try:
                    answer = api.predict(QUESTION, api_name="/ask")
                    citations.extend(answer["citations"])
                except Exception as error:
                    failures.append(repr(error))
                calls[0] += 1

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()

        extra = root / "corpus" / "second.txt"
        extra.write_text("A second document.\n\nIt says little about hospitals or trials.\n")
        versions[str(root / "corpus" / "second.txt")] = {extra.read_text(encoding="utf-8")}
        code, _, err = finished(cli(root, "ingest"))
        assert code == 0, err

        edited = "A paragraph added at the top, so every offset moves.\n\n" + next(
            iter(versions[str(root / "corpus" / document.name)])
        ).replace(FACT, RENAMED)
        document.write_text(edited, encoding="utf-8")
        versions[str(root / "corpus" / document.name)].add(edited)
        api = Client(url, verbose=False, analytics_enabled=False)
        answers_with(api, RENAMED)

        code, _, err = finished(cli(root, "ingest", "--rebuild"))  # files set aside, re-embedded
        assert code == 0, err
        rebuilt = edited.replace(RENAMED, REBUILT)
        document.write_text(rebuilt, encoding="utf-8")
        versions[str(root / "corpus" / document.name)].add(rebuilt)
        answers_with(api, REBUILT)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert "Traceback" not in log.read_text()
    assert calls[0] > 20 and failures == [], failures[:3]
    assert citations
    for cited in citations:
        texts = versions[cited["source"]]
        assert any(text[cited["start"] : cited["end"]] == cited["quote"] for text in texts), cited


def answers_with(api: Client, fact: str, seconds: float = 90) -> None:
    """Wait until the page's answer (or its closest passages) shows ``fact``."""
    wait_until(
        lambda: fact in shown_text(api.predict(QUESTION, api_name="/ask")),
        seconds,
        every=1,
        failure=lambda: f"the page never answered with {fact!r}",
    )


def shown_text(answer: dict) -> str:
    return " ".join([answer["text"], *(passage["text"] for passage in answer.get("closest", []))])
