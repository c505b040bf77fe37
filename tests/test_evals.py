"""The eval harness: the golden set's labels, the scorer, the baseline and the command.

The thresholds on the full golden set are not checked here: `make test` runs `assistant eval`,
which exits non-zero when one is missed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from langchain_core.documents import Document

from assistant.answer.types import Answer, Citation
from assistant.evals import (
    FAKE_LLM_REPLY,
    KINDS,
    Case,
    CaseError,
    Metrics,
    aggregate,
    check_thresholds,
    evaluate,
    load_cases,
    load_thresholds,
    run_eval_command,
    score_case,
)

PROJECT = Path(__file__).resolve().parent.parent
CASES = PROJECT / "evals" / "cases.yaml"
THRESHOLDS = PROJECT / "evals" / "thresholds.yaml"
SOURCE = PROJECT / "corpus" / "xellsmart-sci-trial-announcement.txt"
TEXT = SOURCE.read_text(encoding="utf-8")

HOSPITAL = (
    "The clinical trial will be conducted at the Third Affiliated Hospital of Sun Yat-sen "
    "University, recognized for its leadership in spinal cord injury treatment."
)
XS228 = (
    "In 2023, XellSmart's XS228 injection, a cell therapy for CNS diseases, received FDA "
    "approval and global orphan drug designation."
)
FOLLOWING = "The following year, they launched China's first registered clinical study"


def cite(n: int, sentence: str, source: Path = SOURCE) -> Citation:
    start = TEXT.index(sentence)
    return Citation(n, str(source), start, start + len(sentence), sentence, 1.0)


def case(**fields) -> Case:
    defaults = {"id": "c", "kind": "fact", "question": "q?", "answerable": True}
    return Case(**{**defaults, **fields})


HOSPITAL_CASE = case(
    id="hospital",
    facts=(("Third Affiliated Hospital",), ("Sun Yat-sen",)),
    support="conducted at the Third Affiliated Hospital of Sun Yat-sen University",
    source=str(SOURCE),
)
REFUSE_CASE = case(id="ceo", kind="unanswerable", question="Who is the CEO?", answerable=False)


# ---------------------------------------------------------------- the golden set


def test_golden_set_is_broad_and_its_labels_hold():
    cases = load_cases(CASES)
    kinds = Counter(c.kind for c in cases)
    assert len(cases) >= 60
    assert set(kinds) == set(KINDS)
    assert sum(c.answerable for c in cases) >= 40
    assert sum(not c.answerable for c in cases) >= 20
    assert any(c.kind == "hostile" and c.answerable for c in cases)
    assert all(c.history for c in cases if c.kind == "multiturn")
    for c in cases:  # load_cases checked these against the file; check the file is the corpus
        if c.answerable:
            assert c.support in TEXT, c.id


def write_cases(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "evals" / "cases.yaml"
    path.parent.mkdir()
    path.write_text(f"defaults:\n  source: {SOURCE}\ncases:\n{body}", encoding="utf-8")
    return path


def test_a_support_that_is_not_verbatim_is_rejected_naming_the_case(tmp_path):
    path = write_cases(
        tmp_path,
        "  - id: reworded\n    kind: fact\n    question: Which hospital?\n    answerable: true\n"
        "    facts: [Third Affiliated Hospital]\n"
        "    support: The trial will be run at the Third Affiliated Hospital\n",
    )
    with pytest.raises(CaseError, match="case reworded: support is not a verbatim substring"):
        load_cases(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    facts: [Mayo Clinic]\n    support: Third Affiliated Hospital\n", "fact"),
        ("    support: Third Affiliated Hospital\n", "needs facts"),
    ],
)
def test_other_broken_labels_are_rejected(tmp_path, body, message):
    path = write_cases(
        tmp_path, "  - id: bad\n    kind: fact\n    question: Which?\n    answerable: true\n" + body
    )
    with pytest.raises(CaseError, match=f"case bad: .*{message}"):
        load_cases(path)


def test_relative_sources_resolve_against_the_project_root():
    cases = load_cases(CASES, root=PROJECT)
    assert cases[0].source == "corpus/xellsmart-sci-trial-announcement.txt"


# ---------------------------------------------------------------- scoring hand-made answers


def test_a_right_answer_passes_and_a_wrong_fact_fails():
    right = score_case(HOSPITAL_CASE, Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)]))
    assert right.facts_ok and right.supported and right.passed
    wrong = score_case(HOSPITAL_CASE, Answer(f"{XS228} [1]", [cite(1, XS228)]))
    assert wrong.facts_ok is False and wrong.supported is False and not wrong.passed
    assert wrong.missing_facts == ["Third Affiliated Hospital", "Sun Yat-sen"]
    refused = score_case(HOSPITAL_CASE, Answer("The documents do not say.", refused=True))
    assert refused.facts_ok is False and refused.supported is None and not refused.passed


def test_facts_match_case_insensitively_across_markers_and_alternatives():
    two = case(facts=(("FDA", "Food and Drug Administration"), ("2023",)), support=XS228)
    answer = Answer("in 2023[1] the fda approved it.", [cite(1, XS228)])
    assert score_case(two, answer).facts_ok


def test_an_ungrounded_citation_lowers_groundedness():
    good = cite(1, HOSPITAL)
    shifted = Citation(2, good.source, good.start + 1, good.end + 1, good.quote, 1.0)
    result = score_case(HOSPITAL_CASE, Answer(f"{HOSPITAL} [1] [2]", [good, shifted]))
    assert (result.citations, result.grounded) == (2, 1)
    assert not result.passed
    assert result.cited[1]["grounded"] is False
    assert aggregate([result]).groundedness == 0.5


def test_a_missing_source_file_is_ungrounded(tmp_path):
    ghost = cite(1, HOSPITAL, source=tmp_path / "gone.txt")
    assert score_case(HOSPITAL_CASE, Answer(HOSPITAL, [ghost])).grounded == 0


def test_support_spanning_two_cited_sentences_is_covered():
    two_sentences = TEXT[TEXT.index(XS228) : TEXT.index(FOLLOWING) + len(FOLLOWING)]
    span = case(facts=(("Parkinson",),), support=two_sentences)
    second = TEXT[TEXT.index(FOLLOWING) : TEXT.index("symptoms.") + len("symptoms.")]
    both = score_case(span, Answer("x [1] y [2]", [cite(1, XS228), cite(2, second)]))
    assert both.supported
    only_first = score_case(
        case(facts=(("orphan",),), support=span.support), Answer("x", [cite(1, HOSPITAL)])
    )
    assert only_first.supported is False


def test_refusal_precision_and_recall():
    answered = Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)])
    refusal = Answer("The documents do not say.", refused=True)
    perfect = aggregate([score_case(HOSPITAL_CASE, answered), score_case(REFUSE_CASE, refusal)])
    assert (perfect.refusal_precision, perfect.refusal_recall, perfect.fact_accuracy) == (1, 1, 1)
    over = aggregate([score_case(HOSPITAL_CASE, refusal), score_case(REFUSE_CASE, refusal)])
    assert (over.refusal_precision, over.refusal_recall, over.fact_accuracy) == (0.5, 1, 0)
    never = aggregate([score_case(HOSPITAL_CASE, answered), score_case(REFUSE_CASE, answered)])
    assert (never.refusal_precision, never.refusal_recall) == (None, 0)
    nothing_to_refuse = aggregate([score_case(HOSPITAL_CASE, answered)])
    assert (nothing_to_refuse.refusal_precision, nothing_to_refuse.refusal_recall) == (1, 1)


def test_retrieval_rank_counts_a_chunk_covering_most_of_the_support():
    start = TEXT.index(HOSPITAL_CASE.support)

    def chunk(a: int, b: int) -> Document:
        return Document(TEXT[a:b], metadata={"source": str(SOURCE), "start": a, "end": b})

    length = len(HOSPITAL_CASE.support)
    ranked = [
        chunk(0, 100),
        chunk(start + length // 2 + 1, start + 400),
        chunk(start - 5, start + 60),
    ]
    result = score_case(HOSPITAL_CASE, Answer("x", []), retrieved=ranked)
    assert (result.hit_rank, result.retrieved) == (3, 3)  # the 2nd covers less than half
    metrics = aggregate([result])
    assert (metrics.hit_at_1, metrics.hit_at_k, metrics.mrr) == (0, 1, pytest.approx(1 / 3))


def test_evaluate_takes_a_plain_function_and_times_it():
    def answer(question, history):
        if "CEO" in question:
            return Answer("The documents do not say.", refused=True)
        return Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)])

    report = evaluate(answer, [HOSPITAL_CASE, REFUSE_CASE], name="fn")
    assert [r.passed for r in report.results] == [True, True]
    assert report.metrics.hit_at_k is None  # no retrieve(): retrieval is not measured
    assert report.metrics.latency_p95_ms >= report.metrics.latency_p50_ms >= 0
    assert report.metrics.mean_words == len(f"{HOSPITAL} [1]".split())


def test_an_exception_fails_its_case_not_the_run():
    def broken(question, history):
        raise RuntimeError("index gone")

    report = evaluate(broken, [HOSPITAL_CASE], warm_up=False)
    assert report.results[0].error == "RuntimeError: index gone"
    assert report.metrics.counts["errors"] == 1 and not report.results[0].passed


def test_thresholds_pass_fail_and_missing_values():
    thresholds = load_thresholds(THRESHOLDS)
    for metric in ("fact_accuracy", "refusal_precision", "refusal_recall", "groundedness"):
        assert metric in thresholds["min"]
    assert thresholds["min"]["fact_accuracy"] >= 0.95
    assert thresholds["min"]["citation_support"] >= 0.95
    values = dict.fromkeys(Metrics.__dataclass_fields__, 1.0) | {
        "counts": {},
        "citation_support": 0.9,
        "refusal_precision": None,
        "latency_p95_ms": 10.0,
    }
    checks = {c.metric: c.ok for c in check_thresholds(Metrics(**values), thresholds)}
    assert checks["fact_accuracy"] and checks["latency_p95_ms"]
    assert not checks["citation_support"] and not checks["refusal_precision"]


# ---------------------------------------------------------------- real systems


def some_cases() -> list[Case]:
    cases = {c.id: c for c in load_cases(CASES)}
    return [cases[i] for i in ("hospital", "xs228-year", "mt-xs228-when", "no-ceo", "no-weather")]


def test_the_baseline_answers_everything_with_exact_citations(bot):
    from assistant.evals_baseline import TutorialBaseline

    baseline = TutorialBaseline(bot.settings.corpus_dir, embeddings=bot.embeddings)
    assert len(baseline.retrieve("Which hospital runs the trial?")) == 4
    report = evaluate(baseline, some_cases(), name="baseline")
    metrics = report.metrics
    assert metrics.refusal_recall == 0 and metrics.refusal_precision is None
    assert metrics.groundedness == 1.0 and metrics.counts["citations"] == 5
    assert metrics.hit_at_k is not None and metrics.mean_chars > 300
    assert all(len(r.retrieved_spans) == 4 for r in report.results if not r.should_refuse)


@pytest.mark.parametrize("reply", [FAKE_LLM_REPLY, "NOT_IN_DOCUMENTS"])
def test_the_harness_scores_the_llm_answerer_on_a_fake_chat_model(bot, reply):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant import Assistant

    llm_bot = Assistant(
        settings=bot.settings,
        embeddings=bot.embeddings,
        client=bot.index.client,
        chat_model=FakeListChatModel(responses=[reply]),
    )
    report = evaluate(llm_bot, some_cases(), name="llm-fake", warm_up=False)
    by_id = {r.id: r for r in report.results}
    assert report.metrics.groundedness == 1.0
    if reply == "NOT_IN_DOCUMENTS":
        assert all(r.refused for r in report.results)
        assert report.metrics.fact_accuracy == 0 and report.metrics.refusal_recall == 1
    else:
        assert by_id["hospital"].facts_ok and by_id["hospital"].citations == 1
        assert not by_id["xs228-year"].facts_ok  # the fake model's reply does not say 2023


def test_the_eval_command_prints_and_writes_both_reports(bot, tmp_path):
    import io

    out = io.StringIO()
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    code = run_eval_command(bot.settings, json_path, md_path, out, bot=bot)
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert code == (0 if payload["passed"] else 1)
    assert {"ours", "baseline", "llm-fake"} <= set(payload["systems"])
    n_cases = len(load_cases(CASES))
    for system in payload["systems"].values():
        assert len(system["cases"]) == n_cases
        assert {"fact_accuracy", "refusal_precision", "hit_at_1", "mrr", "latency_p95_ms"} <= set(
            system["metrics"]
        )
    assert {t["metric"] for t in payload["thresholds"]} >= {"fact_accuracy", "groundedness"}
    assert payload["systems"]["baseline"]["metrics"]["refusal_recall"] == 0
    markdown = md_path.read_text(encoding="utf-8")
    assert "| metric | ours | baseline |" in markdown and "## Per case" in markdown
    text = out.getvalue()
    assert "fact accuracy" in text and "thresholds (ours)" in text
    assert set(payload["holdout"]["systems"]) == {"ours", "baseline"}  # evals/holdout.yaml


def test_the_held_out_set_is_reported_without_cases_and_never_gated(bot, tmp_path):
    import io

    evals = tmp_path / "evals"
    golden = write_cases(
        tmp_path,
        "  - id: hospital\n    kind: fact\n    question: Which hospital will run the trial?\n"
        "    answerable: true\n    facts: [Third Affiliated Hospital]\n"
        f"    support: {HOSPITAL_CASE.support}\n",
    )

    # Ours is a stand-in that always answers, and the baseline never refuses: both fail the
    # held-out case, which must be refused, and pass the golden one.
    class AlwaysAnswers:
        settings, embeddings = bot.settings, bot.embeddings

        def ask(self, question, history):
            return Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)])

    secret = "Which hospital will conduct the clinical trial, please?"
    holdout = evals / "holdout.yaml"
    holdout.write_text(
        f"cases:\n  - id: held\n    kind: unanswerable\n    question: {secret}\n"
        "    answerable: false\n",
        encoding="utf-8",
    )
    thresholds = evals / "thresholds.yaml"
    thresholds.write_text("min:\n  groundedness: 1.0\n", encoding="utf-8")
    out, json_path, md_path = io.StringIO(), tmp_path / "r.json", tmp_path / "r.md"
    code = run_eval_command(
        bot.settings,
        json_path,
        md_path,
        out,
        cases_path=golden,
        thresholds_path=thresholds,
        holdout_path=holdout,
        llm_check=False,
        bot=AlwaysAnswers(),
    )
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert code == 0 and payload["passed"]  # the held-out failures do not gate
    held = payload["holdout"]
    assert held["thresholds"] is None
    for name in ("ours", "baseline"):
        assert held["systems"][name]["metrics"]["refusal_recall"] == 0
        assert held["systems"][name]["failures_by_kind"] == {
            "unanswerable": {"failed": 1, "cases": 1}
        }
    text, markdown = out.getvalue(), md_path.read_text(encoding="utf-8")
    assert "held-out set: no thresholds" in text and "unanswerable 1/1" in text
    assert (
        "## Held-out set: no thresholds" in markdown and "| metric | ours | baseline |" in markdown
    )
    for report in (text, markdown, json_path.read_text(encoding="utf-8")):
        assert secret not in report  # aggregates only: its cases are never listed
