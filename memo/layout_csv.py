"""The generic CSV layout: any dataset as one CSV file.

    id, title, description, ..., group, memorability_score, split, video_path, frames_dir

`read_generic_csv` reads it into memo.data's tables; it is registered as layout "csv" and recognised
by a path to a CSV file, or a folder holding one CSV (or one named memo_dataset.csv / dataset.csv).
It is asked last: the other layouts are recognised by their folders.
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
    finish_split,
    note_text_cells,
    read_csv,
    register_layout,
)
from memo.errors import DataError
from memo.layout_mediaeval2021 import ME21_TARGETS
from memo.layout_videm import VIDEM_TARGETS

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
MEDIA_COLUMNS = ("video_path", "frames_dir")


def _generic_csv(root: Path) -> Path | None:
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    if root.is_dir():
        csvs = sorted(root.glob("*.csv"))
        named = [p for p in csvs if p.name in ("memo_dataset.csv", "dataset.csv")]
        return (named or csvs or [None])[0] if len(named) == 1 or len(csvs) == 1 else None
    return None


def is_generic_csv(root: Path) -> bool:
    """Any file (the reader says when it is not a CSV), or a folder with one CSV to read."""
    return root.is_file() or _generic_csv(root) is not None


def _test_rows(raw: pd.DataFrame, target_cols: list[str]) -> pd.Series:
    """Rows whose `split` says test or, without that column, rows with no target."""
    if "split" in raw:
        return raw["split"].astype(str).str.lower().isin(["test", "testset", "test_set"])
    if target_cols:
        return raw[target_cols].isna().all(axis=1)
    return pd.Series(False, index=raw.index)


def _note_text(
    rows: pd.DataFrame, columns: list[str], id_col: str, path: Path, problems: list[Problem], target: bool
) -> None:
    """Note text cells in target columns (that label is lost; the table keeps the cell as it is), and in
    other columns of mostly numbers (read as text, so no numeric feature)."""
    ids = rows[id_col].tolist()
    for c in columns:
        values = rows[c]
        numbers = pd.to_numeric(values, errors="coerce")
        if target:
            note_text_cells(values, numbers, ids, path, c, problems, target=True)
            continue
        filled = values.notna() & values.astype(str).str.strip().ne("")
        if filled.any() and numbers[filled].notna().mean() > 0.5:
            consequence = "the column is read as text and is not used as a numeric feature"
            note_text_cells(values, numbers, ids, path, c, problems, target=False, consequence=consequence)


def _split_table(
    name: str, rows: pd.DataFrame, id_col: str, numeric: list[str], target_cols: list[str], path: Path
) -> Split:
    """One split's rows as a Split (targets only in the labelled split; media paths relative to the CSV)."""
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
    for c in MEDIA_COLUMNS:
        table[c] = (
            [str((path.parent / v).resolve()) if isinstance(v, str) and v else None for v in rows[c]]
            if c in rows
            else None
        )
    text_cols = [c for c in TEXT_FIELDS if c in table]
    return Split(name, table, text_cols, numeric, tcols)


@register_layout("csv", detect=is_generic_csv, expects="one CSV", rank=90)
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
    is_test = _test_rows(raw, target_cols)
    reserved = {id_col, "group", "split", *MEDIA_COLUMNS, *TEXT_FIELDS, *target_cols, *KNOWN_LABELS}
    reserved |= set(targets or [])
    numeric = [c for c in raw.columns if c not in reserved and pd.api.types.is_numeric_dtype(raw[c])]
    problems: list[Problem] = []
    others = [c for c in raw.columns if c not in reserved and c not in numeric]
    _note_text(raw, others, id_col, path, problems, target=False)
    splits: dict[str, Split] = {}
    for name, rows in (("dev", raw[~is_test]), ("test", raw[is_test])):
        if rows.empty:
            continue
        if name == "dev":
            _note_text(rows, target_cols, id_col, path, problems, target=True)
        splits[name] = finish_split(
            _split_table(name, rows, id_col, numeric, target_cols, path), problems, path
        )
    if "dev" not in splits:
        raise DataError(f"{path} has no labelled rows; add a target column such as memorability_score.")
    check_disjoint(splits, problems)
    return Dataset(
        path.parent, "csv", splits, target_cols, id_col, "dev", "test" if "test" in splits else None, problems
    )
