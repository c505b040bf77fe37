"""Nothing leaves the machine unless the user names where it goes.

``ingest``, ``ask`` and ``serve`` run under strace, which records every address the processes
connect or send to; anything but loopback fails the test. The children get an environment with
every telemetry and offline switch removed, so the test proves that the package itself turns
them off (a DNS lookup shows as a connect to the resolver on port 53, which fails the test like
any other remote address). An LLM answerer goes only to a URL the user named, and the user is
told when that URL is off this machine.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from gradio_client import Client

from assistant import Settings
from assistant.answer import llm
from assistant.cli import main
from conftest import child_environment, free_port, serving

PROJECT = Path(__file__).resolve().parent.parent
STRACE = shutil.which("strace")
# Every process and thread; only these calls, which stop the process (seccomp-bpf): far less
# overhead than stopping at every system call.
STRACE_OPTIONS = ("-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg,sendmmsg")
SERVING_SECONDS = 12  # onnxruntime's telemetry looked its host up every 6-8 s
QUESTIONS = [
    "Which hospital will run the trial?",
    "Which agencies approved the Phase I trial?",
    "Who is XellSmart's chief executive?",
]
# Stripped from the children's environment (with anything whose name says telemetry, analytics,
# tracking or offline), so only the package can be what turns them off.
SWITCHES = {
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "TRANSFORMERS_OFFLINE",
    "ORT_DISABLE_TELEMETRY",
    "ANONYMIZED_TELEMETRY",
    "GRADIO_ANALYTICS_ENABLED",
    "DO_NOT_TRACK",
    "DISABLE_TELEMETRY",
}
SWITCH_NAME = re.compile(r"TELEMETRY|ANALYTICS|TRACK|OFFLINE")
ADDRESS = re.compile(  # one socket address; it holds no braces, so [^}] keeps to it
    r"sa_family=(?P<family>AF_\w+)"
    r'(?:[^}]*?(?:inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6, "(?P<v6>[^"]+)"))?'
)


def remote_calls(trace: str) -> list[str]:
    """The strace lines that reach for an address off this machine (not loopback, not a socket
    file or the kernel), e.g. ``connect(5, {sa_family=AF_INET, sin_port=htons(53), ...``."""
    offending = []
    for line in trace.splitlines():
        for found in ADDRESS.finditer(line):
            if found["family"] not in ("AF_INET", "AF_INET6"):
                continue
            host = found["v4"] or found["v6"]
            address = ipaddress.ip_address(host) if host else None
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if address is None or not address.is_loopback:
                offending.append(line)
                break
    return offending


def inet(address: str, port: int) -> str:
    """An IPv4 socket address as strace prints it."""
    return f'{{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr("{address}")}}'


def inet6(address: str, port: int) -> str:
    """An IPv6 socket address as strace prints it."""
    return (
        f"{{sa_family=AF_INET6, sin6_port=htons({port}), sin6_flowinfo=htonl(0), "
        f'inet_pton(AF_INET6, "{address}", &sin6_addr), sin6_scope_id=0}}'
    )


@pytest.mark.parametrize(
    ("line", "remote"),
    [
        ('connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1', False),
        ("sendto(4, {{nlmsg_len=20}}, 20, 0, {sa_family=AF_NETLINK, nl_pid=0}, 12) = 20", False),
        (f"connect(7, {inet('127.0.0.1', 7860)}, 16) = 0", False),
        (f"connect(7, {inet('127.8.9.1', 7860)}, 16) = 0", False),
        (f"connect(7, {inet6('::ffff:127.0.0.1', 7860)}, 28) = 0", False),
        (f"connect(7, {inet6('::1', 80)}, 28) = 0", False),
        (f"connect(5, {inet('10.255.255.53', 53)}, 16) = 0", True),
        (f'12 sendto(5, "\\x12", 45, MSG_NOSIGNAL, {inet("8.8.8.8", 53)}, 16) = 45', True),
        (f"connect(9, {inet6('2603:1030::1', 443)}, 28 <unfinished ...>", True),
        (f"connect(9, {inet6('::ffff:20.42.65.1', 443)}, 28) = -1 ENETUNREACH", True),
        (f"connect(9, {inet('0.0.0.0', 443)}, 16) = 0", True),
    ],
)
def test_remote_calls_are_told_from_local_ones(line, remote):
    assert remote_calls(line) == ([line] if remote else [])


def strace_usable() -> str | None:
    """Why the trace cannot be taken here, or None when it can."""
    if STRACE is None:
        return "strace is not installed (make test installs Debian's strace)"
    try:
        probe = subprocess.run(
            [STRACE, *STRACE_OPTIONS, "-o", os.devnull, "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"strace cannot run: {error}"
    if probe.returncode != 0:
        return f"ptrace is not permitted here: {probe.stderr.strip()}"
    return None


STRACE_PROBLEM = strace_usable()
needs_strace = pytest.mark.skipif(STRACE_PROBLEM is not None, reason=STRACE_PROBLEM or "")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A working folder with a copy of the corpus; index and data go beside it."""
    root = tmp_path_factory.mktemp("outbound")
    shutil.copytree(PROJECT / "corpus", root / "corpus")
    return root


@pytest.fixture(scope="module")
def bare_environment(home) -> dict[str, str]:
    """The children's environment: this one without any telemetry or offline switch, with the
    folders of ``home`` and the extractive answerer."""
    return child_environment(
        home,
        drop=lambda name: name in SWITCHES or SWITCH_NAME.search(name),
        answerer="extractive",
    )


def traced(trace_file: Path, *arguments: str) -> list[str]:
    return [
        str(STRACE),
        *STRACE_OPTIONS,
        "-o",
        str(trace_file),
        sys.executable,
        "-m",
        "assistant.cli",
        *arguments,
    ]


def assert_stayed_local(trace_file: Path) -> None:
    offending = remote_calls(trace_file.read_text(errors="replace"))
    assert not offending, "reached off this machine:\n" + "\n".join(offending[:20])


@pytest.fixture(scope="module")
def ingested(home, bare_environment) -> Path:
    trace = home / "ingest.strace"
    run_traced(home, bare_environment, trace, "ingest")
    return trace


def run_traced(home: Path, environment: dict, trace: Path, *args: str) -> str:
    """Run the CLI with ``args`` under strace (writing ``trace``); its output, once it passed."""
    result = subprocess.run(
        traced(trace, *args),
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_strace
def test_ingest_sends_nothing_outside(ingested):
    assert_stayed_local(ingested)


@needs_strace
def test_ask_sends_nothing_outside(home, bare_environment, ingested):
    trace = home / "ask.strace"
    assert "Sun Yat-sen" in run_traced(home, bare_environment, trace, "ask", QUESTIONS[0], "--json")
    assert_stayed_local(trace)


@contextmanager
def serve_traced(home: Path, environment: dict[str, str], trace: Path) -> Iterator[str]:
    """``assistant serve`` on a free loopback port, under strace, until the block ends."""
    port = free_port()
    log_path = home / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            traced(trace, "serve", "--host", "127.0.0.1", "--port", str(port)),
            cwd=home,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # strace and the server in one group, ended together
        )
    url = f"http://127.0.0.1:{port}/"
    with serving(
        server, url + "config", 120, lambda: f"the server ({log_path.read_text()})", group=True
    ):
        yield url


@needs_strace
def test_serve_sends_nothing_outside(home, bare_environment, ingested):
    trace = home / "serve.strace"
    with serve_traced(home, bare_environment, trace) as url:
        started = time.monotonic()
        api = Client(url, verbose=False, analytics_enabled=False)
        for question in QUESTIONS:
            assert api.predict(question, api_name="/ask")["text"]
        time.sleep(max(0.0, SERVING_SECONDS - (time.monotonic() - started)))
    assert_stayed_local(trace)


REMOTE = "Questions and document passages will be sent to {} ({})."


@pytest.mark.parametrize(
    ("answerer", "base_url", "notice"),
    [
        ("extractive", None, None),
        ("extractive", "https://llm.example.com/v1", None),
        ("ollama:llama3", None, None),
        ("ollama:llama3", "http://localhost:11434", None),
        ("ollama:llama3", "127.0.0.1:11434", None),
        ("openai:m", "http://127.0.0.1:8000/v1", None),
        ("openai:m", "http://127.8.0.1:8000/v1", None),
        ("openai:m", "http://[::1]:8000/v1", None),
        ("openai:m", "http://[::ffff:127.0.0.1]:8000/v1", None),
        ("openai:m", "https://llm.example.com/v1", "https://llm.example.com/v1"),
        ("openai:m", "http://localhost.example.com/v1", "http://localhost.example.com/v1"),
        ("ollama:llama3", "http://10.0.0.7:11434", "http://10.0.0.7:11434"),
        ("ollama:llama3", "gpu-box:11434", "gpu-box:11434"),
        ("openai:m", "http://[2001:db8::1]/v1", "http://[2001:db8::1]/v1"),
        ("ollama:m", "https://me:s3cret@llm.example.com:443", "https://llm.example.com:443"),
    ],
)
def test_the_user_is_told_when_documents_leave_the_machine(answerer, base_url, notice):
    settings = Settings.load(environ={}, answerer=answerer, llm_base_url=base_url)
    backend = answerer.partition(":")[0]
    assert llm.remote_notice(settings) == (notice and REMOTE.format(notice, backend))


@pytest.mark.parametrize(
    ("answerer", "base_url", "message"),
    [
        ("openai:gpt-4o", None, "set ASSISTANT_LLM_BASE_URL"),
        ("openai:gpt-4o", "", "set ASSISTANT_LLM_BASE_URL"),
        ("openai:gpt-4o", "http:///v1", "names no host"),
        ("nope:model", None, "unknown answerer backend"),
        ("ollama", None, "not 'extractive'"),
    ],
)
def test_an_answerer_without_a_named_endpoint_is_one_clear_error(answerer, base_url, message):
    settings = Settings.load(environ={}, answerer=answerer, llm_base_url=base_url)
    with pytest.raises(ValueError, match=message):
        llm.remote_notice(settings)
    with pytest.raises(ValueError, match=message):
        llm.chat_model_from_settings(settings)


def test_ollama_without_a_url_is_this_machine_whatever_ollama_host_says(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box.example.com:11434")
    settings = Settings.load(environ={}, answerer="ollama:llama3")
    assert llm.chat_model_from_settings(settings).base_url == "http://127.0.0.1:11434"


ELSEWHERE = "https://llm.example.com/v1"
NO_CORPUS = "Error: corpus folder"


@pytest.mark.parametrize(
    ("command", "answerer", "base_url", "first_line"),
    [
        ("ask", "openai:m", ELSEWHERE, REMOTE.format(ELSEWHERE, "openai")),
        ("chat", "openai:m", ELSEWHERE, REMOTE.format(ELSEWHERE, "openai")),
        ("serve", "ollama:m", ELSEWHERE, REMOTE.format(ELSEWHERE, "ollama")),
        ("ask", "ollama:m", None, NO_CORPUS),
        ("ask", "openai:m", "http://127.0.0.1:8000/v1", NO_CORPUS),
        ("ask", "openai:m", None, "Error: the openai answerer sends questions and document"),
    ],
)
def test_the_cli_says_where_questions_go_before_anything_else(
    tmp_path, command, answerer, base_url, first_line
):
    """The notice comes first: a missing corpus then stops the command before any question."""
    arguments = ["--answerer", answerer, command, *(["Who?"] if command == "ask" else [])]
    environment = {
        "ASSISTANT_CORPUS_DIR": str(tmp_path / "missing"),
        "ASSISTANT_INDEX_DIR": str(tmp_path / "index"),
        "ASSISTANT_LLM_BASE_URL": base_url,
    }
    result = CliRunner().invoke(main, arguments, env=environment, input="")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(first_line)
    assert len(lines) == (2 if first_line.startswith("Questions") else 1), result.stderr
