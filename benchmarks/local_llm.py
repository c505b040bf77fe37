"""What the local model costs on this machine, by route: load time, resident memory, prefill of a
realistic prompt, generation speed, and one whole answer.

    python benchmarks/local_llm.py [--tokens 40] [--llama-python /tmp/llamavenv/bin/python]

The prompt is what ``build_messages`` makes for a question over six 800-character chunks of the
corpus (the default k and chunk size).  Each route runs in a process of its own, so neither's
memory counts against the other: ``transformers`` (the route shipped, through ``LocalChatModel``)
in this interpreter, and ``llama.cpp`` through ``llama-cpp-python`` in whichever interpreter has
it (it builds from source, so it is kept out of the project's environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
QUESTION = "How many people have spinal cord injury, and where will the trial run?"
CHUNK_CHARS, OVERLAP, CHUNKS = 800, 160, 6
ANSWER_TOKENS = 80  # local_model.MAX_NEW_TOKENS
REPEATS = 5  # the fastest of these is reported: the machine is shared, and noise only adds time


def prompt_messages() -> list[dict[str, str]]:
    """The chat an answer sends: system prompt, six numbered ~800-character sources, question."""
    from langchain_core.documents import Document

    from assistant.answer.llm import build_messages
    from assistant.answer.local_model import ROLES

    path = next((PROJECT / "corpus").glob("*.txt"))
    text = path.read_text(encoding="utf-8")
    step = CHUNK_CHARS - OVERLAP
    documents = [
        Document(text[start : start + CHUNK_CHARS], metadata={"source": f"corpus/{path.name}"})
        for start in range(0, step * CHUNKS, step)
    ]
    return [
        {"role": ROLES[message.type], "content": message.text}
        for message in build_messages(QUESTION, documents)
    ]


def memory_mb() -> dict[str, float]:
    """Resident memory now and at its peak, from the kernel's own count."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {
        name: int(fields[key].split()[0]) / 1024
        for name, key in (("rss_mb", "VmRSS"), ("peak_rss_mb", "VmHWM"))
    }


def measure_transformers(messages: list[dict[str, str]], tokens: int) -> dict:
    started = time.perf_counter()
    import torch
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from assistant.answer.local_model import LocalChatModel, load_local_model

    imported = time.perf_counter()
    loaded = load_local_model("smollm2")
    ready = time.perf_counter()
    chat = LocalChatModel()
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    chat_messages = [kinds[m["role"]](m["content"]) for m in messages]
    inputs = loaded.tokenizer(
        chat.prompt(chat_messages), add_special_tokens=False, return_tensors="pt"
    )

    def generate(count: int) -> float:
        begun = time.perf_counter()
        with torch.inference_mode():
            loaded.model.generate(
                **inputs,
                max_new_tokens=count,
                min_new_tokens=count,
                do_sample=False,
                pad_token_id=loaded.tokenizer.eos_token_id,
            )
        return time.perf_counter() - begun

    generate(1)  # warm-up: the first call sets up kernels
    prefill = min(generate(1) for _ in range(REPEATS))
    decode = min(generate(tokens) for _ in range(REPEATS))
    begun = time.perf_counter()
    reply = chat.invoke(chat_messages)
    answer = time.perf_counter() - begun
    return {
        "route": "transformers",
        "import_s": imported - started,
        "load_s": ready - imported,
        **memory_mb(),
        "prompt_tokens": inputs["input_ids"].shape[1],
        "prefill_s": prefill,
        "decode_tokens_per_s": (tokens - 1) / (decode - prefill),
        "answer_s": answer,
        "answer_tokens": reply.usage_metadata["output_tokens"],
        "threads": torch.get_num_threads(),
    }


def measure_llama_cpp(messages: list[dict[str, str]], tokens: int, model_path: str) -> dict:
    started = time.perf_counter()
    import llama_cpp.llama_cpp as low_level
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    # A build for this CPU repacks weights for its AMX unit, which crashes (SIGSEGV in
    # ggml_backend_amx_mul_mat) where the kernel does not grant AMX state, as in this VM:
    # load with the plain CPU buffers instead.
    default_params = low_level.llama_model_default_params

    def without_extra_buffers() -> low_level.llama_model_params:
        params = default_params()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = without_extra_buffers

    imported = time.perf_counter()
    threads = os.cpu_count() or 1
    llm = Llama(model_path, n_ctx=4096, n_threads=threads, verbose=False)
    ready = time.perf_counter()
    formatter = Jinja2ChatFormatter(
        llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    prompt = formatter(messages=messages).prompt
    prompt_tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def prefill() -> float:
        llm.reset()
        begun = time.perf_counter()
        llm.eval(prompt_tokens)
        return time.perf_counter() - begun

    prefill()  # warm-up
    prefill_s = min(prefill() for _ in range(REPEATS))
    rates = []
    for _ in range(REPEATS):
        prefill()
        begun = time.perf_counter()
        for _ in range(tokens):
            llm.eval([llm.sample(temp=0.0)])
        rates.append(tokens / (time.perf_counter() - begun))
    llm.reset()
    begun = time.perf_counter()
    reply = llm.create_chat_completion(messages, max_tokens=ANSWER_TOKENS, temperature=0.0)
    answer = time.perf_counter() - begun
    return {
        "route": "llama.cpp",
        "import_s": imported - started,
        "load_s": ready - imported,
        **memory_mb(),
        "prompt_tokens": len(prompt_tokens),
        "prefill_s": prefill_s,
        "decode_tokens_per_s": max(rates),
        "answer_s": answer,
        "answer_tokens": reply["usage"]["completion_tokens"],
        "threads": threads,
    }


def run_route(python: str, route: str, messages: list[dict[str, str]], args) -> dict | None:
    """One route's figures, measured in a fresh process; None when it cannot run there."""
    command = [python, __file__, "--measure", route, "--tokens", str(args.tokens)]
    environment = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        command,
        input=json.dumps({"messages": messages, "model": args.model}),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if done.returncode != 0:
        print(f"{route}: not measured ({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40, help="Tokens generated per speed run.")
    parser.add_argument(
        "--llama-python",
        default=sys.executable,
        help="An interpreter with llama-cpp-python installed.",
    )
    parser.add_argument("--measure", choices=["transformers", "llama.cpp"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        given = json.loads(sys.stdin.read())
        if args.measure == "transformers":
            figures = measure_transformers(given["messages"], args.tokens)
        else:
            figures = measure_llama_cpp(given["messages"], args.tokens, given["model"])
        print(json.dumps(figures))
        return

    from assistant.answer.local_model import model_file

    args.model = str(model_file("smollm2"))
    messages = prompt_messages()
    rows = [
        run_route(sys.executable, "transformers", messages, args),
        run_route(args.llama_python, "llama.cpp", messages, args),
    ]
    print(f"SmolLM2-135M-Instruct Q4_1, {os.cpu_count()} cores, {args.tokens} tokens per speed run")
    header = (
        "route",
        "import s",
        "load s",
        "RSS MB",
        "peak MB",
        "prompt tok",
        "prefill s",
        "tok/s",
        "answer s",
        "answer tok",
    )
    print(" | ".join(header))
    for row in filter(None, rows):
        print(
            f"{row['route']} | {row['import_s']:.1f} | {row['load_s']:.1f} | {row['rss_mb']:.0f} | "
            f"{row['peak_rss_mb']:.0f} | {row['prompt_tokens']} | {row['prefill_s']:.2f} | "
            f"{row['decode_tokens_per_s']:.1f} | {row['answer_s']:.1f} | {row['answer_tokens']}"
        )


if __name__ == "__main__":
    main()
