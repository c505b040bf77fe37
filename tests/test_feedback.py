"""Thumbs-down votes become draft eval cases: written by the real ``FeedbackLog`` (and once by
the real page in a real browser), exported by the real ``assistant feedback export`` command,
and read back by the real ``load_cases``, which refuses a draft until a reviewer labels it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from playwright.sync_api import expect

from assistant.cli import main
from assistant.config import project_root
from assistant.evals.cases import CaseError, load_cases, resolve_source
from assistant.web.feedback import FEEDBACK_FILE, FEEDBACK_TEXT_CHARS, TODO_ANSWERABLE, FeedbackLog
from conftest import ask_on_page, page_server, wait_until

HOSPITAL = "Which hospital will run the trial?"
HOSPITAL_NAME = "Third Affiliated Hospital of Sun Yat-sen University"
UNANSWERABLE = "Who is XellSmart's chief executive?"  # one of the shipped example questions


@pytest.fixture(scope="module")
def answers(bot) -> dict[str, dict[str, Any]]:
    """Real answers, as the page keeps them: one with a citation and a refusal."""
    return {question: bot.ask(question).to_dict() for question in (HOSPITAL, UNANSWERABLE)}


def page_turn(question: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A turn as the page's ``respond`` keeps it in its state."""
    return {
        "id": uuid.uuid4().hex,
        "question": question,
        "answer": answer,
        "k": 6,
        "answerer": "extractive",
    }


def export(data_dir: Path, *arguments: str) -> Result:
    """``assistant feedback export ARGUMENTS`` with the page's data folder ``data_dir``."""
    return CliRunner().invoke(
        main, ["feedback", "export", *arguments], env={"ASSISTANT_DATA_DIR": str(data_dir)}
    )


def exported(data_dir: Path, output: Path, *arguments: str) -> list[dict[str, Any]]:
    """The draft cases an export writes to ``output`` (it must succeed)."""
    result = export(data_dir, "--output", str(output), *arguments)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(output.read_text(encoding="utf-8"))["cases"]


