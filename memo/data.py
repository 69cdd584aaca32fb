"""Dataset readers: one per folder layout, one table per split, the same column roles everywhere.

    ds = read_dataset("../shared/data/videm")        # layout detected from the folder
    ds.splits["dev"].table                           # pandas DataFrame indexed by video id
    ds.train_split, ds.test_split                    # "dev", "test" for VIDEM

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
Everything else they find (a duplicate id, a NaN target, an empty title) is recorded in
`Dataset.problems`; `memo data check` reports them all and `Dataset.raise_problems()` stops a
command that cannot go on with them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from memo.errors import DataError
from memo.registry import Registry
from memo.store import SAFE_ID_RULE, is_safe_id

TEXT_FIELDS = ("title", "description", "tags", "transcript", "captions")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
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


def _media_paths(split_dir: Path, ids: list[str]) -> tuple[list[str | None], list[str | None]]:
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


def _feature_files(features_dir: Path, ids: set[str]) -> dict[str, dict[str, Path]]:
    """Organiser features: <split>/features/<Name>/<id>.npy, one file per video."""
    out: dict[str, dict[str, Path]] = {}
    if features_dir.is_dir():
        for d in sorted(p for p in features_dir.iterdir() if p.is_dir()):
            files = {p.stem: p for p in d.glob("*.npy") if p.stem in ids and is_safe_id(p.stem)}
            if files:
                out[d.name] = files
    return out


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


def _finish_split(split: Split, problems: list[Problem], source: Path) -> Split:
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


# ----------------------------------------------------------------------------- VIDEM

VIDEM_TARGETS = ["memorability_score", "brand_memorability"]
VIDEM_NUMERIC = {
    "durationSeconds": "duration",
    "viewsCount": "views",
    "likesCount": "likes",
    "dislikesCount": "dislikes",
    "favouritesCount": "favourites",
    "commentsCount": "comments",
    "engagementsCount": "engagements",
    "engagementRate": "engagement_rate",
    "categoryId": "category_id",
}
VIDEM_SPLITS = {  # split name -> (folder, candidate CSV names, transcript folder)
    "dev": (
        "devset",
        ["devset_videolist_GT.csv", "devset_videolist_.csv", "devset_videolist.csv"],
        "devset-stt",
    ),
    "test": (
        "testset",
        ["testset_videolist_.csv", "testset_videolist.csv", "testset_videolist_GT.csv"],
        "testset-stt",
    ),
}


def _is_videm(root: Path) -> bool:
    return (root / "devset").is_dir() or (root / "testset").is_dir()


def _read_transcripts(folder: Path, ids: list[str], problems: list[Problem]) -> list[str | None]:
    """<split>-stt/<id>.txt; None where a video has no transcript file (an empty file is "").

    An id that is not a plain name is never joined to the folder (it is a defect of its own); a
    file that is not UTF-8 is decoded as Windows-1252 (or Latin-1) and noted.
    """
    if not folder.is_dir():
        return [None] * len(ids)
    out, recoded = [], []
    for i in ids:
        p = folder / f"{i}.txt"
        if not is_safe_id(i) or not p.is_file():
            out.append(None)
            continue
        text, enc = read_text_file(p)
        if enc != "utf-8":
            recoded.append((i, enc))
        out.append(text.strip())
    if recoded:
        shown = ", ".join(f"{i} ({enc})" for i, enc in recoded[:5]) + (
            f" and {len(recoded) - 5} more" if len(recoded) > 5 else ""
        )
        problems.append(
            Problem(
                f"{folder}: {len(recoded)} transcript(s) are not UTF-8 and were decoded as named: {shown}; "
                "re-save them as UTF-8 if any text looks wrong.",
                error=False,
            )
        )
    return out


@LAYOUTS.register("videm")
def read_videm(root: Path, targets: list[str] | None = None) -> Dataset:
    """MediaEval 2025/26 Memorability subtask 2 (VIDEM), exactly as the organisers ship it."""
    problems: list[Problem] = []
    splits: dict[str, Split] = {}
    for name, (folder, csv_names, stt) in VIDEM_SPLITS.items():
        split_dir = root / folder
        if not split_dir.is_dir():
            continue
        csv_path = next((split_dir / n for n in csv_names if (split_dir / n).is_file()), None)
        if csv_path is None:
            raise DataError(
                f"{split_dir} has no video list (expected {csv_names[0]}); is the download complete?"
            )
        raw = read_csv(csv_path, dtype={"id": str, "channelName": str})
        require_columns(raw, ["id", "channelName", "title"], csv_path)
        ids = raw["id"].astype(str).tolist()
        table = pd.DataFrame(index=pd.Index(ids, name="id"))
        table["group"] = raw["channelName"].fillna("").astype(str).values
        for c in ("title", "description", "tags"):
            if c in raw:
                table[c] = raw[c].fillna("").astype(str).values
        transcripts = _read_transcripts(split_dir / stt, ids, problems)
        if any(t is not None for t in transcripts):
            table["transcript"] = transcripts
        numeric = []
        for src, dst in VIDEM_NUMERIC.items():
            if src in raw:
                table[dst] = pd.to_numeric(raw[src], errors="coerce").values
                numeric.append(dst)
        if "nb_annotations" in raw:  # how many people saw it: a label weight, never a feature
            table["n_annotations"] = pd.to_numeric(raw["nb_annotations"], errors="coerce").values
        target_cols = [c for c in (targets or VIDEM_TARGETS) if c in raw]
        for c in target_cols:
            table[c] = pd.to_numeric(raw[c], errors="coerce").values
        table["video_path"], table["frames_dir"] = _media_paths(split_dir, ids)
        text_cols = [c for c in TEXT_FIELDS if c in table]
        split = Split(
            name, table, text_cols, numeric, target_cols, _feature_files(split_dir / "features", set(ids))
        )
        splits[name] = _finish_split(split, problems, csv_path)
    if "dev" not in splits:
        raise DataError(
            f"{root} has no devset/ folder with labels; the VIDEM layout needs "
            "devset/devset_videolist_GT.csv."
        )
    _check_disjoint(splits, problems)
    return Dataset(
        root,
        "videm",
        splits,
        targets or VIDEM_TARGETS,
        "id",
        "dev",
        "test" if "test" in splits else None,
        problems,
    )


# ----------------------------------------------------------------------------- MediaEval 2021 (Memento10k,
# TRECVid-VTT)

ME21_SPLITS = {"train": ("training_set", "train"), "dev": ("dev_set", "dev"), "test": ("test_set", "test")}
ME21_TARGETS = ["scores_normalized_short_term", "scores_raw_short_term", "scores_raw_long_term"]


def _is_mediaeval2021(root: Path) -> bool:
    return any((root / folder).is_dir() for folder, _ in ME21_SPLITS.values())


def _read_captions(path: Path) -> dict[str, str]:
    """Captions in the wide (description_0..4) or long (one row per caption) format."""
    df = read_csv(path, dtype={"video_id": str})
    require_columns(df, ["video_id"], path)
    cols = [c for c in df.columns if c.startswith("description")]
    if not cols:
        raise DataError(f"{path} has no description column; expected description or description_0..4.")
    long = df.melt(id_vars="video_id", value_vars=cols).dropna(subset=["value"])
    long["value"] = long["value"].astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    long = long[long["value"] != ""]
    return long.groupby("video_id", sort=False)["value"].apply("\n".join).to_dict()


@LAYOUTS.register("mediaeval2021")
def read_mediaeval2021(root: Path, targets: list[str] | None = None) -> Dataset:
    """Memento10k and TRECVid-VTT as released for MediaEval 2021 (training_set/, dev_set/, test_set/)."""
    problems: list[Problem] = []
    splits: dict[str, Split] = {}
    all_targets: list[str] = []
    for name, (folder, prefix) in ME21_SPLITS.items():
        split_dir = root / folder
        if not split_dir.is_dir():
            continue
        scores_path = split_dir / f"{prefix}_scores.csv"
        captions_path = split_dir / f"{prefix}_text_descriptions.csv"
        if scores_path.is_file():
            scores = read_csv(scores_path, dtype={"video_id": str})
            require_columns(scores, ["video_id"], scores_path)
            ids = scores["video_id"].astype(str).tolist()
        elif captions_path.is_file():
            scores = None
            ids = list(
                dict.fromkeys(read_csv(captions_path, dtype={"video_id": str})["video_id"].astype(str))
            )
        else:
            raise DataError(
                f"{split_dir} has neither {scores_path.name} nor {captions_path.name}; is the download "
                "complete?"
            )
        table = pd.DataFrame(index=pd.Index(ids, name="id"))
        table["group"] = ids  # no brands: every video is its own group
        if captions_path.is_file():
            caps = _read_captions(captions_path)
            table["captions"] = [caps.get(i, "") for i in ids]
        target_cols = []
        if scores is not None:
            wanted = targets or ME21_TARGETS
            target_cols = [c for c in wanted if c in scores]
            for c in target_cols:
                table[c] = pd.to_numeric(scores[c], errors="coerce").values
            for c in ("annotations_short_term", "annotations_long_term"):
                if c in scores:
                    table["n_annotations" if c.endswith("short_term") else "n_annotations_long"] = (
                        pd.to_numeric(scores[c], errors="coerce").values
                    )
            if "video_url" in scores:
                table["url"] = scores["video_url"].values
        all_targets += [c for c in target_cols if c not in all_targets]
        table["video_path"], table["frames_dir"] = _media_paths(split_dir, ids)
        text_cols = [c for c in TEXT_FIELDS if c in table]
        split = Split(
            name, table, text_cols, [], target_cols, _feature_files(split_dir / "features", set(ids))
        )
        splits[name] = _finish_split(split, problems, scores_path if scores is not None else captions_path)
    labelled = [n for n in ("train", "dev") if n in splits and splits[n].labelled]
    if not labelled:
        raise DataError(
            f"{root} has no labelled split; the MediaEval 2021 layout needs training_set/train_scores.csv."
        )
    _check_disjoint(splits, problems)
    test = "test" if "test" in splits else None
    return Dataset(root, "mediaeval2021", splits, all_targets, "video_id", labelled[0], test, problems)


# ----------------------------------------------------------------------------- generic CSV

GENERIC_TARGETS = ["memorability_score", "brand_memorability", "memorability", "score"]
# every target (and label weight) memo knows of: in a CSV they are never features, selected or not
KNOWN_LABELS = {
    *VIDEM_TARGETS,
    *ME21_TARGETS,
    *GENERIC_TARGETS,
    "nb_annotations",
    "n_annotations",
    "n_annotations_long",
    "annotations_short_term",
    "annotations_long_term",
}


def _generic_csv(root: Path) -> Path | None:
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    if root.is_dir():
        csvs = sorted(root.glob("*.csv"))
        named = [p for p in csvs if p.name in ("memo_dataset.csv", "dataset.csv")]
        return (named or csvs or [None])[0] if len(named) == 1 or len(csvs) == 1 else None
    return None


@LAYOUTS.register("csv")
def read_generic_csv(root: Path, targets: list[str] | None = None) -> Dataset:
    """Any dataset as one CSV: `id`, text columns, optional `group`, targets, `split`, media paths.

    Rows whose `split` column says test (or, without that column, rows with no target) form the
    test split. Media paths are relative to the CSV's folder.
    """
    path = _generic_csv(root)
    if path is None:
        raise DataError(f"{root} holds no single CSV file; pass the CSV itself, or name it memo_dataset.csv.")
    raw = read_csv(path, dtype={"id": str, "group": str})
    id_col = "id" if "id" in raw else "video_id" if "video_id" in raw else None
    if id_col is None:
        raise DataError(f"{path} lacks an id column; add a column named id with one unique value per video.")
    target_cols = [c for c in (targets or GENERIC_TARGETS) if c in raw]
    if targets and len(target_cols) < len(targets):
        missing = sorted(set(targets) - set(target_cols))
        raise DataError(
            f"{path} lacks the target column(s) {', '.join(missing)}; fix [project] targets in memo.toml."
        )
    raw[id_col] = raw[id_col].astype(str)
    if "split" in raw:
        is_test = raw["split"].astype(str).str.lower().isin(["test", "testset", "test_set"])
    elif target_cols:
        is_test = raw[target_cols].isna().all(axis=1)
    else:
        is_test = pd.Series(False, index=raw.index)
    reserved = {
        id_col,
        "group",
        "split",
        "video_path",
        "frames_dir",
        *TEXT_FIELDS,
        *target_cols,
        *KNOWN_LABELS,
        *(targets or []),
    }
    numeric = [c for c in raw.columns if c not in reserved and pd.api.types.is_numeric_dtype(raw[c])]
    problems: list[Problem] = []
    splits: dict[str, Split] = {}
    for name, rows in (("dev", raw[~is_test]), ("test", raw[is_test])):
        if rows.empty:
            continue
        ids = rows[id_col].tolist()
        table = pd.DataFrame(index=pd.Index(ids, name="id"))
        table["group"] = rows["group"].fillna("").astype(str).values if "group" in rows else ids
        for c in TEXT_FIELDS:
            if c in rows:
                table[c] = rows[c].fillna("").astype(str).values
        for c in numeric:
            table[c] = pd.to_numeric(rows[c], errors="coerce").values
        tcols = target_cols if name == "dev" else []
        for c in tcols:
            table[c] = rows[c].values
        for c in ("video_path", "frames_dir"):
            table[c] = (
                [str((path.parent / v).resolve()) if isinstance(v, str) and v else None for v in rows[c]]
                if c in rows
                else None
            )
        text_cols = [c for c in TEXT_FIELDS if c in table]
        splits[name] = _finish_split(Split(name, table, text_cols, numeric, tcols), problems, path)
    if "dev" not in splits:
        raise DataError(f"{path} has no labelled rows; add a target column such as memorability_score.")
    _check_disjoint(splits, problems)
    return Dataset(
        path.parent, "csv", splits, target_cols, id_col, "dev", "test" if "test" in splits else None, problems
    )


# ----------------------------------------------------------------------------- entry points


def _check_disjoint(splits: dict[str, Split], problems: list[Problem]) -> None:
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


def detect_layout(path: Path) -> str:
    if path.is_file():
        return "csv"
    if _is_videm(path):
        return "videm"
    if _is_mediaeval2021(path):
        return "mediaeval2021"
    if _generic_csv(path) is not None:
        return "csv"
    raise DataError(
        f"cannot tell the layout of {path}: expected devset/ and testset/ (videm), training_set/ "
        "(mediaeval2021) "
        "or one CSV (csv); pass --layout to choose."
    )


def read_dataset(
    path: str | Path,
    layout: str | None = None,
    targets: list[str] | None = None,
    groups: dict[str, str] | None = None,
) -> Dataset:
    """Read a dataset folder; `layout` is one of LAYOUTS (videm, mediaeval2021, csv) or detected; videos are
    grouped by parent brand, with `groups` ({channel: parent}, `[project] groups`) over the rule."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(
            f"dataset path {root} does not exist; pass the organisers' data folder (or run `memo "
            "demo-data PATH`)."
        )
    reader = LAYOUTS.get(layout or detect_layout(root))
    return with_parent_groups(reader(root, targets=targets), groups)


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
    return ds


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
