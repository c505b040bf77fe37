"""A newsroom's press releases, generated: the collection `benchmarks/scale.py` indexes.

Generated rather than collected, so any size can be made on any machine without a download, the
same seed gives the same bytes, and every release knows the facts it states (which company
opened which facility where and when, who led which round), so the benchmark can ask questions
whose answers it knows, and questions no release answers.

A collection where one paragraph repeats with names swapped would flatter every stage: chunks
would be near duplicates, the vocabulary tiny, BM25 and the vector index unrealistically easy.
So each release combines several sentence templates per event type, slot fillers from large
pools (company names built from syllables, people, cities, products, sums, dates over ten
years), a company history that mentions other places and figures, and content words drawn from
``wordfreq``'s 20,000 most common English words (abstract nouns, picked out with Debian's
WordNet files when they are installed).  Companies issue several releases each, as in a real
newsroom, so their names alone do not pick out a release.

    >>> from newsroom import write_collection
    >>> paths = write_collection(Path("corpus"), 100)  # about 5.5 KB each, .txt and some .md
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import TypeVar

DEFAULT_SEED = 8
MARKDOWN_SHARE = 0.15
REUSE_COMPANY_SHARE = 0.45  # of releases issued by a company that has issued one before
FIRST_COMPANIES = 8  # new companies before any issues a second release (else one dominates)
FIRST_DAY = datetime.date(2016, 1, 4)
DAYS_SPANNED = 3800  # to mid-2026

T = TypeVar("T")


@dataclass(frozen=True)
class Fact:
    """A question and the text its answer must contain; ``answer`` None: no release answers."""

    question: str
    answer: str | None


@dataclass(frozen=True)
class Release:
    filename: str
    text: str
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class City:
    name: str
    country: str


@dataclass(frozen=True)
class Industry:
    sector: str  # "biotechnology": what the About paragraph calls the business
    suffixes: tuple[str, ...]  # the word after a company's coined name
    offerings: tuple[str, ...]  # what it sells, singular
    facilities: tuple[str, ...]
    customers: tuple[str, ...]
    themes: tuple[str, ...]  # what its market talks about
    conditions: tuple[str, ...] = ()  # diseases, for the industries that run clinical trials


@dataclass(frozen=True)
class Company:
    name: str  # as releases call it after the first mention: "Corvigen Robotics"
    legal: str  # "Corvigen Robotics Inc."
    industry: Industry
    home: City
    founded: int
    founder: str
    chief: str
    employees: int
    domain: str
    currency: str
    listed: str | None
    about: str


def words(table: str) -> tuple[str, ...]:
    return tuple(table.split())


def phrases(table: str) -> tuple[str, ...]:
    """Items separated by semicolons, each on one line however the table was wrapped."""
    return tuple(" ".join(item.split()) for item in table.split(";") if item.strip())


FIRST_NAMES = words("""
    Aarav Abena Adaeze Adrian Agnieszka Ahmed Aiko Alejandro Alessia Amara Amelia Ana Anders
    Andrea Anika Arjun Astrid Ayesha Beatriz Benedikt Bilal Bongani Camille Carlos Catalina Chen
    Chiamaka Chloe Daniel Dariusz Deepa Diego Dmitri Elena Elif Emeka Emil Emma Esther Fatima
    Felipe Fiona Franziska Gabriel Grace Hana Hannah Hassan Helena Hiroshi Ibrahim Ines Ingrid
    Isabel Ivan Jakob James Javier Jia Joao Jonas Julia Kamal Karin Kate Kenji Kofi Lars Layla
    Leila Liam Lin Lucia Luis Magdalena Malik Manon Marco Mariana Marta Mateo Mei Miguel Mina
    Mohammed Nadia Naledi Naoko Nikhil Nina Noah Nour Olga Oliver Omar Oscar Pablo Paolo Pedro
    Priya Rafael Rania Ravi Rebecca Rosa Rui Sakura Samuel Sara Sebastian Seo-yeon Shreya Simone
    Sofia Soren Sunita Tariq Thabo Thomas Tomasz Valentina Victor Wei William Xin Yasmin Yusuf
    Zainab Zofia
""")
SURNAMES = words("""
    Abara Adeyemi Aguilar Ahmadi Alvarez Andersen Asante Bakker Banerjee Barros Becker Bianchi
    Brennan Brown Cardoso Castillo Chatterjee Chen Chowdhury Costa Dasgupta Delacroix Dubois
    Dvorak Eriksson Esposito Fernandes Fischer Fitzgerald Fontaine Garcia Gomes Gonzalez Grant
    Gupta Haddad Halvorsen Hartmann Hayashi Herrera Hoffmann Horvath Hughes Ibrahim Iyer Jansen
    Jensen Kamau Kapoor Karlsson Kaur Keller Khan Kim Kobayashi Kowalski Kruger Kumar Laurent
    Lindqvist Lopez Lundgren Mahlangu Malik Marino Martins Mendes Menon Meyer Moreau Morris
    Murphy Mwangi Nakamura Nair Nguyen Novak Nowak Nyambura Obi Odhiambo Okafor Okonkwo Oliveira
    Olsen Osei Ozturk Park Patel Pereira Petrov Pham Popescu Quispe Rahman Ramirez Rao Reyes
    Ricci Rossi Saito Salazar Sanchez Santos Sato Schmidt Schneider Sharma Silva Singh Sokolova
    Suzuki Svensson Tanaka Tan Thompson Torres Tran Ueda Varga Vasquez Virtanen Wagner Walsh
    Wang Weber Wiśniewski Wojcik Yamamoto Yildiz Yilmaz Zhang Zimmermann
""")
CITIES = tuple(
    City(*item.split(", "))
    for item in phrases("""
    Lisbon, Portugal; Porto, Portugal; Madrid, Spain; Valencia, Spain; Barcelona, Spain;
    Lyon, France; Toulouse, France; Nantes, France; Paris, France; Munich, Germany;
    Hamburg, Germany; Leipzig, Germany; Stuttgart, Germany; Berlin, Germany; Vienna, Austria;
    Graz, Austria; Zurich, Switzerland; Basel, Switzerland; Milan, Italy; Turin, Italy;
    Bologna, Italy; Rotterdam, Netherlands; Eindhoven, Netherlands; Antwerp, Belgium;
    Ghent, Belgium; Copenhagen, Denmark; Aarhus, Denmark; Gothenburg, Sweden; Malmo, Sweden;
    Stockholm, Sweden; Oslo, Norway; Bergen, Norway; Helsinki, Finland; Tampere, Finland;
    Tallinn, Estonia; Riga, Latvia; Vilnius, Lithuania; Warsaw, Poland; Wroclaw, Poland;
    Krakow, Poland; Prague, Czech Republic; Brno, Czech Republic; Budapest, Hungary;
    Bucharest, Romania; Cluj-Napoca, Romania; Sofia, Bulgaria; Athens, Greece;
    Thessaloniki, Greece; Istanbul, Turkey; Izmir, Turkey; Dublin, Ireland; Cork, Ireland;
    Manchester, United Kingdom; Leeds, United Kingdom; Bristol, United Kingdom;
    Glasgow, United Kingdom; Cambridge, United Kingdom; London, United Kingdom;
    Boston, United States; Austin, United States; Denver, United States;
    Pittsburgh, United States; Raleigh, United States; San Diego, United States;
    Seattle, United States; Columbus, United States; Minneapolis, United States;
    Phoenix, United States; Atlanta, United States; Toronto, Canada; Montreal, Canada;
    Vancouver, Canada; Calgary, Canada; Monterrey, Mexico; Guadalajara, Mexico;
    Bogota, Colombia; Medellin, Colombia; Lima, Peru; Santiago, Chile; Sao Paulo, Brazil;
    Curitiba, Brazil; Buenos Aires, Argentina; Cordoba, Argentina; Lagos, Nigeria;
    Abuja, Nigeria; Nairobi, Kenya; Mombasa, Kenya; Accra, Ghana; Kigali, Rwanda;
    Cape Town, South Africa; Johannesburg, South Africa; Casablanca, Morocco; Cairo, Egypt;
    Dubai, United Arab Emirates; Riyadh, Saudi Arabia; Doha, Qatar; Tel Aviv, Israel;
    Pune, India; Bengaluru, India; Hyderabad, India; Chennai, India; Ahmedabad, India;
    Dhaka, Bangladesh; Colombo, Sri Lanka; Bangkok, Thailand; Chiang Mai, Thailand;
    Ho Chi Minh City, Vietnam; Hanoi, Vietnam; Kuala Lumpur, Malaysia; Penang, Malaysia;
    Singapore, Singapore; Jakarta, Indonesia; Surabaya, Indonesia; Manila, Philippines;
    Cebu, Philippines; Taipei, Taiwan; Busan, South Korea; Seoul, South Korea;
    Osaka, Japan; Fukuoka, Japan; Nagoya, Japan; Suzhou, China; Shenzhen, China;
    Chengdu, China; Hangzhou, China; Melbourne, Australia; Brisbane, Australia;
    Perth, Australia; Auckland, New Zealand; Wellington, New Zealand
