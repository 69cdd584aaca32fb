"""The synthetic ads' words: fictional financial brands, the "high" and "low" marker phrases that carry the
text component t, tags, sentence frames, neutral filler, and the drawing of one video's title, description,
tags and transcript from them.
"""

from __future__ import annotations

import math

__all__ = [
    "BRANDS",
    "HIGH_PHRASES",
    "LOW_PHRASES",
    "HIGH_WORDS",
    "LOW_WORDS",
    "brand_names",
    "capitalise",
    "video_text",
]

BRANDS = [
    "Northwind Bank",
    "Bluebird Insurance",
    "Harbor Point Capital",
    "Silver Maple Credit Union",
    "Cobalt Ridge Investments",
    "Lanternfish Pensions",
    "Meridian Trust",
    "Oakhollow Savings",
    "Granite Peak Wealth",
    "Sunfield Mutual",
    "Kestrel Payments",
    "Tidewater Asset Management",
    "Copperleaf Lending",
    "Evergreen Life Assurance",
    "Foxglove Fintech",
    "Quillstone Brokerage",
]

# Marker phrases. Every word in HIGH_WORDS / LOW_WORDS appears only in its own phrase list, never in
# filler, frames or brand names, so a bag-of-words count is an unbiased read-out of t.
HIGH_PHRASES = [
    "a funny jingle",
    "a surprising twist",
    "an unforgettable moment",
    "a heartwarming story",
    "a hilarious dance",
    "a catchy jingle",
    "a joyful surprise",
    "a magical adventure",
    "an amazing singalong",
    "a heartwarming surprise",
    "an unforgettable jingle",
    "a funny dance",
]
LOW_PHRASES = [
    "the quarterly statement",
    "the interest rate disclosure",
    "the terms that apply",
    "the regulatory prospectus",
    "fees and eligibility criteria",
    "a compliance update",
    "the quarterly disclosure",
    "the annual percentage rate",
    "eligibility criteria and fees",
    "the prospectus terms",
]
HIGH_WORDS = sorted({w for p in HIGH_PHRASES for w in p.split()} - {"a", "an", "the", "and"})
LOW_WORDS = sorted({w for p in LOW_PHRASES for w in p.split()} - {"a", "an", "the", "and", "that"})
HIGH_TAGS = ["funny ad", "jingle", "heartwarming", "surprising", "catchy song", "unforgettable"]
LOW_TAGS = ["interest rate", "quarterly results", "disclosure", "regulatory", "prospectus", "fees"]
NEUTRAL_TAGS = ["banking", "finance", "savings", "mortgage", "investing", "money", "customers"]

TITLE_FRAMES = ["{brand}: {p}", "{P} | {brand}", "{P}, from {brand}", "{brand} presents {p}"]
SENTENCE_FRAMES = [  # description sentences
    "Watch {p} from {brand}.",
    "This film is all about {p}.",
    "Meet {p} in our new advert.",
    "Our customers told us about {p}.",
    "Find out more about {p}.",
    "{P}, brought to you by {brand}.",
]
SPOKEN_FRAMES = [  # transcript sentences: they never name the brand (mentions are the m component)
    "Hey, did you catch {p}?",
    "So this is {p}.",
    "You know what we love? {P}.",
    "Let me tell you about {p}.",
    "Honestly, {p}.",
    "And now, {p}.",
]
MENTION_SENTENCES = [
    "This was {brand}.",
    "{brand}. Banking made simple.",
    "Only at {brand}.",
    "{brand}, here for you.",
]
FILLER = [  # neutral sentences, in descriptions and transcripts
    "Open a savings account online in minutes.",
    "Our advisers are here to help.",
    "Subscribe for more videos.",
    "Thanks for watching.",
    "We have been serving customers for decades.",
    "Download our mobile app today.",
    "Visit your local branch.",
    "Planning for the future starts now.",
]


def capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def _fill(frame: str, phrase: str, brand: str) -> str:
    return frame.format(p=phrase, P=capitalise(phrase), brand=brand)


def brand_names(n: int) -> list[str]:
    """BRANDS first, then numbered variants ("Northwind Bank II") if more are asked for."""
    names = list(BRANDS)
    k = 2
    while len(names) < n:
        names += [f"{b} {_roman(k)}" for b in BRANDS]
        k += 1
    return names[:n]


def _roman(k: int) -> str:
    return {2: "II", 3: "III", 4: "IV", 5: "V"}.get(k, str(k))


def _marker(rng, t: float, slope: float = 1.8) -> tuple[str, bool]:
    """One marker phrase: high with probability sigmoid(slope * t)."""
    high = rng.random() < 1.0 / (1.0 + math.exp(-slope * t))
    pool = HIGH_PHRASES if high else LOW_PHRASES
    return pool[rng.integers(len(pool))], high


def video_text(rng, brand: str, t: float, n_mentions: int) -> dict[str, str]:
    """Title, description (organiser style: line breaks as ' | '), tags and transcript."""
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    title = _fill(pick(TITLE_FRAMES), _marker(rng, t)[0], brand)

    sentences = [_fill(pick(SENTENCE_FRAMES), _marker(rng, t)[0], brand) for _ in range(rng.integers(2, 5))]
    sentences.insert(rng.integers(len(sentences) + 1), pick(FILLER))
    web = "https://www." + "".join(ch for ch in brand.lower() if ch.isalnum()) + ".example"
    description = " ".join(sentences) + f" |  | Learn more: {web}"

    if rng.random() < 0.45:  # about half the real rows have no tags
        tags = ""
    else:
        chosen = [brand]
        for _ in range(rng.integers(1, 5)):
            _, high = _marker(rng, t)
            chosen.append(pick(HIGH_TAGS if high else LOW_TAGS) if rng.random() < 0.7 else pick(NEUTRAL_TAGS))
        tags = ",".join(dict.fromkeys(chosen))  # comma-separated, no spaces, like the real file

    spoken = [_fill(pick(SPOKEN_FRAMES), _marker(rng, t)[0], brand) for _ in range(rng.integers(1, 4))]
    if rng.random() < 0.5:
        spoken.append(pick(FILLER))
    for _ in range(n_mentions):  # the brand-mention component m lives only here
        spoken.insert(rng.integers(len(spoken) + 1), pick(MENTION_SENTENCES).format(brand=brand))
    return {"title": title, "description": description, "tags": tags, "transcript": " ".join(spoken)}
