"""Reading a question: what it asks for, about what, in the collection's own words.

The question is cleaned (markup, injected instructions, chat shorthand, slips of the keyboard
against the collection's spelling), then parsed by spaCy.  From the parse: the *intent* (a fact,
an overview, what a term means, a name), the *kind of answer* wanted as spaCy entity labels
(read from the wh-word and, for "which/what <noun>", the noun's WordNet category), the *focus*
(the thing asked about) and the content words, weighted by how much they say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answer.collection import Collection
from assistant.answer.language import nlp, noun_category, verb_category
from assistant.question import Question
from assistant.text import zipf

# Words that frame a question rather than say what it is about.
FRAME = frozenset(
    """tell know please information explain describe give say mention detail details
    exactly specifically briefly thanks thank hey hi ok okay actually really basically
    anything something thing things like also ever currently main key""".split()
)
OVERVIEW = re.compile(
    r"\b(summar\w*|sum (it |this |that )?up|gist|overview|tl;?dr|recap\w*|in a nutshell|"
    r"main points?|key points?|highlights|"
    r"what('s| is| was)? (this|the|that|it)( (press )?release| announcement| news| document|"
    r" article| text| story| report| one| post)?( all)? about|what (is|was|got) announced|"
    r"what('s| is) the news|what happened|what'?s new)\b",
    re.IGNORECASE,
)
STANDS_FOR = re.compile(
    r"\b(stand|stands) for\b|\bshort for\b|\babbreviation\b|\bacronym\b|\bmeaning of\b|"
    r"\bdefine\b|\bdefinition\b|\bwhat does (.+) mean\b",
    re.IGNORECASE,
)
TRAILING_FILLER = r"\s+(here|exactly|again|actually|in (this|the) (release|announcement|text))$"
DATES = frozenset({"DATE", "TIME"})
COUNTS = frozenset({"CARDINAL", "QUANTITY", "PERCENT", "MONEY"})
MONEY = frozenset({"MONEY"})
PERCENT = frozenset({"PERCENT", "CARDINAL"})
WHO = frozenset({"PERSON", "ORG", "NORP"})
PLACES = frozenset({"GPE", "LOC", "FAC", "ORG"})
NAMES = frozenset({"ORG", "PERSON", "PRODUCT", "FAC", "GPE", "WORK_OF_ART", "EVENT", "LAW"})
# WordNet's category of the noun asked about ("which *hospital*") -> labels that answer it.
CATEGORY_LABELS = {
    "noun.person": WHO,
    "noun.group": frozenset({"ORG", "NORP"}),
    "noun.location": PLACES,
    "noun.time": DATES,
    "noun.quantity": COUNTS,
    "noun.possession": MONEY,
    "noun.artifact": frozenset({"ORG", "FAC", "PRODUCT", "GPE"}),
}


@dataclass(frozen=True)
class Reading:
    """A question as the answerer understands it."""

    intent: str  # "fact", "overview", "definition" or "name"
    wanted: frozenset[str]  # entity labels an answer must hold; empty: any sentence may do
    wants_reason: bool
    focus: str | None  # the thing asked about ("hospital" in "which hospital ...")
    term: str | None  # for a definition: the term asked about, as typed
    words: tuple[tuple[str, float], ...]  # content lemmas and their weight
    given: frozenset[str]  # names the question itself gives (not answers to it)
    verb: str | None  # its main verb, when that says what is asked ("raise", "enroll")
    polar: bool  # a yes-or-no question: it opens with an auxiliary ("is", "did", "can")

    @property
    def total(self) -> float:
        return sum(weight for _, weight in self.words) or 1.0


def read(question: Question, collection: Collection) -> Reading:
    """Read ``question``; the turn a follow-up leans on adds its words, weakly."""
    return _read(question.cleaned, question.text, collection, question.context)


def _read(text: str, asked: str, collection: Collection, context: str = "") -> Reading:
    """``text`` is the question cleaned, ``asked`` as typed (its punctuation tells intent)."""
    doc = _parse(text)
    lowered = text.lower()
    intent = _intent(lowered, asked.lower())
    focus = _focus(doc)
    wanted, reason = _wanted(doc, lowered, focus, intent)
    given = frozenset(
        t.lower_
        for t in doc
        if t.is_alpha and (t.pos_ == "PROPN" or (t.text[:1].isupper() and t.i > 0))
    )
    words: dict[str, float] = {}
    framing = [m.span() for m in OVERVIEW.finditer(lowered)] if intent == "overview" else []
    for token in doc:
        lemma = token.lemma_.lower()
        if any(a <= token.idx < b for a, b in framing):
            continue  # "sum up", "what is this about": how it asks, not what about
        if _is_content(token) and lemma not in words:
            words[lemma] = _weight(lemma, token.lower_, collection)
    if context:
        steer = 0.2 if words else 1.0
        for lemma, weight in _read(context, context, collection).words:
            words.setdefault(lemma, steer * weight)
    verb = next(
        (t.lemma_.lower() for t in doc if t.dep_ == "ROOT" and t.pos_ == "VERB" and _is_content(t)),
        None,
    )
    return Reading(
        intent,
        wanted,
        reason,
        focus,
        _term(lowered) if intent == "definition" else None,
        tuple(words.items()),
        given,
        verb,
        bool(len(doc)) and doc[0].pos_ == "AUX",
    )


def _parse(text: str):
    """Tagger, parser and lemmatizer; entities are not needed for a question, and skipping the
    recogniser saves a third of the time."""
    pipeline = nlp()
    doc = pipeline.make_doc(text)
    for name, component in pipeline.pipeline:
        if name != "ner":
            doc = component(doc)
    return doc


def _is_content(token) -> bool:
    return not (
        token.is_stop
        or token.is_punct
        or token.is_space
        or token.tag_ in ("WDT", "WP", "WP$", "WRB")
        or token.lemma_.lower() in FRAME
        or token.pos_ in ("PRON", "DET", "ADP", "CCONJ", "SCONJ", "PART", "AUX", "INTJ")
    )


def _weight(lemma: str, form: str, collection: Collection) -> float:
    """Rare words say more.  A word's weight is the collection's inverse document frequency of
    the words it stands for (itself or its WordNet kin), scaled by its rarity in English, so
    "get" or "company" barely count and "CEO" or "enrolment" do; a word the collection does
    not know at all weighs by its English rarity alone."""
    english = min(1.0, max(0.15, (7.0 - zipf(form)) / 3.0))
    found = collection.matches(lemma) | collection.matches(form)
    if found:
        return english * max(collection.idf(word) for word in found)
    return english * collection.idf("\x00")


def _intent(lowered: str, typed: str) -> str:
    if OVERVIEW.search(lowered) or OVERVIEW.search(typed):
        return "overview"
    if STANDS_FOR.search(lowered):
        return "definition"
    if re.search(r"\b(name|called|named)\b", lowered) and re.search(r"^\s*(what|which)", lowered):
        return "name"
    # "what is CAR-T?", "what are iPSCs?": a bare term after "what is/are", no article "the".
    match = re.match(r"^\s*what(?:'s| is| are)\s+(an?\s+)?([^?]{1,40})\??\s*$", lowered)
    bare = match and not re.match(r"(the|this|that|their|its|his|her)\b", match.group(2))
    if bare and len(match.group(2).split()) <= 4:
        return "definition"
    return "fact"


def _term(lowered: str) -> str | None:
    """The term a definition question asks about: "what does *AML* stand for", "what is *PE*
    short for here"."""
    for pattern in (
        r"what does (?:the )?(.+?) (?:stand for|mean)",
        r"(?:what(?:'s| is| are) )?(?:the )?(.+?) (?:stands? for|(?:is )?short for|abbreviates)",
        r"(?:meaning|definition) of (?:the )?(.+?)\??$",
        r"define (?:the )?(.+?)\??$",
        r"what(?:'s| is| are) (?:an? )?(.+?)\??$",
    ):
        if match := re.search(pattern, lowered):
            term = re.sub(TRAILING_FILLER, "", match.group(1).strip(" ?.'\""))
            return term.strip() or None
    return None