""")
)
CURRENCIES = {
    **dict.fromkeys(
        phrases("""Portugal; Spain; France; Germany; Austria; Italy; Netherlands; Belgium;
        Finland; Estonia; Latvia; Lithuania; Ireland; Greece"""),
        "€",
    ),
    "United Kingdom": "£",
}  # elsewhere sums are in dollars
ONSETS = words("""
    Ax Bel Cal Cor Dav Dyn El Fen Gal Hal Iv Jor Kel Kor Lum Mar Mer Nov Nyx Or Pel Quin Rav Sel
    Sol Tal Tel Tor Ul Val Ver Wex Xan Yor Zen Zor Ar Bri Cai Dar Est Fal Gren Hel Ist Kai Lio
    Mav Nor Os Pra Ros Sav Tiv Ulm Vin Wyn
""")
MIDDLES = ("", "", "a", "e", "i", "o", "ra", "ri", "lo", "ne", "ta", "vi", "ma", "qu", "ste")
ENDINGS = words("nix tek gen ion ora ex is ium yx ara eon ent ica os ar ium via lyn dra sys")
LEGAL_FORMS = {
    "United States": ("Inc.", "Corp."),
    "United Kingdom": ("Ltd", "plc"),
    "Germany": ("GmbH", "AG"),
    "Austria": ("GmbH",),
    "Switzerland": ("AG", "SA"),
    "France": ("SAS", "SA"),
    "Japan": ("K.K.", "Co., Ltd."),
    "China": ("Co., Ltd.",),
    "Netherlands": ("B.V.", "N.V."),
    "Sweden": ("AB",),
    "Brazil": ("S.A.", "Ltda."),
}
EXCHANGES = phrases("""the Nasdaq; the New York Stock Exchange; Euronext; the London Stock
    Exchange; the Frankfurt Stock Exchange; Nasdaq Stockholm; the SIX Swiss Exchange;
    the Tokyo Stock Exchange; the Singapore Exchange; the Australian Securities Exchange;
    the Toronto Stock Exchange; the Hong Kong Stock Exchange""")
ROLES = phrases("""chief executive officer; chief financial officer; chief technology officer;
    chief operating officer; chief commercial officer; general counsel; head of research;
    vice president of sales; chief marketing officer; chief sustainability officer;
    chief people officer; chief information security officer; head of manufacturing;
    chief data officer""")
MINISTRIES = phrases("""Health; Transport; Energy; Agriculture; Defence; Digital Affairs;
    Environment; Education; Infrastructure; Industry""")
WIRES = ("PRNewswire", "GLOBE NEWSWIRE", "Business Wire", "ACCESSWIRE", "EQS-News")
QUARTERS = ("first", "second", "third", "fourth")
ROUNDS = ("seed", "Series A", "Series B", "Series C", "Series D", "growth")

INDUSTRIES = (
    Industry(
        "biotechnology",
        words("Biotherapeutics Therapeutics Biosciences Pharma Bio"),
        phrases("""monoclonal antibody; gene therapy; small-molecule inhibitor; cell therapy;
            mRNA vaccine; peptide therapy; antisense oligonucleotide; bispecific antibody"""),
        phrases("research laboratory; manufacturing plant; clinical supply centre; cell factory"),
        phrases("hospitals; specialist clinics; patients; health systems; payers"),
        phrases("""drug resistance; patient recruitment; dosing; biomarkers; manufacturing
            capacity; reimbursement; regulatory review; real-world evidence"""),
        phrases("""type 2 diabetes; psoriasis; non-small cell lung cancer; Parkinson's disease;
            rheumatoid arthritis; chronic kidney disease; migraine; atopic dermatitis;
            heart failure; multiple sclerosis; ovarian cancer; hepatitis B; asthma;
            Alzheimer's disease; sickle cell disease; glioblastoma"""),
    ),
    Industry(
        "medical technology",
        words("Medical MedTech Health Diagnostics"),
        phrases("""wearable ECG monitor; insulin pump; surgical robot; hearing implant;
            digital stethoscope; infusion system; glucose sensor; rapid diagnostic test;
            ultrasound scanner"""),
        phrases("assembly plant; sterilisation centre; research laboratory; training centre"),
        phrases("hospitals; cardiologists; general practitioners; care homes; surgeons"),
        phrases("""remote monitoring; device interoperability; infection control; waiting
            times; clinical workflows; diagnostic accuracy"""),
        phrases("""atrial fibrillation; type 1 diabetes; hearing loss; sepsis; sleep apnoea;
            chronic obstructive pulmonary disease; stroke; prostate cancer"""),
    ),
    Industry(
        "software",
        words("Analytics Software AI Labs Cloud Data"),
        phrases("""data platform; cybersecurity suite; customer service assistant;
            forecasting engine; developer toolkit; payroll application; document search tool;
            supply chain planner; compliance dashboard"""),
        phrases("engineering hub; data centre; innovation lab; customer success centre"),
        phrases("""banks; retailers; insurers; public agencies; manufacturers; universities;
            hospital groups"""),
        phrases("""data privacy; cloud costs; model governance; ransomware; legacy systems;
            developer productivity; latency; open standards"""),
    ),
    Industry(
        "energy",
        words("Energy Power Renewables Solar Hydrogen"),
        phrases("""battery storage system; solar inverter; electrolyser; heat pump; offshore
            wind turbine; smart meter; grid balancing service; geothermal drilling rig"""),
        phrases("gigafactory; assembly plant; wind farm; research campus; substation"),
        phrases("utilities; grid operators; households; industrial plants; municipalities"),
        phrases("""grid congestion; curtailment; peak demand; permitting; storage capacity;
            emissions; power purchase agreements; energy security"""),
    ),
    Industry(
        "logistics",
        words("Logistics Freight Shipping Cargo"),
        phrases("""cold-chain tracking service; same-day delivery network; warehouse robot;
            route planning tool; freight marketplace; parcel locker network"""),
        phrases("distribution centre; fulfilment centre; cross-dock terminal; rail terminal"),
        phrases("retailers; pharmaceutical distributors; carmakers; online sellers; ports"),
        phrases("""driver shortages; fuel costs; port congestion; last-mile delivery;
            warehouse automation; customs clearance; empty miles"""),
    ),
    Industry(
        "food and beverage",
        words("Foods Nutrition Brewing Dairy Beverages"),
        phrases("""plant-based yoghurt; oat drink; protein bar; frozen meal range;
            sparkling tea; infant formula; craft lager; fermented hot sauce"""),
        phrases("bottling plant; bakery; processing facility; brewery; test kitchen"),
        phrases("supermarkets; restaurants; school caterers; convenience stores; cafes"),
        phrases("""ingredient costs; packaging waste; shelf life; sugar reduction; sourcing;
            cold storage; food safety"""),
    ),
    Industry(
        "automotive",
        words("Motors Mobility Automotive"),
        phrases("""electric SUV; delivery van; e-bike; charging station; autonomous shuttle;
            solid-state battery pack; electric bus; scooter-sharing service"""),
        phrases("assembly plant; battery plant; test track; design centre"),
        phrases("fleet operators; commuters; car-sharing services; city transport authorities"),
        phrases("""charging infrastructure; battery range; raw materials; software updates;
            road safety; resale values; emissions rules"""),
    ),
    Industry(
        "financial services",
        words("Pay Bank Fintech Finance"),
        phrases("""mobile banking app; payment terminal; credit card; savings account;
            fraud detection service; instant payments platform; small business loan;
            pension app"""),
        phrases("operations centre; technology hub; regional office; contact centre"),
        phrases("small businesses; freelancers; savers; merchants; credit unions; students"),
        phrases("""fraud; interest rates; open banking; financial inclusion; transaction
            fees; regulatory capital; cross-border payments"""),
    ),
    Industry(
        "aerospace",
        words("Aerospace Aviation Space Orbital"),
        phrases("""earth observation satellite; cargo drone; regional aircraft; launch
            vehicle; jet engine component; air traffic software; satellite antenna"""),
        phrases("hangar; satellite factory; test site; maintenance base"),
        phrases("airlines; space agencies; defence ministries; airports; farmers' cooperatives"),
        phrases("""launch costs; orbital debris; certification; fuel burn; airspace
            integration; supply chain delays; sustainable aviation fuel"""),
    ),
    Industry(
        "telecommunications",
        words("Networks Telecom Connect Mobile"),
        phrases("""5G router; fibre broadband plan; private network service; satellite
            phone; IoT module; rural wireless service; eSIM platform"""),
        phrases(
            "network operations centre; data centre; customer care centre; cable landing station"
        ),
        phrases("households; factories; mobile operators; stadiums; rural communities"),
        phrases("""spectrum; network coverage; latency; roaming charges; tower sharing;
            the digital divide; energy use"""),
    ),
    Industry(
        "agriculture",
        words("AgriTech Farms Seeds Agro"),
        phrases("""drought-tolerant seed variety; precision irrigation system; crop monitoring
            drone; vertical farm module; biological fertiliser; livestock health tag"""),
        phrases("greenhouse complex; seed processing plant; research farm; grain terminal"),
        phrases("farmers; growers' cooperatives; food processors; agronomists"),
        phrases("""water scarcity; soil health; yields; fertiliser prices; crop disease;
            weather volatility; traceability"""),
    ),
    Industry(
        "materials",
        words("Materials Chemicals Polymers Composites"),
        phrases("""recycled polymer; low-carbon cement blend; carbon fibre composite; bio-based
            adhesive; specialty coating; lithium cathode powder; low-carbon steel plate"""),
        phrases("recycling plant; chemical plant; pilot line; materials research centre"),
        phrases("builders; carmakers; packaging firms; electronics makers; shipyards"),
        phrases("""recycled content; process heat; carbon pricing; feedstock costs;
            durability; circular design"""),
    ),
    Industry(
        "consumer goods",
        words("Brands Home Apparel Retail"),
        phrases("""running shoe; smart thermostat; furniture collection; skincare line;
            loyalty programme; rain jacket; cordless vacuum"""),
        phrases("flagship store; distribution centre; design studio; repair centre"),
        phrases("shoppers; families; young professionals; outdoor enthusiasts"),
        phrases("""repairability; online returns; materials sourcing; store footfall; price
            sensitivity; brand loyalty"""),
    ),
    Industry(
        "games and media",
        words("Games Studios Media Interactive"),
        phrases("""strategy game; streaming service; virtual reality headset; mobile puzzle
            game; podcast network; cooperative shooter"""),
        phrases("studio; motion-capture stage; esports arena; post-production facility"),
        phrases("players; subscribers; advertisers; schools; broadcasters"),
        phrases("""player retention; subscription fatigue; content moderation; cloud gaming;
            accessibility; advertising revenue"""),
    ),
)

