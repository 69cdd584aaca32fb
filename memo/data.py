"""The dataset containers every layout reads into, and the reading helpers and checks they share.

    ds.splits["dev"].table                           # pandas DataFrame indexed by video id
    ds.train_split, ds.test_split                    # "dev", "test" for VIDEM
    ds.problems                                      # every defect the reader found

Reading starts in memo.layouts (`read_dataset`, `detect_layout`); each folder layout is one module
that registers a `Layout` (how to recognise it, how to read it) in LAYOUTS: memo.layout_videm,
memo.layout_mediaeval2021, memo.layout_csv.

Every split table is indexed by `id` (a string) and has these column roles:
- `group`: the parent brand (memo.groups: sibling channels such as "HSBC UK" and "HSBC" are one
  group); cross-validation is grouped by it. Never a feature. `channel` keeps the name as the data
  gives it. Datasets without groups (Memento10k) use the video id, so grouped K-fold is plain K-fold.
- text fields, any of TEXT_FIELDS: title, description, tags, transcript, captions (captions:
  one caption per line).
- numeric metadata, standard snake-case names (duration, views, likes, ...).
- targets (labelled splits only), under the dataset's own names.
- media: `video_path` (a video file) and `frames_dir` (a folder of frames), None when absent.
Organiser feature files are listed per split in `Split.feature_files[name][id] -> Path`.

Readers raise DataError only for what makes a split unreadable (a missing CSV or column).
Everything else they find (a duplicate id, a NaN target, an empty title, text in a numeric column)
is recorded in `Dataset.problems`; `memo data check` reports them all and
`Dataset.raise_problems()` stops a command that cannot go on with them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from memo.errors import DataError
from memo.registry import Registry
from memo.store import SAFE_ID_RULE, is_safe_id

TEXT_FIELDS = ("title", "description", "tags", "transcript", "captions")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
# name -> Layout; filled by the layout modules as memo.layouts imports them
LAYOUTS: Registry = Registry("dataset layout")


@dataclass
class Problem:
    """One defect found in a dataset; `error` ones stop training, warnings are only reported."""

    message: str
    error: bool = True

    def __str__(self) -> str:
        return self.message


@dataclass
class Split:
    name: str
    table: pd.DataFrame
    text_columns: list[str]
    numeric_columns: list[str]
    target_columns: list[str]
    feature_files: dict[str, dict[str, Path]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return list(self.table.index)

    @property
    def labelled(self) -> bool:
        return bool(self.target_columns)

    def modality_counts(self) -> dict[str, int]:
        """How many videos of this split have each modality (text fields, media, features)."""
        t = self.table
        counts = {c: int(t[c].fillna("").astype(str).str.strip().ne("").sum()) for c in self.text_columns}
        for c in ("video_path", "frames_dir"):
            counts[c] = int(t[c].notna().sum()) if c in t else 0
        for name, files in self.feature_files.items():
            counts[f"features/{name}"] = len(files)
        return counts


@dataclass
class Dataset:
    root: Path
    layout: str
    splits: dict[str, Split]
    targets: list[str]
    id_column: str
    train_split: str
    test_split: str | None
    problems: list[Problem] = field(default_factory=list)
    # parent brand -> the channel names it joins
    group_merges: dict[str, list[str]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.error]

    def raise_problems(self) -> None:
        """Stop with the first defect (and how many more) when the dataset cannot be trusted."""
        errs = self.errors
        if errs:
            more = (
                f" (and {len(errs) - 1} more defects; run `memo data check` to list them)"
                if len(errs) > 1
                else ""
            )
            raise DataError(f"{errs[0]}{more}")

    def labelled(self) -> Split:
        return self.splits[self.train_split]


@dataclass(frozen=True)
class Layout:
    """One folder layout: how to recognise a folder of it and how to read it.

    `detect(root)` says whether `root` looks like this layout; `expects` names what it looks for (for
    the message when no layout matches); layouts are asked in `rank` order, lowest first, so a layout
    that takes any CSV (csv) comes after those recognised by their folders.
    """

    name: str
    read: Callable[..., Dataset]
    detect: Callable[[Path], bool]
    expects: str
    rank: int


def register_layout(
    name: str, detect: Callable[[Path], bool], expects: str, rank: int
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator for a reader `read(root, targets=None) -> Dataset`: registers it in LAYOUTS with its
    detection, and returns the reader unchanged."""

    def decorator(read: Callable[..., Dataset]) -> Callable[..., Dataset]:
        LAYOUTS.register(name)(Layout(name, read, detect, expects, rank))
        return read

    return decorator


