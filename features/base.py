"""What every extractor shares: the registry, the per-run outcome, store-table conventions.

An extractor turns the videos of one split into named arrays in the feature store. It is a class
registered by name in EXTRACTORS; `memo features --extractors NAME` and [features] extractors in
memo.toml pick it. Its contract:

    ext = EXTRACTORS.get("vit")(project, device="cpu", batch_size=16)
    ext.streams(project.dataset)      # {"vit": (StoreTable, "frames")}: where each stream lives
    ext.run(split, outcome, bar)      # compute what is missing for this split, record failures

`streams` must be cheap (no model is loaded): load_features calls it to find the store table of
the *current* configuration. `run` loads its model lazily, computes only `table.missing(ids)` (or
ids whose input changed), writes each video with `table.put` as soon as it is done (so a killed
run loses at most one batch), and writes the table's manifest. While `run` works, the store
tables of `streams` are locked (StoreTable.lock): a second `memo features` on the same store stops
with a clear sentence instead of computing everything again (processes of one `accelerate launch`
share ids by rank and do not lock each other out).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memo.launch import process_slot
from memo.registry import Registry

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.project import Project
    from memo.store import StoreTable


EXTRACTORS: Registry = Registry(
    "feature extractor",
    lazy={
        name: f"memo.features.{module}"
        for name, module in (
            ("organiser", "organiser"),
            ("e5", "text"),
            ("vit", "vit"),
            ("audio", "audio"),
            ("stats", "stats"),
        )
    },
)


@dataclass
class Outcome:
    """What one extractor did in one `memo features` run."""

    name: str
    computed: int = 0  # items written in this run (videos, or texts for e5)
    cached: int = 0  # items found in the store already
    failed: dict[str, str] = field(default_factory=dict)  # "split/id[/field]" -> reason
    seconds: float = 0.0
    notes: dict[str, int] = field(default_factory=dict)  # e.g. {"long videos capped at 32 frames": 12}

    def note(self, what: str, n: int = 1) -> None:
        if n:
            self.notes[what] = self.notes.get(what, 0) + n

    def line(self) -> str:
        rate = f", {self.computed / self.seconds:.1f}/s" if self.computed and self.seconds else ""
        s = (
            f"{self.name}: {self.computed} computed, {self.cached} already there, {len(self.failed)} "
            f"failed ({self.seconds:.1f}s{rate})"
        )
        return s + "".join(f"; {n} {what}" for what, n in self.notes.items())


class Extractor:
    """Base class: holds the project, device and batch size; subclasses implement streams and run."""

    name = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # every extractor's run holds its tables' locks, without each one remembering to
        if "run" in cls.__dict__:
            cls.run = _locked_run(cls.__dict__["run"])

    def __init__(self, project: Project, device: str = "auto", batch_size: int | None = None):
        self.project = project
        self.cfg = project.config.features
        self.device_pref = device if device != "auto" else (project.config.models.device or "auto")
        self.batch_size = int(batch_size or self.cfg.batch_size)

    @property
    def store(self):
        return self.project.store

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        raise NotImplementedError

    def run(self, split: Split, outcome: Outcome, progress: bool = True) -> None:
        raise NotImplementedError

    def device(self) -> str:
        return process_device(self.device_pref)

    def finish_model_table(
        self,
        table: StoreTable,
        split: Split,
        outcome: Outcome,
        failed: dict[str, str],
        model: str,
        array: str,
        enc,
    ) -> None:
        """Record a model extractor's failures and manifest (dims of `array` from the encoder `enc`, if one
        ran)."""
        table.record_failures(failed)
        outcome.failed.update({f"{split.name}/{i}": r for i, r in failed.items()})
        if enc is not None or not table.read_manifest():
            dims = {array: enc.dim} if enc is not None else table.read_manifest().get("dims", {})
            table.write_manifest(
                model=model,
                revision=table.config["revision"],
                parameters=table.config,
                dims=dims,
                precision=str(enc.dtype) if enc else None,
                versions=versions("torch", "transformers", "av"),
                tiny_random=model.startswith("tiny:"),
            )


def _locked_run(run):
    """Wrap an extractor's run so that it holds the lock of each store table it writes (once, not per nested
    call)."""

    @functools.wraps(run)
    def locked(self, split, *args, **kwargs):
        if getattr(self, "_holding_locks", False) or process_slot()[1] > 1:
            return run(self, split, *args, **kwargs)
        tables = {t.dir: t for t, _ in self.streams(self.project.dataset).values()}
        with contextlib.ExitStack() as stack:
            for d in sorted(tables):
                stack.enter_context(tables[d].lock())
            self._holding_locks = True
            try:
                return run(self, split, *args, **kwargs)
            finally:
                self._holding_locks = False

    return locked


def process_device(preference: str) -> str:
    """pick_device, except that under `accelerate launch` each process takes its own GPU (cuda:LOCAL_RANK)."""

    from memo.models import pick_device

    dev = pick_device(preference)
    if dev == "cuda" and process_slot()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return dev


def text_hash(text: str) -> np.ndarray:
    """(8,) float32: the first 8 bytes of the text's SHA-256, stored next to its embedding.

    The store keys arrays by video id; the hash lets a run see that a video's text changed (a
    re-downloaded transcript, a rewritten rationale) and recompute only that one. Bytes as floats
    are exact in float32, so the comparison is exact too.
    """
    return np.frombuffer(hashlib.sha256(text.encode("utf-8")).digest()[:8], dtype=np.uint8).astype(np.float32)


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the libraries an extractor used (for its manifest)."""
    from memo.store import package_versions

    return package_versions(("numpy",) + packages)


def short(exc: BaseException) -> str:
    """One-line reason for a per-video failure."""
    msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def bar(total: int, desc: str, enabled: bool = True):
    """The progress bar every extractor shows: done/total, rate and time left."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="item", disable=not enabled or total == 0, dynamic_ncols=True, leave=True
    )


def prefetch(fn, items, workers: int = 2, depth: int | None = None):
    """Yield (item, fn(item) or the exception it raised), in order, with fn running ahead in threads.

    At most `depth` results are held at once (default 2 x workers), so decoding overlaps encoding
    while memory stays flat however many videos there are. PyAV and PIL release the GIL while
    decoding, so threads are enough; workers=0 runs fn inline (the naive way, for benchmarks).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def safe(x):
        try:
            return fn(x)
        except Exception as e:  # handed to the caller, which records it per video
            return e

    if workers <= 0:
        for x in items:
            yield x, safe(x)
        return
    depth = depth or 2 * workers
    with ThreadPoolExecutor(workers) as pool:
        queue: deque = deque()
        it = iter(items)
        for x in it:
            queue.append((x, pool.submit(safe, x)))
            if len(queue) >= depth:
                break
        while queue:
            x, fut = queue.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                queue.append((nxt, pool.submit(safe, nxt)))
            yield x, fut.result()


_END = object()


def media_of(split: Split, video_id: str) -> tuple[str | None, str | None]:
    """(video file, frames folder) of a video, None where absent."""
    row = split.table.loc[video_id]
    vp = row.get("video_path") if "video_path" in split.table else None
    fd = row.get("frames_dir") if "frames_dir" in split.table else None
    ok = lambda v: v if isinstance(v, str) and v else None  # noqa: E731  (NaN/None -> None)
    return ok(vp), ok(fd)