ADJECTIVES = words("""
    steady strong modest rapid careful broad bold practical reliable flexible efficient
    affordable durable secure scalable transparent measurable sustainable resilient
    ambitious disciplined pragmatic distinctive lasting meaningful clear focused decisive
    promising challenging remarkable significant substantial notable considerable healthy
    solid sharp gradual robust responsive proven simple compact lean open independent
    competitive productive valuable useful timely thoughtful urgent crucial steadfast
""")

# Content words for variety: wordfreq's common English words that are nouns of action,
# attribute, thought, communication, process or possession (WordNet's lexicographer files for
# their most common sense; the endings alone also let through "madness" or "christianity").
NOUN_ENDINGS = ("tion", "ment", "ity", "ance", "ence", "ency", "ship", "ness")
NOUN_KINDS = frozenset({4, 7, 9, 10, 21, 22})  # noun.act, .attribute, .cognition, ...
WORDNET = Path("/usr/share/wordnet")


def first_sense_kinds(wordnet: Path) -> dict[str, int]:
    """Each noun's lexicographer file number for its most common sense, from WordNet's
    ``index.noun`` (which lists a lemma's senses most common first) and ``data.noun``."""
    data = (wordnet / "data.noun").read_bytes()
    kinds = {}
    for line in (wordnet / "index.noun").read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue  # the licence
        fields = line.split()
        pointers = int(fields[3])
        offset = int(fields[4 + pointers + 2])
        kinds[fields[0]] = int(data[offset : offset + 20].split()[1])
    return kinds


@functools.cache
def common_nouns() -> tuple[str, ...]:
    """Abstract nouns among the 20,000 most common English words, most common first.

    Without Debian's WordNet files only the endings filter them (and the collection differs
    from one made where the files exist; each is the same for the same seed)."""
    from wordfreq import top_n_list

    plain = [w for w in top_n_list("en", 20000) if w.isascii() and w.isalpha() and len(w) >= 6]
    nouns = [w for w in plain if w.endswith(NOUN_ENDINGS)]
    if (WORDNET / "index.noun").is_file():
        kinds = first_sense_kinds(WORDNET)
        nouns = [w for w in nouns if kinds.get(w) in NOUN_KINDS]
    return tuple(nouns)


def article(word: str) -> str:
    """ "a" or "an" by the sound: "an 18-month trial", "an mRNA vaccine", "a 5G router"."""
    if word[:2].isupper() or word[1:2].isupper():  # "IoT", "mRNA": read as letter names
        return "an" if word[0].lower() in "aefhilmnorsx" else "a"
    if re.match(r"8|(11|18)(\d{3})*(\D|$)", word):  # eight..., eleven..., eighteen...
        return "an"
    return "an" if word[0].lower() in "aeiou" else "a"


def plural(noun: str) -> str:
    """ "gene therapy" -> "gene therapies", "IoT module" -> "IoT modules"."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


THE_COUNTRIES = frozenset(
    phrases("""United States; United Kingdom; Netherlands; Czech Republic; Philippines;
    United Arab Emirates""")
)


def in_country(country: str) -> str:
    """The country as a sentence names it: "the Netherlands", "Kenya"."""
    return f"the {country}" if country in THE_COUNTRIES else country


def listing(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def headline_case(text: str) -> str:
    small = {"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "the", "to", "with"}
    parts = text.split(" ")
    return " ".join(
        part if (index and part in small) or not part[:1].islower() else part[:1].upper() + part[1:]
        for index, part in enumerate(parts)
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


class Draft:
    """One release being written: its random source, company and date, and the helpers that
    fill slots (each call draws afresh, so two sentences rarely share a figure or a name)."""

    def __init__(
        self, rng: Random, company: Company, day: datetime.date, roster: Sequence[Company]
    ) -> None:
        self.rng = rng
        self.company = company
        self.name = company.name
        self.possessive = possessive(company.name)
        self.industry = company.industry
        self.day = day
        self.roster = roster
        self.us_dates = rng.random() < 0.5
        self.nouns = common_nouns()

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def some(self, options: Sequence[T], count: int) -> list[T]:
        return self.rng.sample(list(options), min(count, len(options)))

    def noun(self) -> str:
        return self.nouns[int(len(self.nouns) * self.rng.random() ** 2)]  # common ones more often

    def adjective(self) -> str:
        return self.pick(ADJECTIVES)

    def a(self, word: str) -> str:
        return f"{article(word)} {word}"

    def person(self) -> str:
        return f"{self.pick(FIRST_NAMES)} {self.pick(SURNAMES)}"

    def city(self, *, away_from_home: bool = True) -> City:
        while True:
            city = self.pick(CITIES)
            if not away_from_home or city != self.company.home:
                return city

    def money(self, low: float, high: float, unit: str = "million") -> str:
        value = self.rng.uniform(low, high)
        if unit == "million" and value >= 1000:
            value, unit = value / 1000, "billion"
        shown = f"{value:.1f}" if value < 20 else f"{round(value):,}"
        return f"{self.company.currency}{shown} {unit}".rstrip()

    def percent(self, low: int, high: int) -> str:
        return f"{self.rng.randrange(low, high)} percent"

    def date(self, day: datetime.date | None = None) -> str:
        day = day or self.day
        if self.us_dates:
            return f"{day:%B} {day.day}, {day.year}"
        return f"{day.day} {day:%B %Y}"

    def later(self, low_days: int, high_days: int) -> datetime.date:
        return self.day + datetime.timedelta(days=self.rng.randrange(low_days, high_days))

    def quarter(self, day: datetime.date | None = None) -> str:
        day = day or self.day
        return f"the {QUARTERS[(day.month - 1) // 3]} quarter of {day.year}"

    def product(self) -> str:
        """A product name: a drug code for medicines, a coined brand for the rest."""
        if self.industry.sector == "biotechnology":
            letters = "".join(part[0] for part in self.name.split()[:2]).upper()
            return f"{letters}{self.pick('BKLRTX')}-{self.rng.randrange(100, 999)}"
        brand = coined_name(self.rng)
        model = self.pick(("", " Pro", " Go", " Max", f" {self.rng.randrange(2, 9)}"))
        return brand + (model or f" {self.pick('XSTV')}{self.rng.randrange(1, 20)}")

    def organisation(self) -> str:
        """Another company: now and then one of the newsroom's own, else one made up."""
        if len(self.roster) > 3 and self.rng.random() < 0.3:
            other = self.pick(self.roster)
            if other is not self.company:
                return other.name
        return f"{coined_name(self.rng)} {self.pick(self.pick(INDUSTRIES).suffixes)}"

    def investor(self) -> str:
        return self.pick(
            (
                f"{self.pick(SURNAMES)} Capital",
                f"{coined_name(self.rng)} Ventures",
                f"{self.city().name} Growth Partners",
                f"{self.pick(SURNAMES)} & {self.pick(SURNAMES)} Investments",
                f"the {self.city().country} Innovation Fund",
                f"{coined_name(self.rng)} Partners",
            )
        )

    def hospital(self) -> str:
        city = self.city(away_from_home=False)
        return self.pick(
            (
                f"{city.name} University Hospital",
                f"St. {self.pick(FIRST_NAMES)}'s Hospital in {city.name}",
                f"the {self.pick(SURNAMES)} Medical Center in {city.name}",
                f"{city.name} General Hospital",
                f"the University of {city.name} Medical Centre",
            )
        )

    def authority(self) -> str:
        city = self.city(away_from_home=False)
        return self.pick(
            (
                f"the {city.name} Port Authority",
                f"the {city.country} Ministry of {self.pick(MINISTRIES)}",
                f"{city.name} City Council",
                f"the {city.name} Metropolitan Transport Authority",
                f"the {city.country} Defence Procurement Agency",
            )
        )

    def country(self) -> str:
        """Some country other than the company's, as a sentence names it."""
        return in_country(self.city().country)

    def offering(self) -> str:
        return self.pick(self.industry.offerings)

    def customers(self) -> str:
        return self.pick(self.industry.customers)

    def theme(self) -> str:
        return self.pick(self.industry.themes)

    def facility(self) -> str:
        return self.pick(self.industry.facilities)


