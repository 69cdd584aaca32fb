"""The MediaEval 2021 layout: Memento10k and TRECVid-VTT as released for that task.

    training_set/train_scores.csv               video_id, scores_* targets, annotation counts
    training_set/train_text_descriptions.csv    captions, wide (description_0..4) or long
    dev_set/, test_set/                         the same files with dev_ / test_ prefixes

`read_mediaeval2021` reads it into memo.data's tables (no brands: every video is its own group); it
is registered as layout "mediaeval2021" and recognised by a training_set/, dev_set/ or test_set/ folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memo.data import (
    TEXT_FIELDS,
    Dataset,
    Problem,
    Split,
    check_disjoint,
    find_feature_files,
    finish_split,
    media_paths,
    read_csv,
    register_layout,
    require_columns,
    to_numbers,
)
from memo.errors import DataError

ME21_SPLITS = {"train": ("training_set", "train"), "dev": ("dev_set", "dev"), "test": ("test_set", "test")}
ME21_TARGETS = ["scores_normalized_short_term", "scores_raw_short_term", "scores_raw_long_term"]


def is_mediaeval2021(root: Path) -> bool:
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


def _add_scores(
    table: pd.DataFrame, scores: pd.DataFrame, path: Path, targets: list[str] | None, problems: list[Problem]
) -> list[str]:
    """The targets, annotation counts and URLs of a scores CSV into `table`; returns the target columns."""
    ids = list(table.index)
    target_cols = [c for c in (targets or ME21_TARGETS) if c in scores]
    for c in target_cols:
        table[c] = to_numbers(scores[c], ids, path, c, problems, target=True)
    for c in ("annotations_short_term", "annotations_long_term"):
        if c in scores:
            table["n_annotations" if c.endswith("short_term") else "n_annotations_long"] = to_numbers(
                scores[c], ids, path, c, problems
            )
    if "video_url" in scores:
        table["url"] = scores["video_url"].values
    return target_cols


def _read_split(
    name: str, split_dir: Path, prefix: str, targets: list[str] | None, problems: list[Problem]
) -> tuple[Split, Path]:
    """One split folder as a Split, and the CSV it was read from (the scores, else the captions)."""
    scores_path = split_dir / f"{prefix}_scores.csv"
    captions_path = split_dir / f"{prefix}_text_descriptions.csv"
    if scores_path.is_file():
        scores = read_csv(scores_path, dtype={"video_id": str})
        require_columns(scores, ["video_id"], scores_path)
        ids = scores["video_id"].astype(str).tolist()
    elif captions_path.is_file():
        scores = None
        ids = list(dict.fromkeys(read_csv(captions_path, dtype={"video_id": str})["video_id"].astype(str)))
    else:
        raise DataError(
            f"{split_dir} has neither {scores_path.name} nor {captions_path.name}; is the download complete?"
        )
    table = pd.DataFrame(index=pd.Index(ids, name="id"))
    table["group"] = ids  # no brands: every video is its own group
    if captions_path.is_file():
        caps = _read_captions(captions_path)
        table["captions"] = [caps.get(i, "") for i in ids]
    target_cols = _add_scores(table, scores, scores_path, targets, problems) if scores is not None else []
    table["video_path"], table["frames_dir"] = media_paths(split_dir, ids)
    text_cols = [c for c in TEXT_FIELDS if c in table]
    features = find_feature_files(split_dir / "features", set(ids))
    split = Split(name, table, text_cols, [], target_cols, features)
    return split, scores_path if scores is not None else captions_path


@register_layout("mediaeval2021", detect=is_mediaeval2021, expects="training_set/", rank=20)
def read_mediaeval2021(root: Path, targets: list[str] | None = None) -> Dataset:
    """Memento10k and TRECVid-VTT as released for MediaEval 2021 (training_set/, dev_set/, test_set/)."""
    problems: list[Problem] = []
    splits: dict[str, Split] = {}
    all_targets: list[str] = []
    for name, (folder, prefix) in ME21_SPLITS.items():
        split_dir = root / folder
        if not split_dir.is_dir():
            continue
        split, source = _read_split(name, split_dir, prefix, targets, problems)
        all_targets += [c for c in split.target_columns if c not in all_targets]
        splits[name] = finish_split(split, problems, source)
    labelled = [n for n in ("train", "dev") if n in splits and splits[n].labelled]
    if not labelled:
        raise DataError(
            f"{root} has no labelled split; the MediaEval 2021 layout needs training_set/train_scores.csv."
        )
    check_disjoint(splits, problems)
    test = "test" if "test" in splits else None
    return Dataset(root, "mediaeval2021", splits, all_targets, "video_id", labelled[0], test, problems)
