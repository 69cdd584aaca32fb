"""One vocabulary for feature streams: names, and the one rule every selector follows.

A *stream* is one per-video array (`e5.title`, `vit`, `metadata.brand`, `ratings`). Runs
(`[runs.N] streams`), the GBT (`[gbt] streams`), the LLM fusion model (`[llm] streams`) and
MindMem's modalities (`[mindmem] modalities`) all pick streams with *selectors*, and a selector
means the same everywhere:

    select(["metadata", "e5.title"], ["metadata.absolute", "metadata.brand", "e5.title", "e5.tags"])
    -> ["metadata.absolute", "metadata.brand", "e5.title"]

- a selector names a stream (`e5.title`) or a prefix, meaning every stream under it
  (`e5` = e5.title, e5.description, ...; `metadata` = metadata.absolute and metadata.brand);
- `rationales` is accepted for `rationale` (the LLM section has always said it that way);
- a selector that matches nothing is an error that lists what there is, unless the caller asks
  for what is there only (`strict=False`: a predictor's default list names streams a dataset may lack).
"""

from __future__ import annotations

from collections.abc import Iterable

from memo.errors import MemoError

ALIASES = {"rationales": "rationale"}

# Streams built from the split table itself (no store, no model): the video's own metadata, the same
# values relative to its brand (channel), and cues of the ad's format read from its title and texts.
ABSOLUTE_STREAM = "metadata.absolute"  # memo.features.load.metadata_frame
BRAND_STREAM = "metadata.brand"  # memo.features.load.brand_frame
CUES_STREAM = "cues"  # memo.features.cues
TABLE_STREAMS = (ABSOLUTE_STREAM, BRAND_STREAM, CUES_STREAM)


def canonical(selector: str) -> str:
    head, dot, rest = selector.partition(".")
    return ALIASES.get(head, head) + dot + rest


def matches(name: str, selector: str) -> bool:
    """'e5.title' matches 'e5.title' and 'e5'; 'metadata.brand' matches 'metadata'; 'e5' never matches
    'e5x'."""
    s = canonical(selector)
    return name == s or name.startswith(s + ".")


def select(
    selectors: Iterable[str], available: Iterable[str], strict: bool = True, what: str = "feature stream"
) -> list[str]:
    """The available streams the selectors pick, in selector order then available order, without repeats."""
    available = list(available)
    out: list[str] = []
    for sel in selectors:
        hits = [n for n in available if matches(n, sel)]
        if not hits and strict:
            there = (
                f"the streams here are: {', '.join(available)}" if available else "there is no stream here"
            )
            raise MemoError(
                f"unknown {what} {sel!r}; {there} (a prefix such as e5 picks every stream under it)."
            )
        out += [h for h in hits if h not in out]
    return out