def coined_name(rng: Random) -> str:
    return (rng.choice(ONSETS) + rng.choice(MIDDLES) + rng.choice(ENDINGS)).capitalize()


@dataclass
class Event:
    kind: str  # for the file name
    headline: str
    lead: str  # the release's first sentence
    details: list[str]
    facts: list[Fact]


# -- events: each writes a headline, a lead, detail sentences and the facts it states ----------


def launch(d: Draft) -> Event:
    product, offering = d.product(), d.offering()
    price = d.money(19, 2400, unit="")
    markets = [city.name for city in d.some(CITIES, 3)]
    ships = d.later(10, 120)
    headline = d.pick(
        (
            f"{d.name} Launches {product}, {headline_case(d.a(offering))} for "
            f"{headline_case(d.customers())}",
            f"{d.name} Unveils {product} {headline_case(offering)}",
            f"Meet {product}: {d.name} Introduces a New {headline_case(offering)}",
            f"{d.name} Brings {product} to Market",
        )
    )
    lead = d.pick(
        (
            f"{d.company.legal} today launched {product}, {d.a(offering)} designed for "
            f"{d.customers()} who need {d.adjective()} tools for {d.theme()}.",
            f"{d.name} has introduced {product}, its newest {offering}, after "
            f"{d.rng.randrange(2, 6)} years of development at its {d.company.home.name} "
            f"{d.facility()}.",
            f"{d.name} announced {product}, {d.a(offering)} that the company says cuts the "
            f"cost of {d.theme()} by up to {d.percent(12, 61)}.",
        )
    )
    details = [
        f"{product} will be available from {d.date(ships)} at a list price of {price}.",
        f"The first units ship to customers in {markets[0]}, {markets[1]} and {markets[2]}, "
        f"with wider availability planned for {d.quarter(d.later(150, 400))}.",
        f"Early testers reported {d.a(d.percent(8, 45))} improvement in {d.noun()} "
        f"compared with the previous generation.",
        f"The {offering} was developed with input from more than {d.rng.randrange(30, 900)} "
        f"{d.customers()} during a pilot programme in {d.city(away_from_home=False).name}.",
        f"Unlike earlier designs, {product} puts {d.noun()} and {d.noun()} at the centre of "
        f"the experience.",
        f"{d.a(d.adjective()).capitalize()} subscription tier adds {d.noun()} reporting and "
        f"priority support for {d.company.currency}{d.rng.randrange(5, 90)} a month.",
        f"{d.name} said {product} is made at its {d.facility()} in {d.company.home.name}.",
        f"Analysts at {d.organisation()} described the launch as {d.a(d.adjective())} step in "
        f"a market shaped by {d.theme()}.",
        f"The {offering} weighs {d.rng.randrange(2, 900) / 10:.1f} kilograms and carries a "
        f"{d.rng.randrange(1, 6)}-year warranty.",
        f"{product} replaces a model first sold in {d.day.year - d.rng.randrange(3, 9)}, "
        f"of which {d.rng.randrange(2, 400) * 100:,} units were sold.",
    ]
    facts = [
        Fact(f"How much will {product} cost?", price),
        Fact(f"When will {d.possessive} {product} be available?", d.date(ships)),
    ]
    return Event(f"launches-{product}", headline, lead, details, facts)


def trial(d: Draft) -> Event:
    product, condition = d.product(), d.pick(d.industry.conditions)
    hospital = d.hospital()
    phase = d.pick(("Phase I", "Phase II", "Phase III", "Phase I/II"))
    patients, investigator = d.rng.randrange(24, 1800), d.person()
    readout = d.quarter(d.later(200, 900))
    headline = d.pick(
        (
            f"{d.name} Starts {phase} Trial of {product} in {headline_case(condition)}",
            f"First Patient Dosed in {d.possessive} {phase} Study of {product}",
            f"{d.name} Receives Approval to Begin {phase} Trial in {headline_case(condition)}",
        )
    )
    lead = d.pick(
        (
            f"{d.company.legal} announced that the first patient has been treated in its "
            f"{phase} clinical trial of {product} for {condition}.",
            f"Regulators have cleared {d.name} to begin a {phase} trial of {product}, "
            f"{d.a(d.offering())} for people living with {condition}.",
            f"{d.name} today began enrolling patients in a {phase} study of {product} in "
            f"{condition}, a condition with few {d.adjective()} treatment options.",
        )
    )
    details = [
        f"The clinical trial will be conducted at {hospital}.",
        f"The study aims to enrol {patients:,} patients and will measure safety, tolerability "
        f"and {d.noun()} over {d.rng.randrange(12, 104)} weeks.",
        f"{investigator}, the study's principal investigator, said its design reflects "
        f"lessons about {d.theme()} from earlier trials.",
        f"Topline results are expected in {readout}.",
        f"{product} was granted {d.pick(('orphan drug', 'fast track', 'breakthrough'))} "
        f"designation in {d.day.year - d.rng.randrange(1, 4)}.",
        f"Earlier studies in {d.rng.randrange(18, 240)} volunteers showed no serious adverse "
        f"events linked to {product}.",
        f"{condition[0].upper() + condition[1:]} affects an estimated "
        f"{d.rng.randrange(2, 90)} million people worldwide, according to {d.organisation()}.",
        f"Patients will be randomised to {product} or placebo in a "
        f"{d.rng.randrange(1, 4)}:1 ratio.",
        f"Secondary endpoints include {d.noun()}, quality of life and time to hospital admission.",
        f"The trial is partly funded by a {d.money(1, 30)} grant from {d.authority()}.",
        f"Recruitment is expected to take {d.rng.randrange(6, 30)} months across "
        f"{d.rng.randrange(3, 60)} sites.",
    ]
    facts = [
        Fact(f"Which hospital will run {d.possessive} {product} trial?", hospital),
        Fact(f"How many patients will the {product} trial enrol?", f"{patients:,}"),
        Fact(f"When are results of the {product} trial expected?", readout),
    ]
    return Event(f"trial-{product}", headline, lead, details, facts)


def funding(d: Draft) -> Event:
    stage, amount, leader = d.pick(ROUNDS), d.money(2, 400), d.investor()
    others = [d.investor() for _ in range(d.rng.randrange(1, 4))]
    headline = d.pick(
        (
            f"{d.name} Raises {amount} in {headline_case(stage)} Funding",
            f"{d.name} Closes {amount} {headline_case(stage)} Round Led by {leader}",
            f"{leader[0].upper() + leader[1:]} Backs {d.name} With {amount} Investment",
        )
    )
    lead = d.pick(
        (
            f"{d.company.legal}, the {d.company.home.name}-based {d.industry.sector} company, "
            f"has raised {amount} in a {stage} round led by {leader}.",
            f"{d.name} today closed a {stage} financing of {amount}, led by {leader} with "
            f"participation from {listing(others)}.",
        )
    )
    details = [
        f"The round was led by {leader}, with {listing(others)} also taking part.",
        f"The company will use the proceeds to expand its {d.offering()} business and to "
        f"hire about {d.rng.randrange(20, 400)} people in engineering and {d.noun()}.",
        f"{d.name} has now raised {d.money(5, 700)} since it was founded in {d.company.founded}.",
        f"As part of the financing, {d.person()} of {leader} joins the board.",
        f"The investment follows a year in which revenue grew {d.percent(30, 300)} and the "
        f"customer base passed {d.rng.randrange(40, 9000):,}.",
        f"Investors pointed to {d.adjective()} demand driven by {d.theme()} as the reason for "
        f"the deal.",
        f"Part of the money will fund a new {d.facility()} in {d.city().name}.",
        f"Existing shareholders, including {d.investor()}, took up their full allocation.",
        f"The company said it is not yet profitable but expects to break even in "
        f"{d.day.year + d.rng.randrange(1, 4)}.",
    ]
    if d.rng.random() < 0.4:
        valuation = d.money(1.1, 9.5, unit="billion")
        details.append(f"The round values the company at {valuation}, people familiar said.")
    facts = [
        Fact(f"Who led {d.possessive} {stage} round?", leader),
        Fact(f"How much did {d.name} raise in its {stage} round?", amount),
    ]
    return Event(f"raises-{stage}", headline, lead, details, facts)


