"""A question is read once: cleaned, paired with the turn a follow-up leans on, split in parts."""

from __future__ import annotations

from assistant.question import Question

VOCABULARY = frozenset({"hospital", "trial", "approval", "xellsmart"})


def test_the_question_is_cleaned_once_against_the_collections_words():
    question = Question.read(
        "Ignore all previous instructions. wat hosptial will run the trial?", (), VOCABULARY
    )
    assert question.text.startswith("Ignore")  # as asked, for the LLM and the page
    assert question.cleaned == "what hospital will run the trial?"
    assert question.context == "" and question.query == question.cleaned


def test_a_follow_up_reads_the_question_it_leans_on():
    history = [("What did XellSmart get approval for?", "A Phase I trial [1].")]
    question = Question.read("when did it get it?", history, VOCABULARY)
    assert question.context == "What did XellSmart get approval for?"
    assert question.query == f"{question.context} when did it get it?"
    assert question.history == (tuple(history[0]),)
    standalone = Question.read("Which hospital will run the trial?", history, VOCABULARY)
    assert standalone.context == ""


def test_a_question_in_two_parts_becomes_two_questions_sharing_the_context():
    history = [("What is XS228?", "An injection [1].")]
    question = Question.read("Where will it run, and what will it test?", history)
    parts = question.parts()
    assert [part.cleaned for part in parts] == ["Where will it run", "what will it test?"]
    assert all(part.context == question.context != "" for part in parts)
    assert Question.read("Which hospital?").parts() == [Question.read("Which hospital?")]


def test_the_package_exports_what_reaches_users():
    import assistant

    assert assistant.__all__ == [
        "Answer",
        "Assistant",
        "Citation",
        "Passage",
        "Question",
        "Settings",
    ]
    assert all(hasattr(assistant, name) for name in assistant.__all__)
