"""Votes on the page's answers, and thumbs-down votes turned into draft eval cases.

A thumbs-down is the cheapest label there is: a reader saw an answer and found it wrong.
``FeedbackLog`` keeps each vote as one JSON line in ``<data_dir>/feedback.jsonl`` with what is
needed to ask the question again (the question and the conversation's earlier turns) and to
judge the answer (its text, citations, or the closest passages of a refusal).
``export_drafts`` turns the thumbs-down lines into cases in the schema of ``evals/cases.yaml``
with the labels left empty: a person must say whether the documents answer the question and
with which facts and passage, so a draft is refused by ``load_cases`` until it is reviewed and
cannot slip into a gated set unlabelled.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from assistant.config import project_root
from assistant.question import MAX_HISTORY_TURNS

logger = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
FEEDBACK_TEXT_CHARS = 4000  # of each string a vote stores: enough to read, bounded per line
DRAFTS_DIR = Path("evals") / "drafts"
TODO_ANSWERABLE = "TODO: true if the documents answer it, false if it must be refused"
DRAFTS_HEADER = """\
# Draft eval cases from thumbs-down votes on the chat page (`assistant feedback export`).
#
# Not an eval set yet: `load_cases` refuses every case here until a reviewer has
#   - set `answerable` to true (the documents answer it) or false (it must be refused);
#   - checked `kind`, a guess (multiturn when there is history, else fact);
#   - for an answerable case, listed the `facts` the answer must contain and copied `support`
#     verbatim from `source` (a guess from the citations: fix it if the answer is elsewhere);
#   - read `given`: what the assistant answered and when it was voted down (ignored by the
#     loader; delete it when moving the case).
# Then move the case into evals/cases.yaml or evals/corpora/<set>/cases.yaml (see its header).

