"""Feature blocks: memo.store.Features -> one (N, F) float matrix for the tabular models (GBT ensemble,
ridge).

    builder = BlockBuilder(["metadata", "e5", "vit"], reduce="pca", components=16, seed=0).fit(X_train)
    F = builder.transform(X)         # (N, F) float32, NaN where a video lacks a stream
    builder.feature_names_           # ["metadata.absolute:log1p_duration", "e5.title:pca0", ...]
    builder.stream_widths_           # {"e5.title": 384, ...}: columns read per stream, for the manifest
    feature_words("cues:title_names_brand")  # ("cues:title_names_brand", "the title names the brand")

A vector stream (1, D) is taken as it is, a sequence (T, D) becomes mean, std, max, first and last
row (5 D); an unnamed stream wider than `components` is standardised and reduced by PCA (or
truncated SVD) fitted on the `fit` rows only; named streams (metadata, stats, ratings) stay whole.
A missing video is a NaN row (the tree libraries route NaN natively). A stream with no rows in the
`fit` data (VIDEM's organiser features exist for the test split only) is left out and said so in
`notes_`. When the store has no `metadata` stream, the split table's numeric columns stand in
(`table_metadata`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.store import Features
from memo.streams import ABSOLUTE_STREAM, matches, select

SEQUENCE_STATS = ("mean", "std", "max", "first", "last")

# numeric columns of memo.data's tables that may be features when the store has no `metadata`
# stream; counts are heavy-tailed, so they enter as log1p. Targets, n_annotations and the group
# are never in this list (a label weight and the brand are not features).
TABLE_METADATA = {
    "duration": "log",
    "views": "log",
    "likes": "log",
    "dislikes": "log",
    "favourites": "log",
    "comments": "log",
    "engagements": "log",
    "engagement_rate": "raw",
    "category_id": "raw",
}


# streams read as a whole in an explanation (their columns are dimensions of a model's output), in words
WHOLE_STREAMS = {
    "e5": "the wording of the {} (E5)",
    "rationale": "the {} rationale (E5)",
    "organiser": "the organisers' {} features",
    "vit": "the pictures (ViT)",
    "audio": "the sound (audio model)",
}
# streams whose columns have names, in words
NAMED_STREAMS = {
    "metadata.absolute": "metadata",
    "metadata.brand": "metadata relative to the brand",
    "stats": "video statistics",
    "ratings": "the LLM's 1-10 rating",
}


def feature_words(feature: str) -> tuple[str, str]:
    """(the name a reason goes under, the words for it) of an explanation's feature (memo.predictors).

    A named column keeps its own name ("cues:title_names_brand" -> "the title names the brand",
    "stats:duration_s" -> "duration_s (video statistics)", "text:webinar" -> "the word 'webinar'"); a
    column of an embedding or a sequence ("e5.title:17", "e5.title:pca3", "vit:mean:5") goes under its
    stream, whose columns are added up ("e5.title" -> "the wording of the title (E5)").
    """
    from memo.features.cues import cue_words
    from memo.predictors import BASE

    if feature == BASE:
        return BASE, "the model's base value (an average ad)"
    stream, _, column = feature.partition(":")
    if stream == "cues":
        return feature, cue_words(column)
    if stream == "text":
        return feature, f"the word {column!r} in the texts"
    if stream in NAMED_STREAMS:
        return feature, f"{column} ({NAMED_STREAMS[stream]})"
    head, _, sub = stream.partition(".")
    if head in WHOLE_STREAMS:
        return stream, WHOLE_STREAMS[head].format(sub)
    return feature, feature


def table_metadata(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(N, K) numeric metadata from the split table itself, for when the store has no `metadata` stream."""
    cols, names = [], []
    for c, how in TABLE_METADATA.items():
        if c in table:
            v = pd.to_numeric(table[c], errors="coerce").to_numpy(float)
            cols.append(np.log1p(np.clip(v, 0, None)) if how == "log" else v)
            names.append(f"log_{c}" if how == "log" else c)
    if not cols:
        return np.zeros((len(table), 0), np.float32), []
    return np.stack(cols, axis=1).astype(np.float32), names


def aggregate(values: np.ndarray, mask: np.ndarray, sequence: bool) -> np.ndarray:
    """(N, T, D) + (N, T) mask -> (N, D) for vectors or (N, 5 D) for sequences; NaN rows where missing."""
    present = mask.any(axis=1)  # (N,)
    if not sequence:
        first = np.argmax(mask, axis=1)
        out = values[np.arange(len(values)), first].astype(np.float64)  # (N, D)
        out[~present] = np.nan
        return out
    m = mask[..., None]  # (N, T, 1)
    n = np.maximum(m.sum(axis=1), 1)  # (N, 1)
    mean = (values * m).sum(axis=1) / n  # (N, D)
    var = (((values - mean[:, None]) ** 2) * m).sum(axis=1) / n
    mx = np.where(m, values, -np.inf).max(axis=1)
    rows = np.arange(len(values))
    first = values[rows, np.argmax(mask, axis=1)]
    last = values[rows, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)]
    out = np.concatenate([mean, np.sqrt(var), mx, first, last], axis=1).astype(np.float64)  # (N, 5 D)
    out[~present] = np.nan
    return out


