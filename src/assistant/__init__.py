"""Grounded question answering over a document collection, with offset-exact citations.

Importing this package loads no model and no web framework: the model loads when an
``Assistant`` is made.

Nothing is sent off this machine unless the user names an LLM endpoint (``answer.llm``). The
libraries underneath phone home unless told not to (onnxruntime's usage telemetry looks up its
collector every few seconds, Gradio reports launches, Chroma has product telemetry, Hugging Face
libraries check the hub), and each reads its switch once, when it first loads. So the switches
are set here, before anything below imports them: every entry point (the CLI, the page, the
tests, a user's program) imports this package first. ``setdefault`` leaves a value the user set
deliberately as it is. A program that imports onnxruntime before this package must set
``ORT_DISABLE_TELEMETRY=1`` itself: the ONNX session's ``disable_telemetry_events()`` stops new
events, not the uploader already retrying the first one.
"""

import os

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub, sentence-transformers: never ask the hub
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime's 1DS usage telemetry
    "ANONYMIZED_TELEMETRY": "False",  # Chroma's product telemetry (posthog)
    "GRADIO_ANALYTICS_ENABLED": "False",  # Gradio's launch analytics and version check
    "DO_NOT_TRACK": "1",  # the cross-tool convention (huggingface_hub and others read it)
    "DISABLE_TELEMETRY": "1",
    # Not network, but read as early: no tokenizer fork warnings, no download progress bars.
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def switch_off_outbound() -> None:
    """Set every switch in ``OFFLINE_ENVIRONMENT`` the user has not set."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


switch_off_outbound()

from assistant.answer.types import Answer, Citation, Passage  # noqa: E402 - after the switches
from assistant.assistant import Assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.question import Question  # noqa: E402

__all__ = ["Answer", "Assistant", "Citation", "Passage", "Question", "Settings"]
