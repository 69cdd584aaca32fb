"""`run_features`: every selected extractor over every selected split, into the store, nothing twice."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from memo.errors import MemoError
from memo.features.base import EXTRACTORS, Outcome

if TYPE_CHECKING:
    from memo.project import Project


def run_features(project: "Project", extractors: list[str] | None = None, splits: list[str] | None = None,
                 device: str = "auto", batch_size: int | None = None, progress: bool = True, echo=print) -> dict[str, Outcome]:
    """Compute what the store lacks for the current config; print one summary line per extractor.

    Returns {extractor: Outcome(computed, cached, failed, seconds, notes)}. Failures (bad media, a
    corrupt feature file) are recorded in the table's failures.json and listed here; the run goes
    on and the failed video's mask says what is missing. Under `accelerate launch` each process
    takes every k-th id of a split (the store is shared, writes are per video and atomic).
    """
    cfg = project.config.features
    names = extractors or cfg.extractors
    for n in names:
        EXTRACTORS.get(n)  # an unknown name fails before any work starts
    ds = project.dataset
    wanted = splits or cfg.splits or list(ds.splits)
    for s in wanted:
        if s not in ds.splits:
            raise MemoError(f"unknown split {s!r}; the dataset has: {', '.join(ds.splits)}.")
    rank, world = _process_slot()
    results: dict[str, Outcome] = {}
    for n in names:
        ext = EXTRACTORS.get(n)(project, device=device, batch_size=batch_size)
        outcome = Outcome(n)
        t0 = time.perf_counter()
        for s in wanted:
            split = ds.splits[s]
            if world > 1:
                split = _shard(split, rank, world)
            ext.run(split, outcome, progress=progress and rank == 0)
        outcome.seconds = time.perf_counter() - t0
        results[n] = outcome
        echo(outcome.line())
        for key, reason in list(outcome.failed.items())[:20]:
            echo(f"  failed {key}: {reason}")
        if len(outcome.failed) > 20:
            echo(f"  ... and {len(outcome.failed) - 20} more (see failures.json in the store)")
    return results


def _process_slot() -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / torchrun, else (0, 1); read from the environment."""
    import os

    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _shard(split, rank: int, world: int):
    """The split restricted to every world-th id from rank: processes share the store, not ids."""
    from dataclasses import replace

    table = split.table.iloc[rank::world]
    keep = set(table.index)
    files = {k: {i: p for i, p in v.items() if i in keep} for k, v in split.feature_files.items()}
    return replace(split, table=table, feature_files=files)
