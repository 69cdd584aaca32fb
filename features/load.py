"""`load_features`: aligned streams for one split, read from the store for the current config.

    X = load_features(project, "dev", ["e5", "metadata", "organiser.ViT"])
    X.streams["e5.title"].values      # (N, 1, D), mask (N, 1)
    X.streams["metadata.absolute"].names       # ["log1p_duration", "log1p_views", ...]

Stream names: `vit` (T, D), `audio` (T, D), `e5.<field>` (1, D), `stats` (1, K) named,
`organiser.<Name>` as shipped, `rationale.<aspect>` (1, D), `ratings` (1, A) named, and three
built from the split table, not the store: `metadata.absolute` (1, K) named, `metadata.brand`
(1, 2 K) named (the same values relative to the video's brand; only where brands have several
videos) and `cues` (1, C) named (the ad's format, read from its texts: memo.features.cues).
Selectors follow memo.streams: a prefix alone (`e5`, `metadata`) means every stream under it;
None means the table streams and every stream the store holds for the current config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.features.base import EXTRACTORS, text_hash
from memo.features.run import MEDIA_INPUTS, media_coverage
from memo.store import Features, Stream, stack_sequences
from memo.streams import BRAND_STREAM, CUES_STREAM, TABLE_STREAMS, canonical, matches, select

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.project import Project
    from memo.store import StoreTable

EXTRACTOR_STREAMS = ("vit", "audio", "e5", "stats", "organiser")  # stream prefix == extractor name
COUNT_COLUMNS = ("duration", "views", "likes", "dislikes", "favourites", "comments", "engagements")
NEVER_METADATA = ("group", "n_annotations", "n_annotations_long", "video_id")  # label weights and identities


# ----------------------------------------------------------------------------- metadata


def metadata_columns(dataset: Dataset) -> list[str]:
    """Numeric metadata columns of any split (union, so every split gets the same K)."""
    cols: list[str] = []
    for s in dataset.splits.values():
        for c in s.numeric_columns:
            if c not in cols and c not in NEVER_METADATA and c not in s.target_columns:
                cols.append(c)
    return cols


TEXT_LENGTH_FIELDS = ("title", "description", "tags", "transcript", "captions")


def metadata_frame(dataset: Dataset, split: Split) -> pd.DataFrame:
    """(N, K) named metadata for a split: log1p of counts and duration, rates per view, text lengths, flags.

    Text lengths are log1p characters of each text field the dataset has (tags: log1p of the tag
    count), 0 for an empty field. NaN becomes 0 plus a `missing_<col>` 0/1 flag for every column
    that is NaN anywhere: a constant, not a statistic of some rows, so nothing learned from other
    videos (a held-out fold included) enters a video's features. The brand, the id and the
    annotation count are never metadata.
    """
    cols = metadata_columns(dataset)
    texts = [c for c in TEXT_LENGTH_FIELDS if any(c in s.table.columns for s in dataset.splits.values())]

    def raw(s: Split) -> pd.DataFrame:
        t = s.table
        return pd.DataFrame(
            {c: pd.to_numeric(t[c], errors="coerce") if c in t else np.nan for c in cols}, index=t.index
        )

    def transform(s: Split) -> pd.DataFrame:
        r = raw(s)
        out = pd.DataFrame(index=r.index)
        for c in cols:
            v = r[c].astype(float)
            out[f"log1p_{c}" if c in COUNT_COLUMNS else c] = (
                np.log1p(v.clip(lower=0)) if c in COUNT_COLUMNS else v
            )
        if "views" in cols:  # audience reactions relative to reach: comparable across channel sizes
            for c in ("likes", "comments", "dislikes"):
                if c in cols:
                    out[f"{c}_per_view"] = r[c].astype(float) / (r["views"].astype(float) + 1.0)
        for c in texts:  # how much the uploader wrote: a property of the video, not of its audience
            t = s.table[c] if c in s.table else pd.Series("", index=r.index)
            t = t.where(t.map(lambda v: isinstance(v, str)), "")
            out[f"log1p_len_{c}"] = np.log1p(
                t.map(lambda v: len(v.split(",")) if c == "tags" and v.strip() else len(v.strip())).astype(
                    float
                )
            )
        return out

    frames = {name: transform(s) for name, s in dataset.splits.items()}
    if not cols and not texts:
        return pd.DataFrame(index=split.table.index)
    gaps = sorted(
        {c for f in frames.values() for c in f.columns if f[c].isna().any()},
        key=list(frames[split.name].columns).index,
    )
    f = frames[split.name]
    flags = pd.DataFrame({f"missing_{c}": f[c].isna().astype(float) for c in gaps}, index=f.index)
    return pd.concat([f.fillna(0.0), flags], axis=1)


def brand_frame(dataset: Dataset, split: Split) -> pd.DataFrame:
    """(N, 2 K) metadata relative to the video's own brand: `dev_<col>` (value minus the brand's mean)
    and `pct_<col>` (mid-rank percentile within the brand, 0.5 for a brand of one).

    Views, likes and duration mostly tell brands apart, and a model trained on brand levels ranks
    unseen brands at random; within a brand they say which ad did better than its siblings.
    Computed from features only (no target) over the brand's videos in the same split, so it is
    as available at test time (a new brand's videos all come in the test list) as in CV (a brand
    is never split across folds). Missing values sit at the brand mean (dev 0, pct 0.5);
    category_id and the missing flags are left out (a brand's category is a brand level).
    """
    f = metadata_frame(dataset, split)
    cols = [c for c in f.columns if not c.startswith("missing_") and c != "category_id"]
    r = f[cols].copy()
    for c in cols:  # the raw NaN, not the constant fill, so a gap does not pull its brand's mean
        if f"missing_{c}" in f:
            r.loc[f[f"missing_{c}"] == 1.0, c] = np.nan
    g = split.table.loc[r.index, "group"].astype(str)
    dev = (r - r.groupby(g).transform("mean")).fillna(0.0).add_prefix("dev_")
    pct = r.groupby(g).rank(pct=False, method="average")
    n = r.notna().groupby(g).transform("sum")
    pct = ((pct - 0.5) / n.where(n > 0)).where(n > 1, 0.5).fillna(0.5).add_prefix("pct_")
    return pd.concat([dev, pct], axis=1)


def metadata_stream(dataset: Dataset, split: Split, ids: list[str], brand: bool = False) -> Stream:
    """The `metadata` stream (N, 1, K), or with brand=True `metadata.brand` (N, 1, 2 K'); a video
    with no metadata at all has a False mask."""
    cols = metadata_columns(dataset)
    f = (brand_frame if brand else metadata_frame)(dataset, split).loc[ids]
    values = f.to_numpy(np.float32)[:, None, :] if len(f.columns) else np.zeros((len(ids), 1, 0), np.float32)
    t = split.table.loc[ids]
    texts = [c for c in TEXT_LENGTH_FIELDS if c in t.columns]
    if cols or texts:
        has = [
            pd.to_numeric(t[c], errors="coerce").notna() if c in t else np.zeros(len(ids), bool) for c in cols
        ]
        has += [t[c].map(lambda v: isinstance(v, str) and bool(v.strip())) for c in texts]
        has_any = np.column_stack(has).any(axis=1)
    else:
        has_any = np.zeros(len(ids), bool)
    return Stream(values, has_any[:, None], list(f.columns))


# ----------------------------------------------------------------------------- the catalogue


def catalog(project: Project, prefixes: list[str]) -> dict[str, tuple[StoreTable, str, str]]:
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
                out[f"rationale.{a}"] = (
                    text_table(project, f"rationale.{a}", src),
                    "embedding",
                    "memo rationale",
                )
        elif p == "ratings":
            out["ratings"] = (ratings_table(project), "values", "memo rationale")
    return out


def input_coverage(split: Split, stream: str) -> float:
    """Fraction of a split's videos that have the input `stream` is computed from."""
    t = split.table
    n = max(len(t), 1)
    prefix, _, sub = stream.partition(".")
    if stream in TABLE_STREAMS:
        if stream == CUES_STREAM:
            from memo.features.cues import has_cues

            return float(has_cues(t).sum()) / n
        cols = [c for c in split.numeric_columns if c in t]
        if not cols:
            return 0.0
        return float(t[cols].apply(pd.to_numeric, errors="coerce").notna().any(axis=1).sum()) / n
    if prefix in MEDIA_INPUTS:
        return media_coverage(split, prefix)
    if prefix == "e5":
        if sub not in t:
            return 0.0
        return float(t[sub].fillna("").astype(str).str.strip().ne("").sum()) / n
    if prefix == "organiser":
        return len(split.feature_files.get(sub, {})) / n
    if prefix in ("rationale", "ratings"):
        return 1.0  # written by the LLM from whatever the video has
    return 0.0


def table_streams(dataset: Dataset) -> list[str]:
    """The table streams this dataset can give: metadata.brand only where brands have several videos."""
    labelled = dataset.labelled().table
    brands = labelled["group"].nunique() < len(labelled)
    return [s for s in TABLE_STREAMS if s != BRAND_STREAM or brands]


def _expand(project: Project, split: Split, streams: list[str] | None) -> tuple[list[str], dict]:
    """Selectors (memo.streams) -> concrete stream names, and the store catalogue behind them."""
    known = list(EXTRACTOR_STREAMS) + ["rationale", "ratings"]
    table = table_streams(project.dataset)
    if streams is None:
        cat = catalog(project, known)
        return table + [n for n, (t, _, _) in cat.items() if t.read_manifest()], cat
    prefixes = []
    for s in streams:
        p = canonical(s).partition(".")[0]
        if p not in known and not any(matches(t, s) for t in TABLE_STREAMS):
            raise MemoError(
                f"unknown feature stream {s!r}; streams are {', '.join(TABLE_STREAMS)}, "
                f"{', '.join(known)} or PREFIX.NAME under e5, organiser, rationale."
            )
        if p in known and p not in prefixes:
            prefixes.append(p)
    cat = catalog(project, prefixes)
    names = select(streams, table + list(cat))
    for n in names:
        if n in TABLE_STREAMS:
            continue
        t, _, how = cat[n]
        if not t.read_manifest() and input_coverage(split, n) > 0:
            raise MemoError(
                f"feature stream {n!r} is not in the store for the current config; run `{how}` first."
            )
    return names, cat


def table_stream(dataset: Dataset, split: Split, ids: list[str], name: str) -> Stream:
    """One of TABLE_STREAMS for ids, computed from the split table."""
    if name == CUES_STREAM:
        from memo.features.cues import cue_stream

        return cue_stream(split.table.loc[ids])
    return metadata_stream(dataset, split, ids, brand=name == BRAND_STREAM)


def load_features(project: Project, split: str, streams: list[str] | None = None) -> Features:
    """Features of a split's videos (table order): aligned Streams, missing videos masked."""
    ds = project.dataset
    if split not in ds.splits:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(ds.splits)}.")
    sp = ds.splits[split]
    ids = sp.ids
    names, cat = _expand(project, sp, streams)
    out: dict[str, Stream] = {}
    for n in names:
        if n in TABLE_STREAMS:
            out[n] = table_stream(ds, sp, ids, n)
            continue
        table, array, how = cat[n]
        manifest = table.read_manifest()
        dim = (manifest.get("dims") or {}).get(array)
        if dim is None:  # never run for this split's data: borrow the width from a sibling table
            dim = next(
                (
                    (t.read_manifest().get("dims") or {}).get(a)
                    for m, (t, a, _) in cat.items()
                    if m.partition(".")[0] == n.partition(".")[0] and t.read_manifest()
                ),
                None,
            )
            if dim is None:
                raise MemoError(
                    f"feature stream {n!r} has never been computed, so its width is unknown; run "
                    f"`{how}` first."
                )
        out[n] = _read(table, array, ids, dim, sp if n.startswith("e5.") else None, n, how)
        out[n].names = manifest.get("names")
    return Features(
        ids=ids,
        groups=sp.table.loc[ids, "group"].astype(str).to_numpy(),
        table=sp.table.loc[ids],
        streams=out,
    )


def _read(
    table: StoreTable, array: str, ids: list[str], dim: int, split: Split | None, stream: str, how: str
) -> Stream:
    """Stack one array of a table for ids; for e5 fields, refuse texts that changed since they were
    embedded."""
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
        raise MemoError(
            f"{stale} {field} texts changed since they were embedded; run `{how}` to update them."
        )
    return stack_sequences(arrays, dim)


def load_available(project, split: str, streams: list[str]) -> tuple[Features, list[str]]:
    """Features of `split` for the streams the store has; a stream it lacks is left out with a note.

    The GBT ensemble lists every block it could use; VIDEM's public dev split, for example, has
    only texts and metadata, so asking for `vit` there must not stop the run.
    """
    try:
        return load_features(project, split, list(streams)), []
    except MemoError:
        pass
    notes: list[str] = []
    merged: Features | None = None
    for s in streams:
        try:
            X = load_features(project, split, [s])
        except MemoError as e:
            notes.append(f"stream {s} left out: {e}")
            continue
        if merged is None:
            merged = X
        else:
            merged.streams.update(X.streams)
    if merged is None:  # nothing at all: the table alone (text baselines need no stream)
        merged = load_features(project, split, [])
    return merged, notes