class BlockBuilder:
    """Features -> (N, F) float matrix; everything it learns (means, PCA) comes from `fit`'s rows only."""

    def __init__(self, streams: list[str], reduce: str = "pca", components: int = 16, seed: int = 0):
        self.streams = streams  # selectors (memo.streams)
        self.reduce = reduce
        self.components = components
        self.seed = seed

    def fit(self, X: Features) -> BlockBuilder:
        self.parts_: list[dict[str, Any]] = []
        self.notes_: list[str] = []
        for name in sorted(select(self.streams, X.streams, strict=False)):
            part = self._fit_part(name, X)
            if part is None:
                self.notes_.append(
                    f"stream {name} has no rows in the training data (it may exist for the test split "
                    "only); left out."
                )
                continue
            self.parts_.append(part)
        if any(matches(ABSOLUTE_STREAM, b) for b in self.streams) and ABSOLUTE_STREAM not in X.streams:
            M, names = table_metadata(X.table)
            if names:
                self.parts_.append(
                    {
                        "stream": "<table metadata>",
                        "names": [f"{ABSOLUTE_STREAM}:{n}" for n in names],
                        "width": len(names),
                    }
                )
        for b in self.streams:
            if not any(
                matches(p["stream"], b) or (p["stream"] == "<table metadata>" and matches(ABSOLUTE_STREAM, b))
                for p in self.parts_
            ):
                self.notes_.append(f"stream {b}: none of these videos has it; skipped.")
        if not self.parts_:
            raise MemoError(
                f"none of the GBT streams {', '.join(self.streams)} has any feature for these videos; "
                "compute features first (`memo features`), or change [gbt] streams in memo.toml."
            )
        return self

    def _fit_part(self, name: str, X: Features) -> dict[str, Any] | None:
        """One stream's columns: its summary (sequences), names, and a reducer fitted on its present rows;
        None if it has none."""
        from sklearn.decomposition import PCA, TruncatedSVD

        s = X.streams[name]
        present = s.present
        if not present.any():
            return None
        sequence = s.values.shape[1] > 1
        A = aggregate(s.values, s.mask, sequence)  # (N, D) or (N, 5 D)
        base = s.names or [str(j) for j in range(s.dim)]
        names = (
            [f"{name}:{stat}:{c}" for stat in SEQUENCE_STATS for c in base]
            if sequence
            else [f"{name}:{c}" for c in base]
        )
        part: dict[str, Any] = {
            "stream": name,
            "sequence": sequence,
            "reducer": None,
            "mu": None,
            "sd": None,
            "width": A.shape[1],
        }
        rows = A[present]
        if s.names is None and self.reduce != "none" and A.shape[1] > self.components and len(rows) > 2:
            k = int(min(self.components, len(rows) - 1, A.shape[1]))
            if self.reduce == "pca":
                mu, sd = rows.mean(axis=0), rows.std(axis=0) + 1e-8
                part["mu"], part["sd"] = mu, sd
                part["reducer"] = PCA(n_components=k, random_state=self.seed).fit((rows - mu) / sd)
            else:  # truncated SVD works on raw (uncentred) rows, as for sparse or non-negative data
                part["reducer"] = TruncatedSVD(n_components=k, random_state=self.seed).fit(rows)
            names = [f"{name}:{self.reduce}{j}" for j in range(k)]
        part["names"] = names
        return part

    @property
    def stream_widths_(self) -> dict[str, int]:
        """stream -> columns read from it (before any reduction): what the manifest records."""
        return {
            (ABSOLUTE_STREAM if p["stream"] == "<table metadata>" else p["stream"]): int(p["width"])
            for p in self.parts_
        }

    @property
    def feature_names_(self) -> list[str]:
        return [n for p in self.parts_ for n in p["names"]]

    def transform(self, X: Features) -> np.ndarray:
        cols = []
        for part in self.parts_:
            if part["stream"] == "<table metadata>":
                M, names = table_metadata(X.table)
                got = dict(zip(names, M.T))
                cols.append(
                    np.stack(
                        [got.get(n.split(":", 1)[1], np.full(len(X), np.nan)) for n in part["names"]], axis=1
                    )
                )
                continue
            s = X.streams.get(part["stream"])
            if s is None:  # fitted on a stream this X lacks: all missing, which the trees handle
                cols.append(np.full((len(X), len(part["names"])), np.nan))
                continue
            A = aggregate(s.values, s.mask, part["sequence"])
            if part["reducer"] is not None:
                present = ~np.isnan(A).any(axis=1)
                Z = np.full((len(A), len(part["names"])), np.nan)
                if present.any():
                    rows = A[present]
                    if part["mu"] is not None:
                        rows = (rows - part["mu"]) / part["sd"]
                    Z[present] = part["reducer"].transform(rows)
                A = Z
            cols.append(A)
        return np.concatenate(cols, axis=1).astype(np.float32)  # (N, F)

    def fit_transform(self, X: Features) -> np.ndarray:
        return self.fit(X).transform(X)