"""


def _capped(value: Any) -> Any:
    """``value`` with every string in it cut to ``FEEDBACK_TEXT_CHARS``, so what a vote writes
    stays small whatever a client asked."""
    if isinstance(value, str):
        return value[:FEEDBACK_TEXT_CHARS]
    if isinstance(value, dict):
        return {key: _capped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_capped(item) for item in value]
    return value


class FeedbackLog:
    """Votes on answers, one JSON object a line, so bad answers can become eval cases.

    One vote per answer counts: a later vote on the same answer replaces the earlier one (a
    reader who changes their mind means the last click), and taking a vote back removes it, so
    the file holds at most one line per answer. Every stored string is capped
    (``FEEDBACK_TEXT_CHARS``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._recorded: set[str] = set()  # answers (made by this process) with a line in the file

    def record(
        self, turn: dict[str, Any], vote: str | None, earlier: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Store ``vote`` ("up" or "down") on the turn's answer; None takes a vote back.

        ``earlier`` are the conversation's turns before this one (the page's turns): a
        follow-up cannot be asked again, nor judged, without them. The last
        ``MAX_HISTORY_TURNS`` (as many as an answer is given) are kept as ``history``,
        [question, answer text] pairs.
        """
        answer_id = turn["id"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # other server processes may share the data folder: they take turns on the file too
        with self._lock, FileLock(self.path.with_name(self.path.name + ".lock")):
            if answer_id in self._recorded:
                self._drop(answer_id)
            if vote is None:
                return
            answer = turn["answer"]
            record = {
                "answer_id": answer_id,
                "question": turn["question"],
                "history": [
                    [before["question"], before["answer"]["text"]]
                    for before in list(earlier)[-MAX_HISTORY_TURNS:]
                ],
                "answer": answer["text"],
                "refused": answer["refused"],
                "citations": answer["citations"],
                "closest": answer.get("closest") or [],
                "vote": vote,
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "k": turn["k"],
                "answerer": turn["answerer"],
            }
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(_capped(record), ensure_ascii=False) + "\n")
            self._recorded.add(answer_id)

    def _drop(self, answer_id: str) -> None:
        """Rewrite the file without the line of ``answer_id`` (atomically: a reader sees the old
        file or the new one, never half of one)."""
        if not self.path.exists():  # removed by hand meanwhile: nothing to drop
            self._recorded.discard(answer_id)
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if f'"answer_id": "{answer_id}"' not in line]
        rewritten = self.path.with_name(self.path.name + ".tmp")
        rewritten.write_text("".join(kept), encoding="utf-8")
        rewritten.replace(self.path)
        self._recorded.discard(answer_id)


def parse_utc(text: str) -> datetime:
    """A date (YYYY-MM-DD, its midnight) or an ISO time, in UTC when no offset is given."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: give YYYY-MM-DD or an ISO time such as 2026-11-26T09:30"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_votes(path: Path) -> list[dict[str, Any]]:
    """The votes in a feedback file, one per answer (its last line: the last click counts), in
    the order they were last cast.

    A line that is not a vote (broken JSON from a crash mid-write, a hand edit) is skipped
    with a warning naming its line number, so one bad line never hides the others.
    """
    votes: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                vote = _checked_vote(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("line %d of %s skipped: not valid JSON", number, path)
                continue
            except ValueError as error:
                logger.warning("line %d of %s skipped: %s", number, path, error)
                continue
            votes.pop(vote["answer_id"], None)  # re-inserted: ordered by its last line
            votes[vote["answer_id"]] = vote
    return list(votes.values())


def _checked_vote(record: Any) -> dict[str, Any]:
    """``record`` with its time parsed, or ValueError saying what it lacks."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("answer_id", "question", "vote", "time"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"no {key}")
    history = record.get("history") or []
    if not isinstance(history, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        for pair in history
    ):
        raise ValueError("history is not a list of [question, answer] pairs")
    for key in ("citations", "closest"):
        if not isinstance(record.get(key) or [], list):
            raise ValueError(f"{key} is not a list")
    try:
        moment = parse_utc(record["time"])
    except ValueError:
        raise ValueError(f"time {record['time']!r} is not an ISO time") from None
    return {**record, "history": history, "time": moment}


def draft_case(vote: dict[str, Any], root: Path) -> dict[str, Any]:
    """One thumbs-down as a case of ``evals/cases.yaml``, its labels left to a reviewer;
    sources are written relative to ``root`` (the project the drafts file belongs to)."""
    citations = [c for c in vote.get("citations") or [] if isinstance(c, dict)]
    closest = [p for p in vote.get("closest") or [] if isinstance(p, dict)]
    case: dict[str, Any] = {
        "id": f"feedback-{vote['answer_id']}",
        "kind": "multiturn" if vote["history"] else "fact",
        "question": vote["question"],
    }
    if vote["history"]:
        case["history"] = vote["history"]
    case |= {"answerable": TODO_ANSWERABLE, "facts": [], "support": ""}
    sources = [c.get("source") for c in citations + closest if isinstance(c.get("source"), str)]
    if sources:
        case["source"] = _relative_source(sources[0], root)
    given: dict[str, Any] = {"answer": vote.get("answer", ""), "refused": vote.get("refused")}
    if citations:
        given["citations"] = [
            {key: c.get(key) for key in ("source", "start", "end", "quote")} for c in citations
        ]
    if closest:
        given["closest"] = [_closest_shown(passage) for passage in closest]
    given |= {
        "voted_down": vote["time"].isoformat(timespec="seconds"),
        "k": vote.get("k"),
        "answerer": vote.get("answerer"),
    }
    case["given"] = given
    return case


def _closest_shown(passage: dict[str, Any]) -> dict[str, Any]:
    """A refusal's closest passage as the reader saw it: its best sentence and where it is."""
    text, start = passage.get("text"), passage.get("start")
    best_start, best_end = passage.get("best_start"), passage.get("best_end")
    shown: dict[str, Any] = {"source": passage.get("source"), "start": best_start, "end": best_end}
    if isinstance(text, str) and all(isinstance(n, int) for n in (start, best_start, best_end)):
        shown["quote"] = text[best_start - start : best_end - start]
    return shown


def _relative_source(source: str, root: Path) -> str:
    """``source`` (as the loader saw it, from the working directory) as a case names it:
    relative to the project root when it lies inside, else absolute."""
    path = Path(source).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


class _DraftDumper(yaml.SafeDumper):
    """Block style for text with line breaks, so an answer reads as it was shown."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_DraftDumper.add_representer(str, _represent_text)


def drafts_yaml(votes: Sequence[dict[str, Any]], root: Path) -> str:
    """The drafts file: a header saying how to review it, then one draft case per vote."""
    cases = [draft_case(vote, root) for vote in votes]
    body = yaml.dump(
        {"cases": cases},
        Dumper=_DraftDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return DRAFTS_HEADER + body


def default_output(today: date | None = None) -> Path:
    """``evals/drafts/feedback-<today, UTC>.yaml``, under the working directory."""
    return DRAFTS_DIR / f"feedback-{(today or datetime.now(UTC).date()).isoformat()}.yaml"


def export_drafts(
    feedback_path: Path,
    output: Path,
    since: datetime | None = None,
    force: bool = False,
) -> int:
    """Write the thumbs-down votes in ``feedback_path`` (cast at or after ``since``) to
    ``output`` as draft cases; the number written (0: no file is written).

    Raises FileNotFoundError when there is no feedback file and FileExistsError when
    ``output`` exists and ``force`` is not given, each with a sentence saying what to do.
    """
    if not feedback_path.is_file():
        raise FileNotFoundError(
            f"No feedback yet: {feedback_path} does not exist (votes on the chat page are "
            "written there; set ASSISTANT_DATA_DIR if the page used another data folder)."
        )
    downs = [
        vote
        for vote in read_votes(feedback_path)
        if vote["vote"] == "down" and (since is None or vote["time"] >= since)
    ]
    if not downs:
        return 0
    text = drafts_yaml(downs, project_root(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("w" if force else "x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        raise FileExistsError(
            f"{output} already exists: pass --force to replace it, or --output another file."
        ) from None
    return len(downs)