def _focus(doc) -> str | None:
    """The noun the question asks about: "which *hospital*", "how many *patients*", "what is
    the *endpoint*", "who is the *CEO*", "the name of the *drug*"."""
    for token in doc:
        asks = token.tag_ in ("WDT", "WP", "WP$") and token.dep_ == "det"
        if asks and token.head.pos_ in ("NOUN", "PROPN"):
            return token.head.lemma_.lower()
        if token.lower_ in ("many", "much") and token.head.pos_ == "NOUN":
            return token.head.lemma_.lower()
    for token in doc:
        if token.lemma_.lower() == "name" and token.pos_ == "NOUN":
            for child in token.children:
                if child.dep_ == "prep":
                    for obj in child.children:
                        if obj.pos_ in ("NOUN", "PROPN"):
                            return obj.lemma_.lower()
    for token in doc:
        if token.dep_ in ("attr", "nsubj", "nsubjpass", "dobj") and token.pos_ == "NOUN":
            return token.lemma_.lower()
    return None


def _wanted(doc, lowered: str, focus: str | None, intent: str) -> tuple[frozenset[str], bool]:
    """The entity labels an answer must hold, and whether a reason is wanted."""
    if intent in ("overview", "definition"):
        return frozenset(), False
    if intent == "name":
        return NAMES, False
    first = lowered.split()[0] if lowered.split() else ""
    if re.search(r"\bwhy\b|\bwhat for\b|\breason\b|\bhow come\b", lowered):
        return frozenset(), True
    if re.search(
        r"^\s*when\b|\bwhat (year|date|month|day|time)\b|\bhow long\b|\bby when\b", lowered
    ):
        return DATES | {"CARDINAL"} if "how long" in lowered else DATES, False
    if re.search(r"\b(percent|percentage|proportion|share|rate)\b", lowered) and re.search(
        r"\b(what|how)\b", lowered
    ):
        return PERCENT, False
    if re.search(r"\bhow much\b", lowered):
        content = [t for t in doc if t.pos_ in ("NOUN", "VERB") and not t.is_stop]
        if any(noun_category(t.lemma_.lower()) == "noun.possession" for t in content) or any(
            verb_category(t.lemma_.lower()) == "verb.possession" for t in content
        ):
            return MONEY, False
        return COUNTS, False
    if re.search(r"\bhow many\b|\bnumber of\b", lowered):
        return frozenset({"CARDINAL", "QUANTITY", "PERCENT"}), False
    if first.startswith(("who", "whom", "whose")):
        return WHO, False
    if re.search(r"\bwhere\b", lowered):
        return PLACES, False
    if focus and re.search(r"\b(which|what)\b", lowered):
        category = noun_category(focus)
        if category in CATEGORY_LABELS:
            return CATEGORY_LABELS[category], False
    return frozenset(), False