def partnership(d: Draft) -> Event:
    partner, years = d.organisation(), d.rng.randrange(2, 11)
    scope = d.pick(
        (f"{plural(d.offering())} for {d.customers()}", d.theme(), f"a joint {d.offering()}")
    )
    headline = d.pick(
        (
            f"{d.name} and {partner} Form Partnership on {headline_case(scope)}",
            f"{d.name} Signs {years}-Year Agreement With {partner}",
            f"{partner} Teams Up With {d.name}",
        )
    )
    lead = (
        f"{d.company.legal} and {partner} have agreed a {years}-year partnership covering "
        f"{scope}, the companies said on {d.date()}."
    )
    details = [
        f"Under the agreement, {partner} will contribute its expertise in {d.noun()} while "
        f"{d.name} provides its {d.offering()} technology.",
        f"The partners will first work together in {d.city().name} and {d.city().name}, "
        f"before expanding to other markets.",
        f"Financial terms were not disclosed, although {d.name} said the agreement could be "
        f"worth more than {d.money(5, 300)} over its term.",
        f"A joint team of about {d.rng.randrange(10, 250)} people will be based in "
        f"{d.company.home.name}.",
        f"The deal builds on a pilot in which the two companies improved {d.noun()} by "
        f"{d.percent(5, 40)}.",
        "The companies said the arrangement is not exclusive.",
        f"{partner} will also resell {d.possessive} products to {d.customers()} in {d.country()}.",
        f"A steering committee chaired by {d.person()} will review progress every "
        f"{d.pick(('quarter', 'six months', 'year'))}.",
        f"Both companies will share data on {d.theme()} under a common set of standards.",
    ]
    facts = [
        Fact(f"How long is the partnership between {d.name} and {partner}?", f"{years}-year"),
    ]
    return Event(f"partners-with-{partner}", headline, lead, details, facts)


def earnings(d: Draft) -> Event:
    quarter = d.quarter(d.day - datetime.timedelta(days=45))
    revenue, growth, margin = d.money(12, 4800), d.rng.randrange(-12, 64), d.rng.randrange(-20, 38)
    moved = "rose" if growth >= 0 else "fell"
    period = headline_case(quarter.removeprefix("the "))
    headline = d.pick(
        (
            f"{d.name} Reports Results for {period}",
            f"{d.name} Revenue {moved.capitalize()} {abs(growth)}% in {period}",
            f"{d.name} Announces {period} Financial Results",
        )
    )
    lead = (
        f"{d.company.legal} reported revenue of {revenue} for {quarter}, a figure that "
        f"{moved} {abs(growth)} percent from a year earlier."
    )
    details = [
        f"The operating margin was {margin} percent, compared with "
        f"{margin + d.rng.randrange(-6, 7)} percent a year before.",
        f"Sales of {plural(d.offering())} accounted for {d.percent(15, 80)} of revenue.",
        f"The company ended the quarter with {d.money(8, 2000)} in cash and equivalents.",
        f"Chief financial officer {d.person()} said {d.theme()} weighed on costs, while "
        f"{d.adjective()} pricing helped.",
        f"For the full year, {d.name} now expects revenue between {d.money(40, 900)} and "
        f"{d.money(900, 9000)}.",
        f"Orders from {d.customers()} in {d.country()} grew fastest.",
        f"The board approved a dividend of {d.company.currency}"
        f"{d.rng.randrange(5, 180) / 100:.2f} per share.",
        f"Research and development spending rose to {d.money(2, 400)}.",
        f"Headcount stood at {d.company.employees + d.rng.randrange(0, 400):,} at the end of "
        f"the period.",
        f"Gross margin reached {d.rng.randrange(180, 720) / 10:.1f} percent.",
    ]
    facts = [Fact(f"What revenue did {d.name} report for {quarter}?", revenue)]
    return Event("results", headline, lead, details, facts)


def appointment(d: Draft) -> Event:
    person, role, previous = d.person(), d.pick(ROLES), d.organisation()
    first = person.split()[0]
    headline = d.pick(
        (
            f"{d.name} Appoints {person} as {headline_case(role)}",
            f"{person} Joins {d.name} as {headline_case(role)}",
            f"{d.name} Names New {headline_case(role)}",
        )
    )
    lead = (
        f"{d.company.legal} has appointed {person} as {role}, effective "
        f"{d.date(d.later(7, 90))}. {first} joins from {previous}."
    )
    details = [
        f"{person} spent {d.rng.randrange(4, 26)} years at {previous}, most recently leading "
        f"its work on {d.noun()} in {d.city().name}.",
        f"{person} succeeds {d.person()}, who will remain an adviser to the company.",
        f"In the new role {first} will report to {d.company.chief} and oversee about "
        f"{d.rng.randrange(20, 900)} staff.",
        f"{first} holds a degree in "
        f"{d.pick(('engineering', 'economics', 'chemistry', 'law', 'physics', 'medicine'))} "
        f"from the University of {d.city().name}.",
        f"The appointment follows {d.a(d.adjective())} year in which the company focused on "
        f"{d.theme()}.",
        f"Earlier in {first}'s career, {first} worked in {d.city().name} and "
        f"{d.city().name} on {plural(d.offering())}.",
        f"{first} also sits on the board of {d.organisation()}.",
        f"The search was run by {d.pick(SURNAMES)} Partners over {d.rng.randrange(3, 10)} months.",
    ]
    facts = [
        Fact(f"Who did {d.name} appoint as {role}?", person),
        Fact(f"Where did {person} work before joining {d.name}?", previous),
    ]
    return Event(f"appoints-{person}", headline, lead, details, facts)


def facility(d: Draft) -> Event:
    city, kind = d.city(), d.facility()
    jobs, area = d.rng.randrange(40, 1500, 10), d.rng.randrange(2, 120) * 1000
    investment = d.money(5, 600)
    headline = d.pick(
        (
            f"{d.name} Opens {headline_case(kind)} in {city.name}",
            f"{d.name} Expands in {in_country(city.country)} With New {city.name} "
            f"{headline_case(kind)}",
            f"New {d.name} {headline_case(kind)} in {city.name} to Create {jobs:,} Jobs",
        )
    )
    lead = d.pick(
        (
            f"{d.company.legal} opened its {city.name} {kind} on {d.date()}, an investment of "
            f"{investment} that will create {jobs:,} jobs.",
            f"On {d.date()}, {d.name} officially opened a new {kind} in {city.name}, "
            f"{city.country}, its first in the country.",
        )
    )
    details = [
        f"The {area:,}-square-metre site will employ {jobs:,} people when fully staffed.",
        f"The company invested {investment} in the {kind}, with support from {d.authority()}.",
        f"Work at the site will focus on {plural(d.offering())} for {d.customers()} across "
        f"{in_country(city.country)}.",
        f"The building runs on {d.percent(40, 101)} renewable electricity and was designed "
        f"with {d.noun()} in mind.",
        f"{d.person()}, mayor of {city.name}, attended the opening ceremony.",
        f"{d.name} chose {city.name} for its skilled workforce, its {d.noun()} and its links "
        f"to {d.city().name}.",
        f"Construction took {d.rng.randrange(9, 40)} months and was led by {d.organisation()}.",
        f"A training programme with local colleges will place {d.rng.randrange(10, 200)} "
        f"apprentices at the site each year.",
        f"The {kind} is the company's {d.pick(('second', 'third', 'fourth', 'largest'))} "
        f"outside {in_country(d.company.home.country)}.",
    ]
    facts = [
        Fact(f"When did {d.name} open its {city.name} {kind}?", d.date()),
        Fact(f"How many jobs will {d.possessive} {city.name} {kind} create?", f"{jobs:,}"),
    ]
    return Event(f"opens-{city.name}-{kind}", headline, lead, details, facts)


def acquisition(d: Draft) -> Event:
    target, price = d.organisation(), d.money(8, 2400)
    closing = d.quarter(d.later(60, 300))
    headline = d.pick(
        (
            f"{d.name} to Acquire {target} for {price}",
            f"{d.name} Agrees to Buy {target}",
            f"{d.name} Announces Acquisition of {target}",
        )
    )
    lead = (
        f"{d.company.legal} has agreed to acquire {target} for {price} in cash and shares, "
        f"adding {d.rng.randrange(12, 2400):,} employees and a portfolio of {plural(d.offering())}."
    )
    details = [
        f"The transaction is expected to close in {closing}, subject to regulatory approval.",
        f"{target} was founded in {d.rng.randrange(1975, d.day.year - 1)} and is based in "
        f"{d.city().name}.",
        f"The deal gives {d.name} {possessive(target)} technology for {d.noun()} and its customers "
        f"among {d.customers()}.",
        f"{d.name} expects annual savings of about {d.money(2, 90)} by {d.day.year + 2}.",
        f"{d.pick(('Goldman Sachs', 'Lazard', 'Rothschild & Co', 'Evercore', 'Jefferies'))} "
        f"advised {d.name} on the transaction.",
        f"Shareholders of {target} will receive a premium of {d.percent(12, 60)}.",
        f"{possessive(target)} chief executive, {d.person()}, will join {d.possessive} "
        "leadership team.",
        f"The combined company will have operations in {d.rng.randrange(4, 60)} countries.",
        f"{target} reported revenue of {d.money(3, 600)} last year.",
    ]
    facts = [
        Fact(f"How much is {d.name} paying for {target}?", price),
        Fact(f"When is {d.possessive} acquisition of {target} expected to close?", closing),
    ]
    return Event(f"acquires-{target}", headline, lead, details, facts)


