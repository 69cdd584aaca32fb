"""One stream vocabulary: the selector rule every section of memo.toml follows, and the cues stream."""

import pandas as pd
import pytest

from memo.config import ConfigError, RunConfig, from_dict
from memo.errors import MemoError
from memo.features.cues import cue_frame, cue_stream
from memo.streams import matches, select

AVAILABLE = [
    "metadata.absolute",
    "metadata.brand",
    "cues",
    "e5.title",
    "e5.tags",
    "e5x.odd",
    "rationale.humor",
]


def test_a_selector_is_a_name_or_a_prefix_and_means_the_same_everywhere():
    assert select(["metadata"], AVAILABLE) == ["metadata.absolute", "metadata.brand"]
    # e5 never picks e5x.*
    assert select(["metadata.brand", "e5"], AVAILABLE) == ["metadata.brand", "e5.title", "e5.tags"]
    assert select(["rationales"], AVAILABLE) == ["rationale.humor"]  # the LLM section's spelling
    assert select(["e5", "e5.title"], AVAILABLE) == ["e5.title", "e5.tags"]  # no repeats
    assert (
        matches("e5.title", "e5")
        and not matches("e5x.odd", "e5")
        and not matches("metadata", "metadata.brand")
    )


def test_an_unmatched_selector_lists_the_streams_there_are():
    with pytest.raises(
        MemoError, match=r"unknown feature stream 'vit'; the streams here are: metadata.absolute, .*cues"
    ):
        select(["cues", "vit"], AVAILABLE)
    # a predictor's defaults name streams a dataset may lack
    assert select(["cues", "vit"], AVAILABLE, strict=False) == ["cues"]


def test_old_key_names_say_what_they_are_called_now():
    with pytest.raises(ConfigError, match="features is now called streams"):
        from_dict(RunConfig, {"predictor": "gbt", "features": ["metadata"]}, "runs.1")


def test_cues_read_the_format_from_the_video_own_texts():
    t = pd.DataFrame(
        {
            "group": ["Goldman Sachs", "Goldman Sachs", "Aviva UK"],
            "title": [
                "Talks at GS: the Market Outlook",
                "Goldman Sachs careers: life as an intern",
                "Our new TV ad",
            ],
            "description": ["In this episode of our podcast ...", "", None],
            "tags": ["", "careers,graduates", None],
        },
        index=["a", "b", "c"],
    )
    f = cue_frame(t)
    assert f.loc["a", ["title_talk", "title_outlook", "description_podcast"]].tolist() == [1.0, 1.0, 1.0]
    assert (
        f.loc["b", "title_career"] == 1.0
        and f.loc["b", "title_names_brand"] == 1.0
        and f.loc["b", "has_tags"] == 1.0
    )
    assert (
        f.loc["c", "title_spot"] == 1.0
        and f.loc["c", "title_names_brand"] == 0.0
        and f.loc["c", "description_podcast"] == 0.0
    )
    # the channel is asked about, never a feature
    assert not any("group" in c or "memorab" in c for c in f.columns)
    # relabelling the channels changes only the names-the-brand cues
    other = cue_frame(t.assign(group=["X", "X", "Y"]))
    changed = [c for c in f.columns if not f[c].equals(other[c])]
    assert changed and all("names_brand" in c for c in changed)
    s = cue_stream(t)
    assert s.values.shape == (3, 1, f.shape[1]) and s.mask.all() and s.names == list(f.columns)
