"""Answer latency against its floor, and the cold start of `assistant ask`, from one run.

    python benchmarks/latency.py [--rounds 3]

The floor is what any answer must cost: one question embedding plus one Chroma query, measured
on the same questions in the same run, so the ratio holds on a busy or a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def questions() -> list[str]:
    cases = yaml.safe_load((PROJECT / "evals" / "cases.yaml").read_text())["cases"]
    return [case["question"] for case in cases]


def warm(rounds: int) -> None:
    from assistant import Assistant

    bot = Assistant()
    embed = bot.embeddings
    asked = questions()
    answer_ms, floor_ms = [], []
    for round_number in range(rounds):
        for question in asked:
            fresh = f"{question} ({round_number})"  # never a cached question vector
            start = time.perf_counter()
            bot.index.query_chunks(embed.embed_query(fresh + " floor"), bot.settings.k)
            floor_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            bot.ask(fresh)
            answer_ms.append((time.perf_counter() - start) * 1000)
    p50, floor50 = statistics.median(answer_ms), statistics.median(floor_ms)
    print(f"questions: {len(asked)} x {rounds} rounds = {len(answer_ms)} answers")
    print(f"answer latency   p50 {p50:6.2f} ms   p95 {percentile(answer_ms, 0.95):6.2f} ms")
    print(f"floor (embed+query) p50 {floor50:6.2f} ms   p95 {percentile(floor_ms, 0.95):6.2f} ms")
    print(f"ratio p50 answer / floor: {p50 / floor50:.2f}  (target <= 1.5)")


def cold(runs: int) -> None:
    command = [sys.executable, "-m", "assistant.cli", "ask", "Which hospital will run the trial?"]
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=PROJECT, env=os.environ)
        timings.append(time.perf_counter() - start)
    probe = "import sys, assistant.cli; print('gradio' in sys.modules, 'torch' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    median = statistics.median(timings)
    print(
        f"cold `assistant ask` (index built), {runs} runs: median {median:.2f} s,"
        f" max {max(timings):.2f} s  (target < 3 s)"
    )
    print(f"importing the CLI loads gradio, torch: {loaded.stdout.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=5)
    options = parser.parse_args()
    os.chdir(PROJECT)
    warm(options.rounds)
    cold(options.cold_runs)


if __name__ == "__main__":
    main()