def contract(d: Draft) -> Event:
    buyer, value, years = d.authority(), d.money(3, 900), d.rng.randrange(2, 12)
    units, offering = d.rng.randrange(20, 5000), d.offering()
    headline = d.pick(
        (
            f"{d.name} Wins {value} Contract From {buyer.removeprefix('the ')}",
            f"{d.name} Selected to Supply {plural(headline_case(offering))}",
            f"{d.name} Signs {years}-Year Supply Deal",
        )
    )
    lead = (
        f"{d.company.legal} has won a {years}-year contract worth {value} from {buyer} to "
        f"supply {units:,} {plural(offering)}."
    )
    details = [
        f"Deliveries start in {d.quarter(d.later(30, 365))} and run until {d.day.year + years}.",
        f"{d.name} beat {d.rng.randrange(2, 12)} other bidders in a tender that weighed "
        f"{d.noun()} and {d.noun()} alongside price.",
        f"The contract includes maintenance and training for {d.rng.randrange(30, 800)} staff.",
        f"Work will be carried out from the company's {d.facility()} in {d.company.home.name}.",
        f"It is the largest order in {d.possessive} history, the company said.",
        f"An option allows {buyer} to extend the contract by {d.rng.randrange(1, 5)} years.",
        f"{d.name} will add about {d.rng.randrange(10, 300)} jobs to fulfil the order.",
        f"The tender was first published in {d.date(d.day - datetime.timedelta(days=200))}.",
    ]
    facts = [Fact(f"How many {plural(offering)} will {d.name} supply to {buyer}?", f"{units:,}")]
    return Event(f"contract-{buyer}", headline, lead, details, facts)


EVENTS: tuple[Callable[[Draft], Event], ...] = (
    launch,
    funding,
    partnership,
    earnings,
    appointment,
    facility,
    acquisition,
    contract,
)


# -- the paragraphs around the event --------------------------------------------------------


def company_facts(d: Draft) -> list[str]:
    """Sentences about the company that any detail paragraph can carry."""
    c = d.company
    return [
        f"{c.name} employs about {c.employees:,} people, {d.percent(10, 60)} of them in "
        f"research and engineering.",
        f"The company serves {d.customers()} in {d.rng.randrange(3, 80)} countries from its "
        f"base in {c.home.name}.",
        f"Its {d.offering()} business has grown {d.percent(5, 90)} a year since "
        f"{d.day.year - d.rng.randrange(2, 6)}.",
        f"{c.name} holds {d.rng.randrange(3, 400)} patents, many of them on {d.noun()}.",
        f"Last year {c.name} was named {d.pick(('supplier', 'employer', 'innovator'))} of the "
        f"year by {d.organisation()}.",
        f"{d.possessive} {d.facility()} in {d.city().name} reached full capacity in "
        f"{d.day.year - 1}.",
        f"The company works with {d.rng.randrange(5, 300)} suppliers, most of them in "
        f"{d.country()}.",
        f"{d.customers().capitalize()} make up the largest share of {d.possessive} customers.",
        f"About {d.percent(10, 90)} of its sales come from outside {in_country(c.home.country)}.",
        f"{c.name} spends roughly {d.percent(4, 30)} of revenue on research.",
        f"Its order book stood at {d.money(5, 900)} at the end of {d.day.year - 1}.",
        f"The company's largest customer accounts for {d.percent(3, 25)} of sales.",
    ]


def quote(d: Draft, speaker: str, role: str) -> str:
    openings = (
        f"This is {d.a(d.adjective())} moment for {d.name}",
        f"We built this company to take on {d.theme()}",
        f"Our customers have asked us for more {d.noun()}",
        f"Today's news reflects years of work by our teams in {d.company.home.name}",
        f"The market for {plural(d.offering())} is changing quickly",
        f"We have spent {d.rng.randrange(2, 12)} years preparing for this",
        f"{d.customers().capitalize()} expect more from us every year",
        f"When we started in {d.company.founded}, nobody talked about {d.theme()}",
        f"I have seen a lot of {plural(d.offering())} in my career",
        f"Our board looked hard at {d.noun()} before agreeing to this",
    )
    middles = (
        "and this step lets us deliver at scale",
        f"and we intend to lead on {d.noun()} and {d.theme()}",
        f"and I am proud of what our {d.rng.randrange(20, 4000):,} colleagues have achieved",
        f"and {d.customers()} will feel the difference first",
        f"and {d.city().name} is where we will prove it",
        "but this one is different",
        f"and the numbers on {d.noun()} speak for themselves",
    )
    closers = (
        f"We expect {d.theme()} to shape the next decade, and we are ready.",
        f"There is much more to come in {d.day.year + 1}.",
        f"It is {d.a(d.adjective())} answer to a hard problem.",
        f"Our focus remains on {d.noun()}, {d.noun()} and the people we serve.",
        f"We will measure success by {d.noun()}, not by headlines.",
        f"I want to thank {d.person()} and the whole team for their {d.noun()}.",
        f"Nobody else offers {d.customers()} this combination today.",
        f"We listened to {d.rng.randrange(20, 500)} customers before we decided.",
        f"The next step is to bring the same {d.noun()} to {d.city().name}.",
    )
    said = d.pick(("said", "commented", "added", "explained"))
    closing = " ".join(d.some(closers, d.rng.randrange(2, 5)))
    return f"“{d.pick(openings)}, {d.pick(middles)},” {said} {speaker}, {role}. “{closing}”"


def voices(d: Draft) -> str:
    """The chief executive's words and, often, a customer's, partner's or analyst's."""
    said = quote(d, d.company.chief, f"chief executive officer of {d.name}")
    if d.rng.random() < 0.8:
        outsider = d.pick(
            (
                f"{d.pick(ROLES)} at {d.organisation()}, one of {d.possessive} first customers",
                f"an analyst at {d.organisation()}",
                f"head of {d.noun()} at {d.authority()}",
                f"a professor of {d.noun()} at the University of {d.city().name}",
            )
        )
        said += " " + quote(d, d.person(), outsider)
    return said


def history(d: Draft) -> str:
    c = d.company
    events = (
        lambda year: f"In {year}, it raised {d.money(1, 90)} from {d.investor()}.",
        lambda year: f"It opened an office in {d.city().name} in {year}.",
        lambda year: f"The company launched its first {d.offering()} in {year}.",
        lambda year: f"In {year}, {c.name} signed its first contract with {d.authority()}.",
        lambda year: f"By {year} it served more than {d.rng.randrange(50, 20000):,} customers.",
        lambda year: f"It acquired {d.organisation()} in {year}.",
        lambda year: f"In {year} {c.name} moved into a larger {d.facility()} in {c.home.name}.",
        lambda year: f"{d.person()} joined as chief operating officer in {year}.",
        lambda year: (
            f"{d.a(str(year)).capitalize()} restructuring refocused the business on {d.theme()}."
        ),
        lambda year: f"Its {d.offering()} won a design prize in {d.city().name} in {year}.",
        lambda year: f"Revenue first passed {d.money(1, 500)} in {year}.",
        lambda year: f"In {year} it settled a patent dispute with {d.organisation()}.",
        lambda year: f"The company entered {d.country()} in {year}, starting with {d.customers()}.",
        lambda year: (
            f"{d.a(str(year)).capitalize()} partnership with {d.organisation()} brought it "
            f"into {plural(d.offering())}."
        ),
        lambda year: (
            f"In {year}, {c.name} moved its headquarters to a former {d.noun()} site in "
            f"{c.home.name}, bringing its teams under one roof."
        ),
        lambda year: (
            f"The company weathered a difficult {year}, when {d.theme()} cut orders by "
            f"{d.percent(10, 50)}."
        ),
        lambda year: (
            f"In {year} it hired its {d.rng.randrange(2, 20) * 50}th employee and opened a "
            f"second site in {d.city().name}."
        ),
    )
    sentences = [
        f"{c.name} was founded in {c.founded} by {c.founder} in {c.home.name}, {c.home.country}.",
        d.pick(
            (
                f"{c.founder} started the business after a career in {d.noun()}.",
                f"Its first customers were {d.customers()} in {c.home.name}.",
                f"The founding team came from {d.organisation()}.",
            )
        ),
    ]
    if c.founded < d.day.year - 1:
        chosen = d.some(events, d.rng.randrange(7, 13))
        years = sorted(d.rng.randrange(c.founded + 1, d.day.year) for _ in chosen)
        sentences += [make(year) for make, year in zip(chosen, years, strict=True)]
    return " ".join(sentences)