def set_vote_times(path: Path, times: dict[str, str]) -> None:
    """Back-date votes (answer id -> ISO time), as if they had been cast then."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for record in records:
        record["time"] = times.get(record["answer_id"], record["time"])
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_a_vote_keeps_the_earlier_turns_and_a_refusals_closest_passages(tmp_path, answers):
    log = FeedbackLog(tmp_path / FEEDBACK_FILE)
    long_answer = {**answers[HOSPITAL], "text": "y" * (FEEDBACK_TEXT_CHARS + 500)}
    earlier = [page_turn(f"question {n}", long_answer) for n in range(12)]
    refusal = page_turn(UNANSWERABLE, answers[UNANSWERABLE])
    log.record(refusal, "down", earlier)

    (record,) = [json.loads(line) for line in log.path.read_text("utf-8").splitlines()]
    assert [question for question, _ in record["history"]] == [
        f"question {n}" for n in range(2, 12)
    ]
    assert all(len(answer) == FEEDBACK_TEXT_CHARS for _, answer in record["history"])
    assert record["refused"] is True and record["citations"] == []
    assert record["closest"] == answers[UNANSWERABLE]["closest"] and record["closest"]
    assert record["vote"] == "down" and record["question"] == UNANSWERABLE


def test_export_writes_each_thumbs_down_once_as_a_draft_case(tmp_path, answers):
    path = tmp_path / FEEDBACK_FILE
    log, other_server = FeedbackLog(path), FeedbackLog(path)
    first = page_turn(HOSPITAL, answers[HOSPITAL])
    follow_up = page_turn(UNANSWERABLE, answers[UNANSWERABLE])
    liked = page_turn("Which agencies approved the trial?", answers[HOSPITAL])
    changed_mind = page_turn("What cells is the therapy made from?", answers[HOSPITAL])
    taken_back = page_turn("What did XS228 receive?", answers[HOSPITAL])
    log.record(first, "down")
    log.record(follow_up, "down", [first])
    other_server.record(follow_up, "down", [first])  # a second line for the same answer
    log.record(liked, "up")
    log.record(changed_mind, "down")
    log.record(changed_mind, "up")
    log.record(taken_back, "down")
    log.record(taken_back, None)

    cases = exported(tmp_path, tmp_path / "drafts.yaml")

    assert [case["id"] for case in cases] == [
        f"feedback-{first['id']}",
        f"feedback-{follow_up['id']}",
    ]
    single, multi = cases
    assert single["kind"] == "fact" and "history" not in single
    assert single["question"] == HOSPITAL
    assert (single["answerable"], single["facts"], single["support"]) == (TODO_ANSWERABLE, [], "")
    cited = answers[HOSPITAL]["citations"][0]
    assert single["given"]["answer"] == answers[HOSPITAL]["text"]
    assert single["given"]["citations"][0] == {
        k: cited[k] for k in ("source", "start", "end", "quote")
    }
    resolved = resolve_source(single["source"], project_root(tmp_path / "drafts.yaml"))
    assert resolved.resolve() == Path(cited["source"]).resolve()  # where load_cases looks
    assert datetime.fromisoformat(single["given"]["voted_down"]).tzinfo is not None
    assert multi["kind"] == "multiturn"
    assert multi["history"] == [[HOSPITAL, answers[HOSPITAL]["text"]]]
    assert multi["given"]["refused"] is True and HOSPITAL_NAME not in multi["given"]["answer"]
    closest = answers[UNANSWERABLE]["closest"][0]
    best = closest["text"][
        closest["best_start"] - closest["start"] : closest["best_end"] - closest["start"]
    ]
    assert multi["given"]["closest"][0]["quote"] == best


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        pytest.param(None, ["old", "morning", "noon", "evening"], id="everything"),
        pytest.param("2026-03-02", ["morning", "noon", "evening"], id="a-date-is-its-midnight"),
        pytest.param("2026-03-02T12:00:00", ["noon", "evening"], id="a-time-without-offset-is-utc"),
        pytest.param("2026-03-02T13:00:00+01:00", ["noon", "evening"], id="an-offset-is-converted"),
        pytest.param("2026-03-02T12:00:01Z", ["evening"], id="just-after"),
    ],
)
def test_since_keeps_the_votes_cast_from_then_on(tmp_path, answers, since, expected):
    log = FeedbackLog(tmp_path / FEEDBACK_FILE)
    times = {
        "old": "2026-03-01T23:59:59+00:00",
        "morning": "2026-03-02T08:00:00+00:00",
        "noon": "2026-03-02T12:00:00+00:00",
        "evening": "2026-03-02T20:00:00+00:00",
    }
    for name in times:
        log.record({**page_turn(name, answers[HOSPITAL]), "id": name}, "down")
    set_vote_times(log.path, times)

    cases = exported(tmp_path, tmp_path / "drafts.yaml", *(["--since", since] if since else []))

    assert [case["question"] for case in cases] == expected


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        pytest.param('{"answer_id": "cut", "question": "Wh', "not valid JSON", id="cut-short"),
        pytest.param('["a", "list"]', "not a JSON object", id="not-an-object"),
        pytest.param('{"answer_id": "x", "vote": "down"}', "no question", id="no-question"),
        pytest.param(
            '{"answer_id": "x", "question": "q", "vote": "down", "time": "yesterday"}',
            "not an ISO time",
            id="bad-time",
        ),
        pytest.param(
            '{"answer_id": "x", "question": "q", "vote": "down", "time": "2026-03-02", '
            '"history": ["not a pair"]}',
            "history",
            id="bad-history",
        ),
    ],
)
def test_a_malformed_line_is_skipped_with_a_warning_naming_it(
    tmp_path, answers, caplog, bad_line, reason
):
    log = FeedbackLog(tmp_path / FEEDBACK_FILE)
    before, after = page_turn("before", answers[HOSPITAL]), page_turn("after", answers[HOSPITAL])
    log.record(before, "down")
    with log.path.open("a", encoding="utf-8") as file:
        file.write(bad_line + "\n")
    log.record(after, "down")

    with caplog.at_level(logging.WARNING, logger="assistant.web.feedback"):
        cases = exported(tmp_path, tmp_path / "drafts.yaml")

    assert [case["question"] for case in cases] == ["before", "after"]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "assistant.web.feedback"]
    assert warning.startswith(f"line 2 of {log.path} skipped") and reason in warning


def test_a_missing_feedback_file_is_one_clear_line_and_exit_1(tmp_path):
    result = export(tmp_path / "nowhere", "--output", str(tmp_path / "drafts.yaml"))

    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert "No feedback yet" in line and "Traceback" not in line
    assert not (tmp_path / "drafts.yaml").exists()


def test_nothing_to_export_writes_no_file(tmp_path, answers):
    FeedbackLog(tmp_path / FEEDBACK_FILE).record(page_turn(HOSPITAL, answers[HOSPITAL]), "up")

    result = export(tmp_path, "--output", str(tmp_path / "drafts.yaml"))

    assert result.exit_code == 0 and "No thumbs-down votes" in result.output
    assert not (tmp_path / "drafts.yaml").exists()


def test_an_unreadable_since_is_a_usage_error(tmp_path):
    result = export(tmp_path, "--since", "last tuesday")

    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_the_default_drafts_file_is_never_overwritten_without_force(tmp_path, answers, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = FeedbackLog(tmp_path / "data" / FEEDBACK_FILE)
    log.record(page_turn(HOSPITAL, answers[HOSPITAL]), "down")
    drafts = tmp_path / "evals" / "drafts" / f"feedback-{datetime.now(UTC).date()}.yaml"

    written = export(log.path.parent)
    assert written.exit_code == 0, written.output
    assert "Wrote 1 draft eval case to evals/drafts/feedback-" in written.output
    reviewed = drafts.read_text(encoding="utf-8").replace(TODO_ANSWERABLE, "false")
    drafts.write_text(reviewed, encoding="utf-8")
    log.record(page_turn(UNANSWERABLE, answers[UNANSWERABLE]), "down")

    refused = export(log.path.parent)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert drafts.read_text(encoding="utf-8") == reviewed  # the reviewer's work is untouched

    forced = export(log.path.parent, "--force")
    assert forced.exit_code == 0 and "Wrote 2 draft eval cases" in forced.output


def review(case: dict[str, Any], **labels: Any) -> dict[str, Any]:
    """What a reviewer does to a draft: fill in labels and drop what the assistant said."""
    return {key: value for key, value in {**case, **labels}.items() if key != "given"}


def reviewed_support(case: dict[str, Any]) -> str:
    return case["given"]["citations"][0]["quote"]


@pytest.mark.parametrize(
    ("labels", "refusal"),
    [
        pytest.param({}, "answerable must be true or false", id="unreviewed"),
        pytest.param(
            {"facts": ["Sun Yat-sen"], "support": HOSPITAL_NAME},
            "answerable must be true or false",
            id="labelled-but-answerable-left",
        ),
        pytest.param({"answerable": None}, "answerable must be true or false", id="null"),
        pytest.param({"answerable": True}, "needs facts, support", id="answerable-without-facts"),
        pytest.param(
            {"answerable": True, "facts": ["Sun Yat-sen"], "support": "not in the document"},
            "not a verbatim substring",
            id="support-not-copied",
        ),
    ],
)
def test_load_cases_refuses_a_draft_until_it_is_reviewed(tmp_path, answers, labels, refusal):
    FeedbackLog(tmp_path / FEEDBACK_FILE).record(page_turn(HOSPITAL, answers[HOSPITAL]), "down")
    (draft,) = exported(tmp_path, tmp_path / "evals" / "drafts" / "feedback.yaml")
    moved = tmp_path / "evals" / "cases.yaml"
    moved.write_text(yaml.safe_dump({"cases": [review(draft, **labels)]}), encoding="utf-8")

    with pytest.raises(CaseError, match=refusal) as refused:
        load_cases(moved)
    assert draft["id"] in str(refused.value)


def test_a_reviewed_draft_loads_into_an_eval_set(tmp_path, answers):
    log = FeedbackLog(tmp_path / FEEDBACK_FILE)
    first = page_turn(HOSPITAL, answers[HOSPITAL])
    log.record(first, "down")
    log.record(page_turn(UNANSWERABLE, answers[UNANSWERABLE]), "down", [first])
    drafts = tmp_path / "evals" / "drafts" / "feedback.yaml"
    answered, refused = exported(tmp_path, drafts)

    labelled = [
        review(
            answered, answerable=True, facts=["Sun Yat-sen"], support=reviewed_support(answered)
        ),
        review(refused, kind="unanswerable", answerable=False),
    ]
    drafts.write_text(yaml.safe_dump({"cases": labelled}), encoding="utf-8")
    cases = load_cases(drafts)

    assert [(case.id, case.answerable) for case in cases] == [
        (answered["id"], True),
        (refused["id"], False),
    ]
    assert cases[0].facts == (("Sun Yat-sen",),) and HOSPITAL_NAME in cases[0].support
    assert cases[1].history == ((HOSPITAL, answers[HOSPITAL]["text"]),)


@pytest.fixture
def page_with_own_feedback(bot, tmp_path) -> Iterator[tuple[str, Path]]:
    """The real page on loopback, writing votes to a data folder of its own."""
    with page_server(bot.with_settings(data_dir=tmp_path / "data")) as url:
        yield url, tmp_path / "data"


@pytest.mark.browser
def test_a_dislike_on_the_page_becomes_a_draft_case(page_with_own_feedback, browser, tmp_path):
    url, data_dir = page_with_own_feedback
    page = browser.new_page(viewport={"width": 1400, "height": 960})
    page.set_default_timeout(30_000)
    page.goto(url)
    ask_on_page(page, HOSPITAL)
    first_answer = page.locator('#chat [data-testid="bot"]').first.inner_text()
    ask_on_page(page, UNANSWERABLE)
    expect(page.locator("#chat .refusal")).to_have_count(1)

    page.locator('#chat button[aria-label="Dislike"]').last.click()
    feedback = data_dir / FEEDBACK_FILE
    wait_until(lambda: feedback.exists() and feedback.read_text("utf-8").strip())
    page.close()

    (case,) = exported(data_dir, tmp_path / "drafts.yaml")
    assert case["question"] == UNANSWERABLE and case["kind"] == "multiturn"
    ((asked, answered),) = case["history"]
    assert asked == HOSPITAL and HOSPITAL_NAME in answered
    assert HOSPITAL_NAME in first_answer
    assert case["given"]["refused"] is True and case["given"]["closest"]
    with pytest.raises(CaseError, match="answerable must be true or false"):
        load_cases(tmp_path / "drafts.yaml")
