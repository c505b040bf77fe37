"""Reading a question: its words as the collection spells them, and the kind of answer it wants.

Everything here is cheap string work, done once per question.  The tables are everyday English
(chat shorthand, common paraphrases, question frames), not facts about any document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from assistant.text import STOPWORDS, stem, words

# Words that frame a question rather than say what it is about.
FRAME_WORDS = frozenset(
    """tell know please info information explain describe give detail details mention mentioned
    say says said document documents press release article text announcement anything thing
    things something happen happened happening kind sort type like also get got much many long
    ever exactly specifically briefly summary summarize summarise main key currently according
    would could might may must shall can one full name names called date year years day month
    time list two three both going involved involve involves happening special important
    interesting notable unique different role part play plays new latest recent current make
    made makes doing done work works working besides except apart gets getting ok okay hey hi
    thanks thank um uh well so actually really basically""".split()
)
# How people type in a chat box; mapped before spelling correction.
SHORTHAND = {
    "u": "you", "r": "are", "ur": "your", "wat": "what", "wot": "what", "wut": "what",
    "frm": "from", "abt": "about", "b4": "before", "govt": "government", "w": "with",
    "hw": "how", "wen": "when", "whn": "when", "wher": "where", "whr": "where", "nd": "and",
    "n": "and", "thru": "through", "wich": "which", "whcih": "which", "teh": "the", "dmg": "damage", "kinda": "kind", "sorta": "sort",
    "gonna": "going", "wanna": "want", "cuz": "because", "bc": "because", "w/": "with", "pts": "patients", "pt": "patient", "ppl": "people",
    "tx": "treatment", "yr": "year", "yrs": "years", "pd": "parkinson", "approx": "about",
}  # fmt: skip
# Everyday phrases, read as one word before synonyms are looked up.
PHRASES = {
    "take place": "conducted", "takes place": "conducted", "find out": "evaluate",
    "green light": "approval", "go ahead": "approval", "look into": "evaluate",
    "set up": "launched", "kick off": "commence", "live with": "affecting",
    "living with": "affecting", "suffer from": "affecting", "suffering from": "affecting",
    "teaming up": "collaborated", "team up": "collaborated", "teamed up": "collaborated",
    "working with": "collaborated", "turn out": "produced", "turns out": "produced",
    "open the door": "paving", "opens the door": "paving", "pave the way": "paving",
    "sign off": "approval", "signed off": "approval", "broken back": "spinal cord injury",
    "back injury": "spinal cord injury", "spine injury": "spinal cord injury",
    # Compounds that name one thing: looked up as one word, so "side effects" is not "effects".
    "side effects": "side_effects", "side effect": "side_effects",
    "life expectancy": "life_expectancy", "stock price": "stock_price",
    "share price": "stock_price", "phone number": "phone_number", "email address": "email_address",
    "street address": "street_address", "web site": "website", "press officer": "press_officer",
}  # fmt: skip
# Everyday paraphrases: a question word, and words a document may use for it instead.
SYNONYMS = {
    "host": ["conducted"], "run": ["conducted"], "runs": ["conducted"], "held": ["conducted"],
    "hold": ["conducted"], "perform": ["conducted"], "carry": ["conducted"],
    "center": ["hospital"], "centre": ["hospital"], "clinic": ["hospital"], "site": ["hospital"],
    "study": ["trial"], "studies": ["trials"], "test": ["evaluate"], "testing": ["evaluate", "trial"],
    "assess": ["evaluate"], "measure": ["evaluate"],
    "start": ["commence", "launched", "initiated"], "begin": ["commence", "launched"],
    "started": ["launched", "initiated"], "began": ["launched", "initiated"],
    "clear": ["approval"], "cleared": ["approval"], "clearance": ["approval"], "green": ["approval"],
    "light": ["approval"], "authorized": ["approval"], "authorised": ["approval"],
    "permission": ["approval"], "approve": ["approval"], "approves": ["approval"],
    "gave": ["received"], "give": ["received"], "granted": ["received"], "got": ["received"],
    "illness": ["disease"], "illnesses": ["diseases"], "conditions": ["diseases"],
    "sickness": ["disease"], "disorder": ["disorders"], "ailments": ["diseases"],
    "firm": ["company"], "business": ["company"], "biotech": ["company"], "startup": ["company"],
    "funding": ["investment"], "funded": ["investment"], "investors": ["investment"],
    "backers": ["investment"], "financing": ["investment"], "money": ["investment"],
    "treatment": ["therapy"], "treatments": ["therapies"], "cure": ["therapy"],
    "paralyzed": ["paralysis"], "paralysed": ["paralysis"],
    "global": ["worldwide"], "globally": ["worldwide"], "world": ["worldwide"],
    "globe": ["worldwide"], "common": ["prevalent", "affecting"], "widespread": ["prevalent"],
    "goal": ["aims", "seeks"], "purpose": ["aims", "seeks"], "objective": ["aims"], "aim": ["aims"],
    "trying": ["seeks", "aims"], "try": ["seeks", "aims"], "attempt": ["seeks", "aims"],
    "effectiveness": ["efficacy"], "effective": ["efficacy"], "safe": ["safety"],
    "manufacture": ["manufacturing"], "known": ["recognized"], "famous": ["recognized", "renowned"],
    "problems": ["difficulties", "challenge"], "issues": ["difficulties", "challenge"],
    "challenges": ["challenge", "difficulties"], "running": ["conducted"], "goals": ["aims", "seeks"],
    "measuring": ["evaluate"], "measured": ["evaluate"], "measures": ["evaluate"],
    "tested": ["evaluate"], "assessing": ["evaluate"],
    "rebuild": ["regenerate"], "repair": ["regenerate"], "restore": ["regenerate"],
    "regrow": ["regenerate"], "heal": ["regenerate"], "hurt": ["damaged", "injury"],
    "injured": ["injury", "damaged"], "spine": ["spinal"], "spines": ["spinal"],
    "nerve": ["neural", "neurological"], "nerves": ["neural", "neurological"],
    "brain": ["neurological", "nervous"], "movement": ["motor", "paralysis"],
    "feeling": ["sensory"], "sensation": ["sensory"], "jobs": ["employment"], "job": ["employment"],
    "struggle": ["difficulties"], "ambition": ["vision"],
    "investers": ["investment"], "invested": ["investment"], "invest": ["investment"],
    "group": ["adults"], "funds": ["investment"], "fund": ["investment"], "funders": ["investment"],
    "regulator": ["administration"], "regulators": ["administration"],
    "agency": ["administration"], "agencies": ["administration"],
    "chinese": ["china"], "american": ["food"], "usa": ["food"], "america": ["food"],
    "expense": ["costs"], "expenses": ["costs"], "expensive": ["costs"], "toll": ["burden"],
    "wealthy": ["high"], "rich": ["high"], "nations": ["countries"], "nation": ["countries"],
    "humans": ["people"], "human": ["people"], "persons": ["people"], "person": ["patient"],
    "individuals": ["people"], "folks": ["people"],
    "consequences": ["leads", "impact"],
    "physical": ["motor"], "require": ["necessitates"], "requires": ["necessitates"],
    "need": ["necessitates"], "needs": ["necessitates"], "suffer": ["affecting", "prevalent"],
    "tends": ["often"], "usually": ["often"], "typically": ["often"], "frequently": ["often"],
    "happen": ["resulting"], "caused": ["resulting"], "cause": ["resulting"], "causes": ["resulting"],
    "worked": ["collaborated"], "partnered": ["collaborated"], "teamed": ["collaborated"],
    "age": ["aged"], "ages": ["aged"], "groups": ["adults"], "old": ["aged"],
}  # fmt: skip


def synonyms_of(word: str) -> list[str]:
    """Everyday paraphrases of ``word`` (each form listed on its own: "work" is not "worked")."""
    return SYNONYMS.get(word, [])


INSTRUCTION = re.compile(
    r"^\s*(ignore|disregard|forget|pretend|you are|you're|act as|system\s*:|assistant\s*:|"
    r"from now on|do not|don't|never|always)\b",
    re.IGNORECASE,
)
NUMBER = (
    r"(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
    r"dozen|hundred|thousand)(\s+(million|billion|thousand|hundred))?"
)
MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
DATE = re.compile(
    rf"\b(1[89]\d\d|20\d\d)\b|\b({MONTHS})\s+\d|\b\d{{1,2}}\s+({MONTHS})\b|"
    r"\b(past|next|following|previous|last|coming)\s+(\w+\s+)?(years?|months?|weeks?|days?)\b",
    re.IGNORECASE,
)
MONEY = re.compile(r"(\bUSD\b|\bEUR\b|\bRMB\b|[$€£¥]|\bdollars?\b|\byuan\b|\beuros?\b)", re.I)
PLACE = re.compile(rf"\b(at|in)\s+(the\s+)?(?!({MONTHS.title()})\b)[A-Z][a-z]")
FREQUENCY = re.compile(
    r"\b(daily|weekly|monthly|yearly|annually|hourly|every|once|twice|per (day|week|month|year))\b",
    re.IGNORECASE,
)
POSSESSIVE = re.compile(r"['’]s\W*$")
NAME = re.compile(r"\b[A-Z][\w'’./-]*[A-Za-z]")
ENTITY_NOUNS = frozenset(
    """firm firms company companies investor investors hospital hospitals university
    universities agency agencies regulator regulators organization organizations organisation
    organisations partner partners country countries city cities institution institutions
    person people doctor doctors expert experts""".split()
)
PEOPLE_NOUNS = re.compile(
    r"\b(adults|people|patients|individuals|children|men|women|experts|researchers|team|"
    r"company|companies|firms|doctors|scientists|investors)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Expectation:
    """What kind of words an answer needs, read off the question."""

    kind: str = "any"
    focus: str | None = None
    reach: int = 5  # how many words from the focus a name may stand

    def met_by(self, text: str, question_words: frozenset[str] = frozenset()) -> bool:
        if self.kind == "date":
            return bool(DATE.search(text))
        if self.kind == "money":
            return bool(MONEY.search(text))
        if self.kind == "count":
            if self.focus is None:
                return bool(re.search(rf"\b{NUMBER}\b", text, re.I))
            counted = rf"\b{NUMBER}\s+(?:(?!per\b)[\w-]+\s+){{0,2}}{re.escape(stem(self.focus))}"
            return bool(re.search(counted, text, re.I))
        if self.kind == "name":
            return self._names_near_focus(text, question_words)
        if self.kind == "frequency":
            return bool(FREQUENCY.search(text))
        if self.kind == "place":
            return bool(PLACE.search(text))
        if self.kind == "who":
            return self._names_near_focus(text, question_words) or bool(PEOPLE_NOUNS.search(text))
        return True

    def _names_near_focus(self, text: str, question_words: frozenset[str]) -> bool:
        """A proper name the question lacks, beside the thing asked about when it is there."""
        tokens = text.split()
        if is_headline(text):
            return False  # a headline in title case: its capitals name nothing
        names, chain = [], []
        for i, token in enumerate([*tokens, "."]):
            # An owner ("XellSmart's therapy") names whose it is, not what it is called.
            capital = 0 < i < len(tokens) and NAME.match(token) and not POSSESSIVE.search(token)
            joins = chain and token in ("of", "and", "for", "the", "de")
            if capital or joins:
                chain.append(i)
                continue
            while chain and tokens[chain[-1]] in ("of", "and", "for", "the", "de"):
                chain.pop()
            # A name the question itself gives (most of its words) is not an answer to it.
            given = [tokens[j].strip(".,;:'’s()").lower() for j in chain]
            named = [word for word in given if word in question_words and word != self.focus]
            if 2 * len(named) < len(given):
                names += chain
            chain = []
        if self.focus is None:
            return bool(names)
        focus_stems = {stem(self.focus), *(stem(s) for s in synonyms_of(self.focus))}
        near = [i for i, t in enumerate(tokens) if stem(t.strip(".,;:").lower()) in focus_stems]
        if not near:  # the thing asked about is not here: any new name may answer, unless
            return bool(names) and self.reach > 2  # the question asks what *it* is called
        return any(abs(i - j) <= self.reach for i in names for j in near)


def is_headline(text: str) -> bool:
    """A line in title case ("FDA Approves ... Trial"): most of its words are capitalised."""
    tokens = text.split()
    return sum(token[:1].isupper() for token in tokens) > 0.6 * len(tokens)


def expectation_of(question: str) -> Expectation:
    lowered = question.lower()
    if re.search(r"^\s*when\b|\b(what|which) (year|date|month|day)\b|\bhow long\b", lowered):
        return Expectation("date")
    if re.search(r"\bhow (often|frequently)\b", lowered):
        return Expectation("frequency")
    if re.search(r"\b(cost|costs|price|priced|pricing|charge|fee|afford|pay)\b", lowered):
        return Expectation("money")
    if match := re.search(r"\bhow many\s+(?:\w+\s+)??(\w+)", lowered):
        focus = match.group(1)
        return Expectation("count", None if focus in STOPWORDS else focus)
    if re.search(r"\bhow much\b|\bnumber of\b|\bwhat (percentage|proportion|share)\b", lowered):
        return Expectation("count")
    if re.search(r"^\s*(who|whom|whose)\b", lowered):
        return Expectation("who")
    if match := re.search(
        r"\bname of (?:the |this |their |its )?(?:\w+ ){0,2}?(\w+)\s*\??$", lowered
    ):
        return Expectation("name", match.group(1), reach=2)
    if match := re.search(
        r"\b(which|what)\s+(?!(?:is|are|was|were|do|does|did|has|have|had|will|can)\b)"
        r"(\w+(?:\s+\w+){0,2})",
        lowered,
    ):
        for word in match.group(2).split():
            if word in ("kind", "kinds", "type", "types", "sort", "sorts"):
                break
            if word in ENTITY_NOUNS:
                return Expectation("name", word)
    if re.search(r"^\s*where\b", lowered):
        return Expectation("place")
    return Expectation()


COMMON_ZIPF = 5.5  # an unknown word this frequent in English (zipf scale) counts for nothing
RARITY_SPAN = 0.5  # ... and one this much rarer counts fully
ACTION_AUXILIARIES = frozenset(
    "do does did has have had will would can could should shall may might".split()
)


def split_question(question: str) -> list[str]:
    """ "Where will it run, and what will it test?" becomes its two questions."""
    parts = re.split(
        r",?\s+and\s+(?=(?:what|which|who|whom|whose|where|when|why|how)\b)",
        question,
        flags=re.IGNORECASE,
    )
    return [part for part in parts if part.strip()]


@cache
def rarity(word: str) -> float:
    """How much an unknown word says about what is asked, from its frequency in English:
    0 for everyday words ("someone", "later", "right"), 1 for specific ones ("dose", "CEO")."""
    from wordfreq import zipf_frequency

    return min(1.0, max(0.0, (COMMON_ZIPF - zipf_frequency(word, "en")) / RARITY_SPAN))


def focus_word(question_words: list[str]) -> str | None:
    """The thing a question asks for: "what *dose* ...", "which *firms* ...", "what is the
    *capital* of ...". None when it asks what someone does ("what do they turn ... into")."""
    for i, word in enumerate(question_words):
        asks = word in ("what", "which", "whose", "who") or (
            word in ("many", "much") and i and question_words[i - 1] == "how"
        )
        if not asks:
            continue
        rest = question_words[i + 1 :]
        if rest and rest[0] in ACTION_AUXILIARIES:
            return None
        for later in rest:
            if later not in STOPWORDS and later not in FRAME_WORDS and rarity(later) > 0:
                return later
        return None
    return None


