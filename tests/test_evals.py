"""The eval harness: labels, the scorer, the metrics, the baseline, the reports and the command.

The thresholds on the full sets are not checked here: `make test` runs `assistant eval`, which
exits non-zero when a gated set misses one.  The eval sets' own data is checked in
`test_eval_sets.py`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from langchain_core.documents import Document

from assistant.answer.types import Answer, Citation, Passage
from assistant.evals import (
    FAKE_LLM_REPLY,
    KINDS,
    OUTCOMES,
    Case,
    CaseError,
    Metrics,
    SetRun,
    TutorialBaseline,
    aggregate,
    check_thresholds,
    collect,
    evaluate,
    load_cases,
    load_thresholds,
    per_brief,
    per_document,
    render_markdown,
    render_text,
    run_eval_command,
    score_case,
    to_json,
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
    assert set(kinds) == set(KINDS) - {"overview", "name", "definition"}
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


@pytest.mark.parametrize("kind", ["overview", "name", "definition"])
def test_the_new_kinds_load_and_an_unknown_kind_is_rejected(tmp_path, kind):
    body = (
        f"  - id: new\n    kind: {kind}\n    question: Which hospital?\n    answerable: true\n"
        "    facts: [Third Affiliated Hospital]\n    support: Third Affiliated Hospital\n"
    )
    assert load_cases(write_cases(tmp_path, body))[0].kind == kind
    (tmp_path / "evals" / "cases.yaml").write_text(
        f"defaults:\n  source: {SOURCE}\ncases:\n" + body.replace(kind, "trivia"),
        encoding="utf-8",
    )
    with pytest.raises(CaseError, match="case new: kind 'trivia' is not one of"):
        load_cases(tmp_path / "evals" / "cases.yaml")


def test_a_set_folder_resolves_sources_against_the_project_root(tmp_path):
    folder = tmp_path / "evals" / "corpora" / "tiny"
    folder.mkdir(parents=True)
    (folder / "doc.txt").write_text(TEXT, encoding="utf-8")
    (folder / "cases.yaml").write_text(
        "cases:\n  - id: where\n    kind: fact\n    question: Which hospital?\n"
        "    answerable: true\n    source: evals/corpora/tiny/doc.txt\n"
        f"    facts: [Sun Yat-sen]\n    support: {HOSPITAL_CASE.support}\n"
        "  - id: ceo\n    kind: unanswerable\n    question: Who is the CEO?\n"
        "    answerable: false\n    source: evals/corpora/tiny/doc.txt\n",
        encoding="utf-8",
    )
    cases = load_cases(folder / "cases.yaml")  # found from the file's place under evals/
    assert [c.source for c in cases] == ["evals/corpora/tiny/doc.txt"] * 2
    (folder / "doc.txt").write_text("Something else entirely.", encoding="utf-8")
    with pytest.raises(CaseError, match="case where: support is not a verbatim substring"):
        load_cases(folder / "cases.yaml")


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


def closest(sentence: str) -> Passage:
    start = TEXT.index(sentence)
    return Passage(str(SOURCE), start, start + len(sentence), sentence, start, start + 10, 0.4)


def test_a_refusal_that_shows_the_fact_in_its_closest_passages_counts_as_shown():
    shown = Answer("The documents do not say.", refused=True, closest=[closest(HOSPITAL)])
    result = score_case(HOSPITAL_CASE, shown)
    assert result.fact_shown and not result.facts_ok and result.outcome == "refused_wrong"
    elsewhere = Answer("The documents do not say.", refused=True, closest=[closest(XS228)])
    assert score_case(HOSPITAL_CASE, elsewhere).fact_shown is False
    half = Answer("It is the Third Affiliated Hospital.", closest=[closest(XS228)])
    assert score_case(HOSPITAL_CASE, half).fact_shown is False  # Sun Yat-sen is shown nowhere
    metrics = aggregate([score_case(HOSPITAL_CASE, shown), score_case(HOSPITAL_CASE, elsewhere)])
    assert (metrics.fact_shown, metrics.fact_accuracy) == (0.5, 0)
    assert score_case(REFUSE_CASE, shown).fact_shown is None


def test_every_case_falls_in_one_confusion_cell():
    right = Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)])
    wrong = Answer(f"{XS228} [1]", [cite(1, XS228)])
    refusal = Answer("The documents do not say.", refused=True)
    unsure = f"I could not confirm this in the documents; the closest passage says: {HOSPITAL} [1]"
    hedged = Answer(unsure, [cite(1, HOSPITAL)], hedged=True)
    hedged_wrong = Answer(f"{XS228} [1]", [cite(1, XS228)], hedged=True)
    results = [
        score_case(HOSPITAL_CASE, right),
        score_case(HOSPITAL_CASE, wrong),
        score_case(HOSPITAL_CASE, refusal),
        score_case(REFUSE_CASE, right),
        score_case(REFUSE_CASE, refusal),
        score_case(REFUSE_CASE, refusal),
        score_case(HOSPITAL_CASE, hedged),
        score_case(HOSPITAL_CASE, hedged_wrong),
        score_case(REFUSE_CASE, hedged),
    ]
    assert [r.outcome for r in results] == [
        "answered_right",
        "answered_wrong",
        "refused_wrong",
        "answered_unanswerable",
        "refused_right",
        "refused_right",
        "hedged_right",
        "hedged_wrong",
        "hedged_unanswerable",
    ]
    metrics = aggregate(results)
    assert metrics.confusion == {
        "answered_right": 1,
        "hedged_right": 1,
        "answered_wrong": 1,
        "hedged_wrong": 1,
        "answered_unanswerable": 1,
        "hedged_unanswerable": 1,
        "refused_right": 2,
        "refused_wrong": 1,
    }
    assert tuple(metrics.confusion) == OUTCOMES
    assert sum(metrics.confusion.values()) == len(results)
    # A hedge holding the fact counts toward fact accuracy; one to a silent document is not a
    # refusal, so it counts against refusal recall.
    assert (metrics.counts["cases_right"], metrics.counts["hedged"]) == (4, 3)
    assert metrics.fact_accuracy == 2 / 5 and metrics.refusal_recall == 2 / 4


def test_per_brief_counts_each_brief_apart():
    terse = case(id="t", brief="terse")
    chatty = case(id="c", brief="chatty", answerable=False, facts=(), support="")
    hedged = Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)], hedged=True)
    results = [
        score_case(terse, hedged),
        score_case(chatty, Answer("The documents do not say.", refused=True)),
        score_case(HOSPITAL_CASE, hedged),  # no brief: not in the table
    ]
    table = per_brief(results)
    assert list(table) == ["terse", "chatty"]
    assert table["terse"]["hedged"] == 1 and table["terse"]["fact_accuracy"] == 1.0
    assert table["chatty"]["refusal_recall"] == 1.0 and table["chatty"]["cases_right"] == 1


def test_per_document_counts_each_source_apart():
    other = case(id="other", source="b.txt", facts=(("2023",),), support=XS228)
    results = [
        score_case(HOSPITAL_CASE, Answer(f"{HOSPITAL} [1]", [cite(1, HOSPITAL)])),
        score_case(REFUSE_CASE, Answer("x")),
        score_case(other, Answer("The documents do not say.", refused=True)),
    ]
    table = per_document(results)
    assert table[str(SOURCE)] == {
        "cases": 1,
        "cases_right": 1,
        "fact_accuracy": 1.0,
        "refusal_recall": None,
    }
    assert table["b.txt"]["fact_accuracy"] == 0 and table["(no source)"]["refusal_recall"] == 0


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
    assert thresholds["min"]["groundedness"] == 1.0
    values = dict.fromkeys(Metrics.__dataclass_fields__, 1.0) | {
        "counts": {},
        "citation_support": 0.5,
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


def test_the_baseline_embeds_with_the_packaged_model_not_our_tuned_one(embeddings):
    """The tutorial pipeline loads MiniLM as packaged: a gain from our tuning is ours to show."""
    from assistant.evals.runner import _tutorial_embeddings

    packaged = _tutorial_embeddings(embeddings)
    assert embeddings.tuning is not None and packaged.tuning is None
    assert packaged.cache_dir == embeddings.cache_dir
    assert _tutorial_embeddings(embeddings) is packaged  # loaded once for every set


def test_the_baseline_answers_everything_with_exact_citations(bot):
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


def test_collect_gives_each_case_its_answer_and_retrieved_documents(bot):
    rows = collect(bot, some_cases()[:2])
    assert [c.id for c, _, _ in rows] == ["hospital", "xs228-year"]
    for _, answer, documents in rows:
        assert isinstance(answer, Answer) and documents
        assert all({"source", "start", "end"} <= set(d.metadata) for d in documents)
    plain = collect(lambda question, history: Answer("no", refused=True), [REFUSE_CASE])
    assert plain[0][1].refused and plain[0][2] == []


def test_the_eval_command_prints_and_writes_both_reports(bot, tmp_path):
    import io

    out = io.StringIO()
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    code = run_eval_command(
        bot.settings, json_path, md_path, out, bot=bot, sets=["golden"], reader=True
    )
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    golden = payload["sets"]["golden"]
    assert code == (0 if payload["passed"] else 1) and golden["gated"]
    assert set(payload["sets"]) == {"golden"}
    assert set(golden["systems"]) == {"ours", "reader", "baseline", "llm-fake"}
    n_cases = len(load_cases(CASES))
    for system in golden["systems"].values():
        assert len(system["cases"]) == n_cases
        assert sum(system["metrics"]["confusion"].values()) == n_cases
        assert {"fact_accuracy", "fact_shown", "cases_right", "mrr", "latency_p95_ms"} <= set(
            system["metrics"]
        )
        assert [d["cases"] for d in system["per_document"].values()] == [n_cases]
    assert {t["metric"] for t in golden["thresholds"]} >= {"fact_accuracy", "groundedness"}
    assert golden["systems"]["baseline"]["metrics"]["refusal_recall"] == 0
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Golden set" in markdown
    assert "| metric | ours | reader | baseline | llm-fake |" in markdown
    assert "### Outcomes" in markdown and "### Per document" in markdown
    assert "### Per case" in markdown
    text = out.getvalue()
    assert "fact accuracy" in text and "thresholds (ours, golden)" in text


HELD_OUT_SECRET = "Zanzibar pelican question about the hospital, kept secret"


def held_out_run() -> SetRun:
    """A tiny synthetic held-out set scored by a stand-in that answers everything."""
    cases = [
        case(
            id="zz-secret-id",
            kind="name",
            question=HELD_OUT_SECRET,
            facts=HOSPITAL_CASE.facts,
            support=HOSPITAL,
            source=str(SOURCE),
        ),
        case(
            id="zz-secret-refuse",
            kind="unanswerable",
            question=HELD_OUT_SECRET + "?",
            answerable=False,
            source=str(SOURCE),
        ),
    ]

    def answers(question, history):
        return Answer(f"{XS228} [1]", [cite(1, XS228)])

    reports = [evaluate(answers, cases, name) for name in ("ours", "baseline")]
    return SetRun(
        "heldout", "evals/corpora/heldout/cases.yaml", "x", reports, cases, per_case=False
    )


def test_the_held_out_set_renders_aggregates_but_no_case():
    run = held_out_run()
    text, markdown = render_text([run]), render_markdown([run])
    payload = json.dumps(to_json([run]))
    for report in (text, markdown, payload):
        assert HELD_OUT_SECRET not in report and "zz-secret" not in report
        assert XS228[:40] not in report  # nor its answers
    assert "answered wrong" in text and "answered unanswerable" in text
    assert SOURCE.name in text and SOURCE.name in markdown  # per-document aggregates
    assert "name 1/1, unanswerable 1/1" in text and "### Per document" in markdown
    held = json.loads(payload)["sets"]["heldout"]
    assert held["gated"] is False and held["passed"] and held["thresholds"] is None
    assert all("cases" not in system for system in held["systems"].values())
    assert held["systems"]["ours"]["metrics"]["confusion"]["answered_unanswerable"] == 1


def write_set(project: Path, name: str, question: str, thresholds: str | None = None) -> Path:
    folder = project / "evals" / "corpora" / name
    folder.mkdir(parents=True)
    (folder / "release.txt").write_text(TEXT, encoding="utf-8")
    (folder / "cases.yaml").write_text(
        f"cases:\n  - id: {name}-where\n    kind: fact\n    question: {question}\n"
        f"    answerable: true\n    source: evals/corpora/{name}/release.txt\n"
        f"    facts: [Sun Yat-sen]\n    support: {HOSPITAL_CASE.support}\n"
        f"  - id: {name}-ceo\n    kind: unanswerable\n    question: Who is the CEO?\n"
        f"    answerable: false\n    source: evals/corpora/{name}/release.txt\n",
        encoding="utf-8",
    )
    if thresholds is not None:
        (folder / "thresholds.yaml").write_text(thresholds, encoding="utf-8")
    return folder


def test_the_command_offers_every_set_and_every_held_out_set_is_ungated_and_unlisted(tmp_path):
    """The command line writes the set names out (importing the runner would slow its start):
    they must be the runner's, and each held-out set is held out (aggregates only, no gate)."""
    from assistant.cli import main
    from assistant.evals import SET_NAMES, eval_set
    from assistant.evals.runner import HELD_OUT

    (option,) = [p for p in main.commands["eval"].params if p.name == "sets"]
    assert tuple(option.type.choices) == SET_NAMES
    for name in HELD_OUT:
        held = eval_set(name, tmp_path)
        assert held.held_out and held.thresholds_path is None, name


