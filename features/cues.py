"""The `cues` stream: what kind of video an ad is, read from its title, description and tags.

    cue_frame(split.table)        # (N, C) named 0/1 and small numeric cues, no model, no store
    cue_stream(split.table)       # the same as a Stream (N, 1, C) for load_features
    cue_words("title_names_brand")  # "the title names the brand": what `memo score --explain` says

Why: on VIDEM a model meets brands it has never seen, and what an embedding learns on 25 brands
is mostly which brand (and so which brand level) a text sounds like. Cues of the format travel
across brands: a one-hour talk, a webinar, a podcast episode, an interview, a market outlook, an
explainer or a short spot; whether the title names the brand; how long and how English the
texts are. Each cue is a fixed rule on the video's own texts (its channel name is used only to
ask whether the title names it), so nothing is learned and nothing crosses a fold.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from memo.store import Stream

# format -> pattern, matched on the lower-cased title and (separately) the description
FORMATS = {
    "talk": r"\b(?:talks?|keynote|speech|lecture|fireside)\b",
    "webinar": r"\b(?:webinars?|webcasts?|conference|summit|forum|event|live)\b",
    "podcast": r"\b(?:podcasts?|episode|ep\.?\s?\d+|exchanges)\b",
    "interview": r"\b(?:interviews?|conversation|q\s?&\s?a|discusses|sits down)\b",
    "panel": r"\b(?:panel|roundtable|debate)\b",
    "outlook": (
        r"\b(?:outlook|update|markets?|economy|economic|inflation|rates|investors?|investment|portfolio"
        r"|fund|equity|bonds?)\b"
    ),
    "explainer": (
        r"\b(?:explained|explainer|what is|what are|how to|how do|why|guide|tips|basics|understanding"
        r"|\d+ (?:things|ways|tips))\b"
    ),
    "spot": r"\b(?:ad|advert|advertisement|commercial|campaign|tv|spot|film|story|stories|brand)\b",
    "people": r"\b(?:ceo|chairman|chief|president|founder|head of|manager|analyst|strategist|economist)\b",
    "career": r"\b(?:careers?|graduates?|interns?|internship|recruit\w*|jobs?|life at|our "
    r"people|culture|diversity)\b",
    "esg": r"\b(?:esg|sustainab\w*|climate|green|net zero|impact)\b",
    "year": r"\b(?:19|20)\d\d\b",
}
# what each format cue says, in words (the cue columns title_<format> and description_<format>)
FORMAT_WORDS = {
    "talk": "a talk or keynote",
    "webinar": "a webinar, conference or live event",
    "podcast": "a podcast episode",
    "interview": "an interview or conversation",
    "panel": "a panel or debate",
    "outlook": "markets, investing or an outlook",
    "explainer": "an explainer (how to, why, tips)",
    "spot": "an ad, campaign, film or story",
    "people": "an executive or expert",
    "career": "careers or life at the company",
    "esg": "sustainability or climate",
    "year": "a year",
}
# every cue column of cue_frame in words, in one place (a test checks that none is missing)
CUE_WORDS = {
    **{f"title_{k}": f"the title mentions {v}" for k, v in FORMAT_WORDS.items()},
    **{f"description_{k}": f"the description mentions {v}" for k, v in FORMAT_WORDS.items()},
    "title_names_brand": "the title names the brand",
    "description_names_brand": "the description names the brand",
    "log1p_title_words": "the title's length in words",
    "title_separator": "the title has a separator (| : -)",
    "title_question": "the title asks a question",
    "title_digits": "the title has digits",
    "title_upper_share": "the share of capitals in the title",
    "non_ascii_share": "the share of non-ASCII characters in the title and description",
    "english_share": "how English the title and description read",
    "log1p_description_links": "the links in the description",
    "log1p_description_hashtags": "the hashtags in the description",
    "has_tags": "the ad has tags",
}


def cue_words(column: str) -> str:
    """A cue column in words ("the title names the brand"); an unknown column as it is."""
    return CUE_WORDS.get(column, column)


# words of a channel name that do not name the brand ("Legal & General Investment Management")
GENERIC = {
    "the",
    "and",
    "investment",
    "investments",
    "investors",
    "management",
    "asset",
    "assets",
    "global",
    "group",
    "life",
    "solutions",
    "managers",
    "bank",
    "banking",
    "capital",
    "fund",
    "funds",
    "trust",
    "trusts",
    "emea",
    "apac",
    "us",
    "uk",
}
ENGLISH = r"\b(?:the|and|of|to|in|for|with|our|is|are)\b"


def _texts(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series("", index=table.index)
    return table[column].where(table[column].map(lambda v: isinstance(v, str)), "")


def _brand_words(channel: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", channel.lower()) if len(w) > 2 and w not in GENERIC][:2]


def names_brand(text: pd.Series, channels: pd.Series) -> pd.Series:
    """1.0 where the text contains a distinctive word of the video's own channel name."""
    return pd.Series(
        [float(any(w in t for w in _brand_words(c))) for t, c in zip(text, channels)], index=text.index
    )


def cue_frame(table: pd.DataFrame) -> pd.DataFrame:
    """(N, C) cues of each video's format from its own texts (see the module docstring)."""
    raw_title = _texts(table, "title")
    title, desc, tags = (
        raw_title.str.lower(),
        _texts(table, "description").str.lower(),
        _texts(table, "tags").str.lower(),
    )
    # the channel's own name, not its parent brand
    channels = _texts(table, "channel" if "channel" in table else "group")
    out = pd.DataFrame(index=table.index)
    for name, pattern in FORMATS.items():
        out[f"title_{name}"] = title.str.contains(pattern, regex=True).astype(float)
        out[f"description_{name}"] = desc.str.contains(pattern, regex=True).astype(float)
    out["title_names_brand"] = names_brand(title, channels)
    out["description_names_brand"] = names_brand(desc, channels)
    out["log1p_title_words"] = np.log1p(title.str.split().str.len().fillna(0).astype(float))
    out["title_separator"] = title.str.contains(r"[|:\-–]").astype(float)
    out["title_question"] = title.str.contains(r"\?").astype(float)
    out["title_digits"] = title.str.contains(r"\d").astype(float)
    out["title_upper_share"] = raw_title.map(
        lambda s: sum(c.isupper() for c in s) / max(1, sum(c.isalpha() for c in s))
    )
    both = title + " " + desc
    out["non_ascii_share"] = both.map(lambda s: sum(ord(c) > 127 for c in s) / max(1, len(s)))
    out["english_share"] = both.str.count(ENGLISH) / (both.str.split().str.len().fillna(0) + 1)
    out["log1p_description_links"] = np.log1p(desc.str.count(r"https?://").astype(float))
    out["log1p_description_hashtags"] = np.log1p(desc.str.count(r"#\w+").astype(float))
    out["has_tags"] = (tags.str.strip() != "").astype(float)
    return out


def has_cues(table: pd.DataFrame) -> pd.Series:
    """(N,) True where a video has a title or a description to read cues from."""
    return (_texts(table, "title").str.strip() != "") | (_texts(table, "description").str.strip() != "")


def cue_stream(table: pd.DataFrame) -> Stream:
    """cue_frame as a Stream (N, 1, C); a video without title or description has a False mask."""
    f = cue_frame(table)
    return Stream(f.to_numpy(np.float32)[:, None, :], has_cues(table).to_numpy()[:, None], list(f.columns))
