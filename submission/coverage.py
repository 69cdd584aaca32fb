"""What a run may read: the streams both the labelled split and the test split have, decided from the data.

    streams = expand_streams(project, ["metadata", "e5"], aspects=[])   # selectors -> concrete stream names
    keep, dropped = usable_streams(project, streams)  # dropped: stream -> why, for the manifest

A stream is usable only when both the labelled split and the test split have what it is computed
from for at least COVERAGE of their videos (VIDEM's public dev split has only its CSV, so its runs
use texts and metadata; a test-only transcript or organiser feature is never trained on). A search's
candidates are cut down to the usable streams the same way (`usable_candidates`).
"""

from __future__ import annotations

from typing import Any

from memo.errors import MemoError
from memo.features.load import EXTRACTOR_STREAMS, input_coverage
from memo.streams import select

COVERAGE = 0.5  # a stream is usable when at least this fraction of each split's videos has its input


def expand_streams(project, wanted: list[str], aspects: list[str], strict: bool = True) -> list[str]:
    """Selectors (memo.streams) -> the concrete streams this dataset could have, before anything is computed.
    strict=False for a predictor's own defaults, which name streams a dataset may lack."""
    from memo.features.load import table_streams

    ds = project.dataset
    text_fields = [
        f
        for f in project.config.features.text_fields
        if any(f in s.table.columns for s in ds.splits.values())
    ]
    organiser = sorted({n for s in ds.splits.values() for n in s.feature_files})
    possible = [
        *table_streams(ds),
        "vit",
        "audio",
        "stats",
        *(f"e5.{f}" for f in text_fields),
        *(f"organiser.{n}" for n in organiser),
        *(f"rationale.{a}" for a in aspects),
        *(["ratings"] if aspects else []),
    ]
    return select(wanted, possible, strict=strict)


def usable_streams(project, streams: list[str]) -> tuple[list[str], dict[str, str]]:
    """Keep the streams both the labelled and the test split have; say why the others are dropped."""
    ds = project.dataset
    train = ds.splits[ds.train_split]
    # no test split: a run can still be cross-validated
    test = ds.splits[ds.test_split] if ds.test_split else train
    from memo.features import EXTRACTORS

    keep, dropped = [], {}
    for s in streams:
        a, b = input_coverage(train, s), input_coverage(test, s)
        prefix = s.partition(".")[0]
        if prefix in EXTRACTOR_STREAMS and prefix not in EXTRACTORS:
            dropped[s] = f"this memo install has no {prefix} extractor"
        elif a >= COVERAGE and b >= COVERAGE:
            keep.append(s)
        elif b >= COVERAGE:
            dropped[s] = (
                f"only the {test.name} split has it ({a:.0%} of {train.name} videos); a model cannot learn it"
            )
        elif a >= COVERAGE:
            dropped[s] = (
                f"only the {train.name} split has it ({b:.0%} of {test.name} videos); the test videos "
                "could not use it"
            )
        else:
            dropped[s] = "neither split has it"
    return keep, dropped


def usable_candidates(
    run: str, candidates: list[dict[str, Any]], streams: list[str], dropped: dict[str, str]
) -> list[dict[str, Any]]:
    """A search's candidates on the streams the data has: each reads its own selectors among `streams`; one
    left
    with no stream is dropped (said in `dropped`, which the manifest records)."""
    out = []
    for c in candidates:
        own = select(c["streams"], streams, strict=False) if c["streams"] else []
        if c["streams"] and not own:
            dropped[f"candidate {c['name']}"] = "reads no stream both splits have"
            continue
        params = {**c["params"], **({"streams": own} if "streams" in c["params"] else {})}
        out.append({**c, "streams": own, "params": params})
    if not out:
        raise MemoError(
            f"run {run} is a search with no candidate left on the streams both splits have; add "
            f"candidates that read {', '.join(streams) or 'texts'}."
        )
    return out