def test_the_command_gates_dev_but_never_the_held_out_set(bot, tmp_path):
    import io

    from assistant.evals import eval_set

    write_set(tmp_path, "dev", "Which hospital runs the trial?", "min:\n  fact_accuracy: 1.01\n")
    write_set(tmp_path, "heldout", HELD_OUT_SECRET)
    out, json_path, md_path = io.StringIO(), tmp_path / "r.json", tmp_path / "r.md"
    code = run_eval_command(
        bot.settings,
        json_path,
        md_path,
        out,
        sets=["dev", "heldout"],
        project=tmp_path,
        index_root=tmp_path / "index",
        embeddings=bot.embeddings,
    )
    assert eval_set("heldout", tmp_path).held_out and not eval_set("dev", tmp_path).held_out
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert code == 1 and not payload["sets"]["dev"]["passed"]  # an impossible dev threshold
    assert payload["sets"]["heldout"]["gated"] is False
    assert set(payload["sets"]["dev"]["systems"]) == {"ours", "baseline"}  # no reader unasked
    assert (tmp_path / "index" / "dev").is_dir() and (tmp_path / "index" / "heldout").is_dir()
    text, markdown = out.getvalue(), md_path.read_text(encoding="utf-8")
    assert "thresholds (ours, dev): missed: fact_accuracy" in text
    assert len(payload["sets"]["dev"]["systems"]["ours"]["cases"]) == 2  # dev is listed
    assert "## Dev set" in markdown and "## Heldout set" in markdown
    for report in (text, markdown, json_path.read_text(encoding="utf-8")):
        assert HELD_OUT_SECRET not in report and "heldout-where" not in report
        assert "heldout-ceo" not in report


def test_the_reader_column_is_scored_only_when_the_command_asks(monkeypatch):
    """``assistant eval`` passes ``--reader`` through to the runner, and leaves the reader out
    without it (make test's gate does not pay for an ungated column)."""
    from click.testing import CliRunner

    import assistant.evals
    from assistant.cli import main

    asked = []

    def run_eval_command(settings, json_path, markdown_path, **options):
        asked.append(options["reader"])
        return 0

    monkeypatch.setattr(assistant.evals, "run_eval_command", run_eval_command)
    for arguments in (["eval", "--set", "golden"], ["eval", "--set", "golden", "--reader"]):
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, result.output
    assert asked == [False, True]
