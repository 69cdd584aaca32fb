"""The VIDEM layout (MediaEval 2025/26 Memorability subtask 2) exactly as the organisers ship it.

    devset/devset_videolist_GT.csv      one row per video, `channelName` the brand, targets
    testset/testset_videolist_.csv      the same columns without the targets
    <split>/<split>-stt/<id>.txt        speech-to-text transcripts
    <split>/features/<Name>/<id>.npy    organiser features

`read_videm` reads it into memo.data's tables; it is registered as layout "videm" and recognised by
a devset/ or testset/ folder.
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
    read_text_file,
    register_layout,
    require_columns,
    to_numbers,
)
from memo.errors import DataError
from memo.store import is_safe_id

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


def is_videm(root: Path) -> bool:
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


def _read_split(
    name: str, split_dir: Path, targets: list[str] | None, problems: list[Problem]
) -> tuple[Split, Path]:
    """One split folder (devset/ or testset/) as a Split, and the CSV it was read from."""
    _, csv_names, stt = VIDEM_SPLITS[name]
    csv_path = next((split_dir / n for n in csv_names if (split_dir / n).is_file()), None)
    if csv_path is None:
        raise DataError(f"{split_dir} has no video list (expected {csv_names[0]}); is the download complete?")
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
            table[dst] = to_numbers(raw[src], ids, csv_path, src, problems)
            numeric.append(dst)
    if "nb_annotations" in raw:  # how many people saw it: a label weight, never a feature
        table["n_annotations"] = to_numbers(raw["nb_annotations"], ids, csv_path, "nb_annotations", problems)
    target_cols = [c for c in (targets or VIDEM_TARGETS) if c in raw]
    for c in target_cols:
        table[c] = to_numbers(raw[c], ids, csv_path, c, problems, target=True)
    table["video_path"], table["frames_dir"] = media_paths(split_dir, ids)
    text_cols = [c for c in TEXT_FIELDS if c in table]
    features = find_feature_files(split_dir / "features", set(ids))
    return Split(name, table, text_cols, numeric, target_cols, features), csv_path


@register_layout("videm", detect=is_videm, expects="devset/ and testset/", rank=10)
def read_videm(root: Path, targets: list[str] | None = None) -> Dataset:
    """MediaEval 2025/26 Memorability subtask 2 (VIDEM), exactly as the organisers ship it."""
    problems: list[Problem] = []
    splits: dict[str, Split] = {}
    for name, (folder, _, _) in VIDEM_SPLITS.items():
        split_dir = root / folder
        if not split_dir.is_dir():
            continue
        split, csv_path = _read_split(name, split_dir, targets, problems)
        splits[name] = finish_split(split, problems, csv_path)
    if "dev" not in splits:
        raise DataError(
            f"{root} has no devset/ folder with labels; the VIDEM layout needs "
            "devset/devset_videolist_GT.csv."
        )
    check_disjoint(splits, problems)
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