# ----------------------------------------------------------------------------- helpers


def read_text_file(path: Path) -> tuple[str, str]:
    """(text, encoding) of a text file: UTF-16 with its BOM, UTF-8 (with or without BOM), else Windows-1252,
    else Latin-1.

    Latin-1 decodes any bytes, so nothing is lost silently: the caller reports every file that was
    not UTF-8.
    """
    import codecs

    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Windows "Unicode" text files
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(enc), ("utf-8" if enc == "utf-8-sig" else enc)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_csv(path: Path, **kw) -> pd.DataFrame:
    """Read an organiser CSV: UTF-8 with or without a byte-order mark, quoted multi-line fields."""
    if not path.is_file():
        raise DataError(f"missing file {path}; check the dataset folder or pass --layout.")
    try:
        return pd.read_csv(path, encoding="utf-8-sig", keep_default_na=True, **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot parse {path}: {e}; fix the file or re-download it.") from e


def require_columns(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {', '.join(missing)}; is this the right file for the layout?"
        )


def media_paths(split_dir: Path, ids: list[str]) -> tuple[list[str | None], list[str | None]]:
    """Video files under <split>/videos/ (or video/, Videos/) and frame folders under <split>/frames/."""
    video_dirs = [split_dir / d for d in ("videos", "video", "Videos") if (split_dir / d).is_dir()]
    by_stem: dict[str, Path] = {}
    for d in video_dirs:
        for p in d.iterdir():
            if p.suffix.lower() in VIDEO_SUFFIXES:
                by_stem.setdefault(p.stem, p)
    frames_root = split_dir / "frames"
    videos = [str(by_stem[i]) if i in by_stem else None for i in ids]
    frames = [str(frames_root / i) if is_safe_id(i) and (frames_root / i).is_dir() else None for i in ids]
    return videos, frames


def find_feature_files(features_dir: Path, ids: set[str]) -> dict[str, dict[str, Path]]:
    """Organiser features: <split>/features/<Name>/<id>.npy, one file per video."""
    out: dict[str, dict[str, Path]] = {}
    if features_dir.is_dir():
        for d in sorted(p for p in features_dir.iterdir() if p.is_dir()):
            files = {p.stem: p for p in d.glob("*.npy") if p.stem in ids and is_safe_id(p.stem)}
            if files:
                out[d.name] = files
    return out


def to_numbers(
    values: pd.Series,
    ids: list[str],
    source: Path,
    column: str,
    problems: list[Problem],
    target: bool = False,
) -> np.ndarray:
    """`values` as numbers, text read as NaN (`pd.to_numeric(errors="coerce")`), with a problem naming
    the text cells: an error in a target (that label is lost), else a warning (a missing value is
    survivable)."""
    numbers = pd.to_numeric(values, errors="coerce")
    note_text_cells(values, numbers, ids, source, column, problems, target)
    return numbers.values


def note_text_cells(
    values: pd.Series,
    numbers: pd.Series,
    ids: list[str],
    source: Path,
    column: str,
    problems: list[Problem],
    target: bool,
    consequence: str | None = None,
) -> None:
    """Record the cells of `values` that hold text where `numbers` (their numeric reading) has NaN."""
    text = values.notna().to_numpy() & numbers.isna().to_numpy()
    text &= values.astype(str).str.strip().ne("").to_numpy()
    if not text.any():
        return
    k = int(text.argmax())
    fix = (
        "write the score as a number or drop the row" if target else "write a number or leave the cell empty"
    )
    consequence = consequence or ("that video has no label" if target else "it reads as missing")
    problems.append(
        Problem(
            f"{source}: {'target ' if target else ''}column {column} holds text where a number belongs in "
            f"{int(text.sum())} row(s), e.g. video {ids[k]!r}: {values.iloc[k]!r}, so {consequence}; {fix}.",
            error=target,
        )
    )


def _check_table(split: Split, problems: list[Problem], source: Path) -> None:
    """Row-level defects: duplicate ids, NaN or out-of-range targets, empty titles."""
    t = split.table
    for i in [i for i in t.index.unique() if not is_safe_id(i)][:20]:
        problems.append(
            Problem(
                f"{source}: video id {i!r} is not a plain name ({SAFE_ID_RULE}); rename the video "
                "and its files."
            )
        )
    dup = t.index[t.index.duplicated()].unique()
    for i in dup:
        problems.append(Problem(f"{source}: video id {i!r} appears more than once; keep one row per id."))
    for c in split.target_columns:
        values = pd.to_numeric(t[c], errors="coerce")
        for i in t.index[values.isna()]:
            problems.append(
                Problem(
                    f"{source}: target {c} of video {i!r} is missing or not a number; fill it or "
                    "drop the row."
                )
            )
        for i in t.index[(values < 0) | (values > 1)]:
            problems.append(
                Problem(
                    f"{source}: target {c} of video {i!r} is {values[i]:g}, outside [0, 1]; "
                    "memorability scores are hit rates."
                )
            )
    if "title" in t:
        for i in t.index[t["title"].fillna("").astype(str).str.strip().eq("")]:
            problems.append(
                Problem(f"{source}: video {i!r} has an empty title; add one (every video needs some text).")
            )


def _empty_text_warnings(split: Split, problems: list[Problem]) -> None:
    for c in split.text_columns:
        if c == "title":
            continue
        n = int(split.table[c].fillna("").astype(str).str.strip().eq("").sum())
        if n:
            problems.append(
                Problem(f"{split.name}: {n} of {len(split.table)} videos have an empty {c}.", error=False)
            )


def finish_split(split: Split, problems: list[Problem], source: Path) -> Split:
    split.table.index = split.table.index.astype(str)
    split.table.index.name = "id"
    if split.table.empty:
        problems.append(
            Problem(
                f"{source}: the {split.name} split lists no videos; is the file complete (re-download it)?"
            )
        )
    _check_table(split, problems, source)
    _empty_text_warnings(split, problems)
    return split


# ----------------------------------------------------------------------------- splits and groups


def check_disjoint(splits: dict[str, Split], problems: list[Problem]) -> None:
    """No video id may sit in two splits (the readers check this; brands are checked once grouped by
    parent)."""
    names = list(splits)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            ids = set(splits[a].ids) & set(splits[b].ids)
            if ids:
                problems.append(
                    Problem(
                        f"{len(ids)} video id(s) are in both {a} and {b}, e.g. {sorted(ids)[0]!r}; "
                        "a video belongs to one split."
                    )
                )


def _check_brands_disjoint(splits: dict[str, Split], problems: list[Problem]) -> None:
    """For branded data no parent brand may sit in two splits: the test is on new brands."""
    names = list(splits)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            ga = set(splits[a].table["group"]) - set(splits[a].ids)
            gb = set(splits[b].table["group"]) - set(splits[b].ids)
            shared = sorted((ga & gb) - {""})
            if shared:
                problems.append(
                    Problem(
                        f"brand(s) {', '.join(shared[:3])} are in both {a} and {b}; held-out "
                        "scores will be optimistic.",
                        error=False,
                    )
                )


def with_parent_groups(ds: Dataset, explicit: dict[str, str] | None = None) -> Dataset:
    """Group every split by parent brand (memo.groups), over the names of all splits at once so a dev
    channel and a test channel of one brand are one group; the given name stays in `channel`.
    Videos that are their own group (data without brands) are left alone."""
    from memo.groups import parent_groups

    named = {
        s: sp.table["group"].astype(str) != pd.Series(sp.ids, index=sp.table.index)
        for s, sp in ds.splits.items()
    }
    names = [g for s, sp in ds.splits.items() for g in sp.table.loc[named[s], "group"].astype(str)]
    parent, ds.group_merges = parent_groups(names, explicit)
    for s, sp in ds.splits.items():
        sp.table["channel"] = sp.table["group"]
        sp.table.loc[named[s], "group"] = sp.table.loc[named[s], "group"].astype(str).map(parent)
    _check_brands_disjoint(ds.splits, ds.problems)
    _check_several_groups(ds)
    return ds


def _check_several_groups(ds: Dataset) -> None:
    """Brand-grouped cross-validation (memo evaluate, the search's inner folds) needs at least 2 groups in
    the labelled split."""
    split = ds.splits.get(ds.train_split)
    if split is None or split.table.empty:
        return
    groups = split.table["group"].astype(str).unique()
    if len(groups) < 2:
        ds.problems.append(
            Problem(
                f"all {len(split.table)} video(s) of the labelled {split.name} split are in one group "
                f"({groups[0]!r}), but brand-grouped cross-validation needs at least 2 groups; add videos "
                "of another brand."
            )
        )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
