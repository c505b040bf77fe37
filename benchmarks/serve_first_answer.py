"""Time from starting `assistant serve` to the first answer through the /ask API.

    python benchmarks/serve_first_answer.py [--runs 3]

Run with the index built (e.g. after `assistant ingest`); the server uses a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_answer_seconds() -> float:
    from gradio_client import Client

    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
                break
            except Exception:
                if server.poll() is not None or time.perf_counter() - start > 120:
                    raise RuntimeError("the server did not come up") from None
                time.sleep(0.1)
        result = client.predict("Which hospital will run the trial?", api_name="/ask")
        assert "Third Affiliated Hospital" in result["text"], result
        return time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = [first_answer_seconds() for _ in range(parser.parse_args().runs)]
    print(
        f"`assistant serve` to first /ask answer, {len(runs)} runs: "
        f"median {statistics.median(runs):.2f} s, min {min(runs):.2f} s, max {max(runs):.2f} s"
    )


if __name__ == "__main__":
    main()