def context(d: Draft) -> str:
    sector = d.industry.sector
    templates = (
        f"Demand for {plural(d.offering())} has grown as {d.customers()} look for {d.adjective()} "
        f"ways to manage {d.theme()}.",
        f"Industry observers say {d.theme()} and {d.noun()} will decide which suppliers win "
        f"over the next {d.rng.randrange(3, 11)} years.",
        f"According to {d.organisation()}, the global market for {plural(d.offering())} "
        f"could reach {d.money(2, 90, unit='billion')} by "
        f"{d.day.year + d.rng.randrange(3, 10)}.",
        f"Regulators in {d.country()} have recently tightened rules on {d.noun()}, putting "
        f"pressure on older {plural(d.offering())}.",
        f"Competition in {sector} has intensified, with rivals in {d.country()} and "
        f"{d.country()} cutting prices.",
        f"Surveys of {d.customers()} rank {d.noun()} and {d.theme()} among their top concerns.",
        f"Much of the growth is expected in {d.city().name}, {d.city().name} and {d.city().name}.",
        f"Critics argue the sector still has to prove its claims about {d.noun()}.",
        f"Prices for {plural(d.offering())} fell {d.percent(3, 30)} last year as production grew.",
        f"In {d.country()}, {d.percent(5, 70)} of {d.customers()} already use {d.a(d.offering())}.",
        f"A report by {d.organisation()} found that {d.theme()} costs the industry "
        f"{d.money(1, 50, unit='billion')} a year.",
        f"Public funding for {d.noun()} has also risen, led by {d.authority()}.",
        f"Several rivals have struggled with {d.theme()}, and two left the market in "
        f"{d.day.year - 1}.",
        f"Investors have put {d.money(1, 40, unit='billion')} into {sector} start-ups since "
        f"{d.day.year - d.rng.randrange(3, 8)}.",
        f"The sector employs about {d.rng.randrange(20, 900):,},000 people in {d.country()} alone.",
        f"New standards for {d.noun()} take effect in {d.day.year + d.rng.randrange(1, 4)}.",
        f"Larger players have responded by buying smaller firms with expertise in {d.noun()}.",
        f"Interest rates and {d.theme()} remain the biggest uncertainties for buyers.",
        f"Trade groups in {d.city().name} have called for clearer rules on {d.noun()}.",
        f"{d.customers().capitalize()} replaced about {d.percent(5, 30)} of their "
        f"{plural(d.offering())} last year.",
        f"Supply of components has improved since {d.day.year - 1}, when shortages delayed "
        f"deliveries by up to {d.rng.randrange(3, 40)} weeks.",
        f"Start-ups from {d.country()} have drawn attention with new approaches to {d.theme()}.",
    )
    return " ".join(d.some(templates, d.rng.randrange(9, 14)))


def outlook(d: Draft) -> str:
    templates = (
        f"{d.name} plans further {d.offering()} announcements in {d.quarter(d.later(90, 400))}.",
        f"The company expects to enter {d.rng.randrange(2, 30)} new markets by "
        f"{d.day.year + d.rng.randrange(1, 4)}.",
        f"Next, {d.name} will focus on {d.noun()} and on partnerships with {d.customers()}.",
        f"It aims to be carbon neutral in its own operations by "
        f"{d.day.year + d.rng.randrange(3, 15)}.",
        f"A capital markets day is scheduled in {d.city().name} on {d.date(d.later(20, 200))}.",
        f"The company is hiring for {d.rng.randrange(10, 300)} roles in {d.city().name}.",
        f"Management will present the plan to investors in {d.city().name} next month.",
        f"{d.name} expects {d.theme()} to remain the main risk to its plans.",
        f"A second {d.facility()} is under consideration for {d.day.year + 2}.",
        f"The company will update its guidance with its results for {d.quarter(d.later(40, 200))}.",
        f"By {d.day.year + d.rng.randrange(2, 6)}, {d.name} wants half of its revenue to come "
        f"from {plural(d.offering())}.",
        f"Talks with {d.customers()} in {d.country()} are at an advanced stage.",
        f"It will open applications for a pilot in {d.city().name} in {d.date(d.later(30, 180))}.",
        f"Further hiring will depend on {d.noun()} and on the pace of {d.theme()}.",
        f"Over the next {d.rng.randrange(2, 6)} years the company plans to invest "
        f"{d.money(5, 500)} in {d.noun()} and in new {plural(d.facility())}.",
        f"Its target for {d.day.year + 1} is to win {d.rng.randrange(10, 400)} new customers "
        f"among {d.customers()}, up from {d.rng.randrange(5, 200)} this year.",
        f"{d.name} has said it will consider a listing once revenue passes "
        f"{d.money(50, 900)}, but not before {d.day.year + d.rng.randrange(2, 5)}.",
        f"Management expects margins to improve as {d.theme()} eases and as the "
        f"{d.facility()} in {d.city().name} reaches full output.",
        f"A review of the product range, including its older {plural(d.offering())}, is due "
        f"to finish in {d.quarter(d.later(60, 300))}.",
        f"The company will report on progress against these goals at its annual meeting in "
        f"{d.city(away_from_home=False).name}.",
    )
    return " ".join(d.some(templates, d.rng.randrange(8, 13)))


def technology(d: Draft) -> str:
    offering = d.offering()
    templates = (
        f"{d.possessive} {plural(offering)} combine {d.noun()} with {d.a(d.adjective())} "
        f"approach to {d.theme()}.",
        f"The company designs its own software and sources key parts from {d.country()}.",
        f"Each {offering} is tested for {d.rng.randrange(20, 2000):,} hours before it leaves "
        f"the {d.facility()}.",
        f"Engineers in {d.city().name} work on {d.noun()}, while the {d.company.home.name} "
        f"team leads on {d.noun()}.",
        f"Independent tests by {d.organisation()} found {d.a(d.percent(5, 50))} gain in "
        f"{d.noun()} over competing {plural(offering)}.",
        f"The design draws on {d.rng.randrange(3, 40)} years of research into {d.noun()} and "
        f"{d.noun()}.",
        f"Customers can connect the {offering} to existing systems through open interfaces.",
        f"{d.a(str(d.rng.randrange(10, 300))).capitalize()}-person team maintains the "
        f"platform and ships updates every {d.pick(('week', 'fortnight', 'month', 'quarter'))}.",
        f"{d.name} says the approach lowers the total cost of ownership by {d.percent(8, 40)}.",
        f"Data from {d.rng.randrange(2, 900):,} installations feeds back into the next "
        f"generation of {plural(offering)}.",
        f"The core of the {offering} was licensed from the University of {d.city().name} in "
        f"{d.day.year - d.rng.randrange(2, 12)}.",
        f"Its materials are {d.percent(20, 95)} recyclable.",
        f"A certification from {d.authority()} is expected within {d.rng.randrange(2, 18)} months.",
        f"The {offering} runs for {d.rng.randrange(2, 20)} years with routine maintenance.",
        f"Unlike many rivals, {d.name} builds the key components itself.",
        f"{d.rng.randrange(3, 40)} patents protect the design.",
        f"The latest version uses {d.percent(10, 60)} less energy than the one it replaces, "
        f"which matters to {d.customers()} facing {d.theme()}.",
        f"Field trials in {d.city().name} and {d.city().name} ran for "
        f"{d.rng.randrange(3, 30)} months before the design was frozen.",
        f"Service engineers can diagnose most faults remotely, which the company says cuts "
        f"call-outs by {d.percent(10, 70)}.",
        f"Software updates are delivered over the air and add features such as {d.noun()} "
        f"tracking and {d.noun()} reports.",
        f"The {offering} meets the standards set by {d.authority()} for {d.noun()}.",
        f"Production is being automated step by step, with {d.percent(20, 90)} of assembly "
        f"already handled by machines.",
    )
    return " ".join(d.some(templates, d.rng.randrange(8, 13)))


def community(d: Draft) -> str:
    city = d.city(away_from_home=False)
    templates = (
        f"{d.name} also funds {d.rng.randrange(3, 60)} scholarships a year at the University "
        f"of {city.name}.",
        f"Its staff volunteered {d.rng.randrange(500, 20000):,} hours last year, much of it "
        f"on projects about {d.noun()}.",
        f"The company has cut its own emissions by {d.percent(10, 70)} since "
        f"{d.day.year - d.rng.randrange(2, 8)}.",
        f"A foundation set up by {d.company.founder} supports work on {d.noun()} in "
        f"{in_country(city.country)}.",
        f"{d.name} publishes an annual report on {d.theme()} and {d.noun()}.",
        f"Women hold {d.percent(20, 60)} of management roles at the company.",
        f"In {city.name}, the company sponsors a programme on {d.noun()} for local schools.",
        f"Suppliers must meet a code of conduct covering {d.noun()} and working conditions.",
        f"The company gives {d.percent(1, 5)} of its profits to local charities.",
        f"Its {d.facility()} in {city.name} is open to school visits twice a year.",
        f"{d.name} matches employees' donations up to {d.company.currency}"
        f"{d.rng.randrange(1, 20) * 500:,} a year.",
        f"An employee share plan covers {d.percent(30, 100)} of staff.",
        f"It pays all staff at least the living wage set by {d.organisation()}.",
        f"Every new employee spends a week with {d.customers()} in their first year.",
        f"Last year the company planted {d.rng.randrange(2, 90) * 1000:,} trees around its "
        f"{d.facility()} in {city.name}.",
        f"Its apprenticeship scheme, run with colleges in {city.name}, has trained "
        f"{d.rng.randrange(20, 900)} young people since {d.day.year - d.rng.randrange(3, 12)}.",
        f"{d.name} reports its water and energy use every year and has set a target for "
        f"{d.noun()} by {d.day.year + d.rng.randrange(3, 10)}.",
        f"Employees can spend {d.rng.randrange(1, 6)} paid days a year on volunteering, "
        f"often on projects about {d.noun()} and {d.noun()}.",
        f"The company recycles {d.percent(50, 100)} of the waste from its {d.facility()}.",
        f"A panel of {d.customers()} advises the company on {d.noun()} twice a year.",
    )
    return " ".join(d.some(templates, d.rng.randrange(8, 13)))


