"""`load_features`: aligned streams for one split, read from the store for the current config.

    X = load_features(project, "dev", ["e5", "metadata", "organiser.ViT"])
    X.streams["e5.title"].values      # (N, 1, D), mask (N, 1)
    X.streams["metadata"].names       # ["log1p_duration", "log1p_views", ...]

Stream names: `vit` (T, D), `audio` (T, D), `e5.<field>` (1, D), `stats` (1, K) named,
`organiser.<Name>` as shipped, `rationale.<aspect>` (1, D), `ratings` (1, A) named, and
`metadata` (1, K) named, which is built from the split table, not the store. A prefix alone
(`e5`, `organiser`, `rationale`) means every stream under it; None means metadata and every
stream the store holds for the current config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.features.base import EXTRACTORS, text_hash
from memo.store import Features, Stream, stack_sequences

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.project import Project
    from memo.store import StoreTable

EXTRACTOR_STREAMS = ("vit", "audio", "e5", "stats", "organiser")  # stream prefix == extractor name
COUNT_COLUMNS = ("duration", "views", "likes", "dislikes", "favourites", "comments", "engagements")
NEVER_METADATA = ("group", "n_annotations", "n_annotations_long", "video_id")  # label weights and identities


# ----------------------------------------------------------------------------- metadata


def metadata_columns(dataset: "Dataset") -> list[str]:
    """Numeric metadata columns of any split (union, so every split gets the same K)."""
    cols: list[str] = []
    for s in dataset.splits.values():
        for c in s.numeric_columns:
            if c not in cols and c not in NEVER_METADATA and c not in s.target_columns:
                cols.append(c)
    return cols


def metadata_frame(dataset: "Dataset", split: "Split") -> pd.DataFrame:
    """(N, K) named metadata for a split: log1p of counts and duration, rates per view, imputation flags.

    NaN is imputed with the median of the labelled split (the training data; no targets are
    involved), and every column that is NaN anywhere gets a `missing_<col>` 0/1 flag, so a model
    can tell an imputed value from a real one. The brand, the id and the annotation count are
    never metadata.
    """
    cols = metadata_columns(dataset)

    def raw(s: "Split") -> pd.DataFrame:
        t = s.table
        return pd.DataFrame({c: pd.to_numeric(t[c], errors="coerce") if c in t else np.nan for c in cols}, index=t.index)

    def transform(r: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=r.index)
        for c in cols:
            v = r[c].astype(float)
            out[f"log1p_{c}" if c in COUNT_COLUMNS else c] = np.log1p(v.clip(lower=0)) if c in COUNT_COLUMNS else v
        if "views" in cols:  # audience reactions relative to reach: comparable across channel sizes
            for c in ("likes", "comments", "dislikes"):
                if c in cols:
                    out[f"{c}_per_view"] = r[c].astype(float) / (r["views"].astype(float) + 1.0)
        return out

    frames = {name: transform(raw(s)) for name, s in dataset.splits.items()}
    if not cols:
        return pd.DataFrame(index=split.table.index)
    medians = frames[dataset.train_split].median(numeric_only=True)
    gaps = sorted({c for f in frames.values() for c in f.columns if f[c].isna().any()}, key=list(frames[split.name].columns).index)
    f = frames[split.name]
    flags = pd.DataFrame({f"missing_{c}": f[c].isna().astype(float) for c in gaps}, index=f.index)
    filled = f.fillna(medians).fillna(0.0)  # a column that is NaN in all of the labelled split: 0, and flagged
    return pd.concat([filled, flags], axis=1)


def metadata_stream(dataset: "Dataset", split: "Split", ids: list[str]) -> Stream:
    """The `metadata` stream (N, 1, K); a video with no metadata at all has a False mask."""
    cols = metadata_columns(dataset)
    f = metadata_frame(dataset, split).loc[ids]
    values = f.to_numpy(np.float32)[:, None, :] if len(f.columns) else np.zeros((len(ids), 1, 0), np.float32)
    if cols:
        t = split.table.loc[ids]
        has_any = np.column_stack([pd.to_numeric(t[c], errors="coerce").notna() if c in t else np.zeros(len(ids), bool) for c in cols]).any(axis=1)
    else:
        has_any = np.zeros(len(ids), bool)
    return Stream(values, has_any[:, None], list(f.columns))


# ----------------------------------------------------------------------------- the catalogue


def catalog(project: "Project", prefixes: list[str]) -> dict[str, tuple["StoreTable", str, str]]:
    """stream name -> (store table for the current config, array name, command that fills it)."""
    from memo.features.text import ratings_table, rationale_source, text_table

    ds = project.dataset
    out: dict[str, tuple[StoreTable, str, str]] = {}
    for p in prefixes:
        if p in EXTRACTOR_STREAMS:
            ext = EXTRACTORS.get(p)(project)
            for name, (table, array) in ext.streams(ds).items():
                out[name] = (table, array, f"memo features --extractors {p}")
        elif p == "rationale":
            src = rationale_source(project)
            for a in project.config.rationale.aspects:
                out[f"rationale.{a}"] = (text_table(project, f"rationale.{a}", src), "embedding", "memo rationale")
        elif p == "ratings":
            out["ratings"] = (ratings_table(project), "values", "memo rationale")
    return out


def _has_data(split: "Split", stream: str) -> bool:
    """Whether the split has the input a stream is computed from (else its rows are masked, not an error)."""
    prefix, _, sub = stream.partition(".")
    if prefix == "e5":
        return sub in split.table.columns
    if prefix == "organiser":
        return bool(split.feature_files.get(sub))
    return True


def _expand(project: "Project", split: "Split", streams: list[str] | None) -> tuple[list[str], dict]:
    known = list(EXTRACTOR_STREAMS) + ["rationale", "ratings"]
    if streams is None:
        cat = catalog(project, known)
        names = [n for n, (t, _, _) in cat.items() if t.read_manifest()]
        return ["metadata"] + names, cat
    prefixes = []
    for s in streams:
        p = s.partition(".")[0]
        if p != "metadata" and p not in known:
            raise MemoError(f"unknown feature stream {s!r}; streams are metadata, {', '.join(known)} or PREFIX.NAME under e5, organiser, rationale.")
        if p != "metadata" and p not in prefixes:
            prefixes.append(p)
    cat = catalog(project, prefixes)
    names: list[str] = []
    for s in streams:
        if s == "metadata":
            hits = ["metadata"]
        elif "." in s:
            if s not in cat:
                under = sorted(n for n in cat if n.startswith(s.partition(".")[0] + "."))
                raise MemoError(f"unknown feature stream {s!r}; this dataset and config have: {', '.join(under) or 'none under that prefix'}.")
            hits = [s]
        else:
            hits = [n for n in cat if n == s or n.startswith(s + ".")]
            if not hits:
                raise MemoError(f"no {s} streams for this dataset (nothing to compute them from); drop {s!r} from the streams.")
        names += [h for h in hits if h not in names]
    for n in names:
        if n == "metadata":
            continue
        table, _, how = cat[n]
        if not table.read_manifest() and _has_data(split, n):
            raise MemoError(f"feature stream {n!r} is not in the store for the current config; run `{how}` first.")
    return names, cat


def load_features(project: "Project", split: str, streams: list[str] | None = None) -> "Features":
    """Features of a split's videos (table order): aligned Streams, missing videos masked."""
    ds = project.dataset
    if split not in ds.splits:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(ds.splits)}.")
    sp = ds.splits[split]
    ids = sp.ids
    names, cat = _expand(project, sp, streams)
    out: dict[str, Stream] = {}
    for n in names:
        if n == "metadata":
            out[n] = metadata_stream(ds, sp, ids)
            continue
        table, array, how = cat[n]
        manifest = table.read_manifest()
        dim = (manifest.get("dims") or {}).get(array)
        if dim is None:  # never run for this split's data: borrow the width from a sibling table
            dim = next(((t.read_manifest().get("dims") or {}).get(a) for m, (t, a, _) in cat.items() if m.partition(".")[0] == n.partition(".")[0] and t.read_manifest()), None)
            if dim is None:
                raise MemoError(f"feature stream {n!r} has never been computed, so its width is unknown; run `{how}` first.")
        out[n] = _read(table, array, ids, dim, sp if n.startswith("e5.") else None, n, how)
        out[n].names = manifest.get("names")
    return Features(ids=ids, groups=sp.table.loc[ids, "group"].astype(str).to_numpy(), table=sp.table.loc[ids], streams=out)


def _read(table: "StoreTable", array: str, ids: list[str], dim: int, split: "Split | None", stream: str, how: str) -> Stream:
    """Stack one array of a table for ids; for e5 fields, refuse texts that changed since they were embedded."""
    arrays, stale = [], 0
    field = stream.partition(".")[2]
    texts = split.table[field] if split is not None and field in split.table.columns else None
    for i in ids:
        got = table.get(i)
        if got is not None and texts is not None:
            t = texts.get(i)
            t = "" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t)
            if "text_hash" in got and not np.array_equal(got["text_hash"], text_hash(t)):
                stale += 1
        arrays.append(None if got is None or array not in got else got[array])
    if stale:
        raise MemoError(f"{stale} {field} texts changed since they were embedded; run `{how}` to update them.")
    return stack_sequences(arrays, dim)