def plain_question(question: str) -> str:
    """The question itself: markup and scripts removed, injected instructions set aside.

    "Ignore all previous instructions. In which year ...?" is answered as "In which year ...?";
    text with no question in it beside the instructions is kept whole (and then refused).
    """
    if "<" in question:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(question, "html.parser")
        for hidden in soup(["script", "style"]):
            hidden.decompose()
        question = soup.get_text(" ")
    parts = [part for part in re.split(r"(?<=[.!?;])\s+|\s*--\s*", question.strip()) if part]
    if len(parts) > 1:
        asked = [part for part in parts if part.endswith("?") and not INSTRUCTION.match(part)]
        if asked:
            return " ".join(asked)
    return question


NEVER_CORRECTED = STOPWORDS | FRAME_WORDS | SYNONYMS.keys()


def normalised_words(question: str, vocabulary: list[str], known_stems: set[str]) -> list[str]:
    """The question's words with chat shorthand expanded and one-letter slips corrected.

    A word the collection does not know is replaced by a collection word at most one edit away
    (two for long words), so "hosptial" finds "hospital" but "effects" is not turned into
    "efforts".
    """
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    joined = f" {' '.join(SHORTHAND.get(word, word) for word in words(question))} "
    for phrase, meaning in PHRASES.items():
        joined = joined.replace(f" {phrase} ", f" {meaning} ")
    fixed = []
    for word in joined.split():
        if len(word) >= 4 and word not in NEVER_CORRECTED and stem(word) not in known_stems:
            allowed = 2 if len(word) >= 8 else 1
            # Long words may also be slips of a paraphrase we know ("movemnt"); short ones
            # only of the collection's own words ("side" is not "site").
            targets = [*vocabulary, *SYNONYMS] if len(word) >= 6 else vocabulary
            match = process.extractOne(
                word, targets, scorer=OSA.distance, score_cutoff=allowed, processor=None
            )
            if match:
                word = match[0]
            elif word.endswith("in") and stem(word + "g") in known_stems:
                word += "g"  # "gettin", "workin": a dropped g
        fixed.append(word)
    return fixed