def forward_looking(d: Draft) -> str:
    return (
        f"This release contains forward-looking statements about {d.possessive} plans for "
        f"{d.theme()}, {d.noun()} and {plural(d.offering())}. Actual results may differ materially "
        f"because of risks described in the company's filings with "
        f"{d.company.listed or 'its regulators'}."
    )


def about(rng: Random, name: str, legal: str, industry: Industry, home: City) -> str:
    """The boilerplate closing every release of one company (written once per company)."""
    offerings = rng.sample(list(industry.offerings), 2)
    sentences = [
        f"{legal} is {article(industry.sector)} {industry.sector} company headquartered in "
        f"{home.name}, {home.country}.",
        f"It develops {plural(offerings[0])} and {plural(offerings[1])} for "
        f"{rng.choice(industry.customers)}.",
    ]
    optional = [
        f"Its work centres on {rng.choice(common_nouns())} and {rng.choice(industry.themes)}.",
        f"{name} is known for {rng.choice(ADJECTIVES)} engineering and "
        f"{rng.choice(common_nouns())}.",
        f"The company has offices in {rng.choice(CITIES).name} and {rng.choice(CITIES).name}.",
        f"{name} is certified to ISO {rng.choice(('9001', '14001', '13485', '27001'))}.",
    ]
    return " ".join(sentences + rng.sample(optional, rng.randrange(2, 5)))


def make_company(rng: Random, taken: set[str]) -> Company:
    industry = rng.choice(INDUSTRIES)
    while (name := f"{coined_name(rng)} {rng.choice(industry.suffixes)}") in taken:
        pass
    taken.add(name)
    home = rng.choice(CITIES)
    legal = f"{name} {rng.choice(LEGAL_FORMS.get(home.country, ('Inc.', 'Ltd', 'S.A.')))}"
    founded = rng.randrange(1968, 2022)
    founder = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
    employees = int(rng.lognormvariate(5.5, 1.4)) + 12
    domain = slug(name).replace("-", "") + rng.choice((".com", ".com", ".io", ".eu", ".co"))
    listed = rng.choice(EXCHANGES) if rng.random() < 0.35 else None
    boilerplate = about(rng, name, legal, industry, home)
    boilerplate += (
        f" Founded in {founded} by {founder}, it employs about {employees:,} people."
        + (f" Its shares trade on {listed}." if listed else f" {name} is privately held.")
        + f" For more information, visit www.{domain}."
    )
    return Company(
        name=name,
        legal=legal,
        industry=industry,
        home=home,
        founded=founded,
        founder=founder,
        chief=f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        employees=employees,
        domain=domain,
        currency=CURRENCIES.get(home.country, "$"),
        listed=listed,
        about=boilerplate,
    )


def paragraphs(sentences: list[str], rng: Random, low: int, high: int) -> list[str]:
    """Sentences grouped into paragraphs of ``low`` to ``high`` sentences."""
    grouped: list[list[str]] = []
    while sentences:
        take = rng.randrange(low, high + 1)
        if len(sentences) - take < low:
            take = len(sentences)  # no short paragraph left over at the end
        grouped.append(sentences[:take])
        sentences = sentences[take:]
    return [" ".join(group) for group in grouped]


def write_release(d: Draft, markdown: bool) -> tuple[str, Event]:
    events = EVENTS + ((trial,) * 3 if d.industry.conditions else ())  # medicine runs trials
    event = d.pick(events)(d)
    details = event.details + d.some(company_facts(d), d.rng.randrange(2, 5))
    d.rng.shuffle(details)
    opening = f"{event.lead} {' '.join(details[:5])}"
    middle = paragraphs(details[5:], d.rng, 5, 9)
    extras = [context(d), history(d), outlook(d), technology(d), community(d)]
    d.rng.shuffle(extras)
    wanted = min(8, round(d.rng.triangular(3, 9, 8)))  # paragraphs in the body, mostly 6-8
    body = [opening, voices(d), *middle, *extras][:wanted]
    if d.company.listed and d.rng.random() < 0.5:
        body.append(forward_looking(d))
    contact = f"Media contact: {d.person()}, press@{d.company.domain}"
    where = d.city(away_from_home=False) if d.rng.random() < 0.3 else d.company.home
    if markdown:
        parts = [
            f"# {event.headline}",
            f"*{where.name}, {d.date()}*",
            *body,
            f"## About {d.company.legal}",
            d.company.about,
            f"**{contact}**",
        ]
    else:
        style = d.rng.randrange(3)
        if style == 0:  # a wire service's dateline opens the first paragraph
            body[0] = f"{where.name.upper()}, {d.date()} /{d.pick(WIRES)}/ -- {body[0]}"
            parts = [event.headline, *body]
        elif style == 1:  # the date on a line of its own, as newsrooms publish
            parts = [event.headline, f"{d.date()}\n{body[0]}", *body[1:]]
        else:
            parts = [event.headline.upper(), f"{where.name}, {where.country} – {d.date()}", *body]
        parts += [f"About {d.company.legal}\n{d.company.about}", contact]
    return "\n\n".join(parts) + "\n", event


def generate_collection(n: int, seed: int = DEFAULT_SEED) -> list[Release]:
    """``n`` releases; release ``i`` depends only on ``seed`` and the releases before it, so a
    smaller collection is the start of a larger one made with the same seed."""
    rng = Random(seed)
    roster: list[Company] = []
    taken: set[str] = set()
    stems: set[str] = set()
    releases = []
    for number in range(n):
        if len(roster) >= FIRST_COMPANIES and rng.random() < REUSE_COMPANY_SHARE:
            company = rng.choice(roster)
        else:
            company = make_company(rng, taken)
            roster.append(company)
        day = FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS_SPANNED))
        markdown = rng.random() < MARKDOWN_SHARE
        text, event = write_release(Draft(rng, company, day, roster), markdown)
        stem = slug(f"{day.isoformat()} {company.name} {event.kind}")
        if stem in stems:
            stem += f"-{number}"
        stems.add(stem)
        stated = tuple(fact for fact in event.facts if fact.answer and fact.answer in text)
        releases.append(Release(f"{stem}.{'md' if markdown else 'txt'}", text, stated))
    return releases


def write_releases(folder: Path, releases: Sequence[Release]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for release in releases:
        path = folder / release.filename
        path.write_bytes(release.text.encode("utf-8"))  # bytes: no platform newline changes
        paths.append(path)
    return paths


def write_collection(folder: Path, n: int, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write ``n`` generated press releases into ``folder``; same seed, same bytes."""
    return write_releases(Path(folder), generate_collection(n, seed))


OFF_SUBJECT = (
    "What is the boiling point of tungsten?",
    "Who won the 1998 football World Cup?",
    "How many moons does Neptune have?",
    "What is the capital of Mongolia?",
    "Which composer wrote the opera Turandot?",
    "How long does it take to boil an egg?",
)


def questions(
    releases: Sequence[Release], count: int, seed: int = DEFAULT_SEED, unanswered: float = 0.2
) -> list[Fact]:
    """``count`` distinct questions, shuffled: a share ``unanswered`` that no release answers
    (about companies that do not exist, or off the subject), the rest asked of facts the
    releases state, spread over as many releases as possible.  Fewer when the releases state
    too few facts, so the share, and with it the mix of answers and refusals, stays the same."""
    rng = Random(f"{seed} questions")
    answers: dict[str, set[str | None]] = {}
    for release in releases:
        for fact in release.facts:
            answers.setdefault(fact.question, set()).add(fact.answer)
    pools = [
        [fact for fact in release.facts if len(answers[fact.question]) == 1] for release in releases
    ]
    rng.shuffle(pools)
    answerable = count - round(count * unanswered)
    chosen: list[Fact] = []
    asked: set[str] = set()
    while len(chosen) < answerable and any(pools):
        for pool in pools:
            if pool and len(chosen) < answerable:
                fact = pool.pop(rng.randrange(len(pool)))
                if fact.question not in asked:
                    asked.add(fact.question)
                    chosen.append(fact)
    everything = "\n".join(release.text for release in releases)
    count = min(count, round(len(chosen) / (1 - unanswered)))
    while len(asked) < count:
        ghost = coined_name(rng)
        if ghost in everything:
            continue  # a name some release uses: its company may well have done this
        company = f"{ghost} {rng.choice(rng.choice(INDUSTRIES).suffixes)}"
        question = rng.choice(
            (
                f"When did {company} open its {rng.choice(CITIES).name} plant?",
                f"Who led {possessive(company)} {rng.choice(ROUNDS)} round?",
                f"Who did {company} appoint as {rng.choice(ROLES)}?",
                f"How much did {company} pay for {coined_name(rng)} Systems?",
                rng.choice(OFF_SUBJECT),
            )
        )
        if question not in asked:
            asked.add(question)
            chosen.append(Fact(question, None))
    rng.shuffle(chosen)
    return chosen
