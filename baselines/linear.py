"""`ridge`: a linear model on a few streams, built for a few hundred labelled videos.

    model = RidgeRanker(streams=["cues"]).fit(X, y)       # X: memo.store.Features, y: ids x targets
    model.predict(X)                                        # ids x targets, in [0, 1]
    model.alpha_                                            # {target: penalty chosen on inner folds}

Why it exists: on VIDEM (250 labelled ads of 25 brands) a model is judged on brands it has never
seen, and everything flexible (trees, kernels, wide embeddings) learns the training brands. A
ridge on the standardised streams, with its penalty chosen for each target on inner brand-grouped
folds (one SVD gives every penalty at once), is what held up on repeated grouped CV
(docs/evaluation.md). Two options for hit-rate targets of 10-30 viewers, off by default (on VIDEM
they did not help: benchmarks/explore_videm.py):
- `rank_targets`: fit the targets' percentile ranks (Spearman is what counts; an outlying hit
  rate of a video seen by 12 people should not pull the line); predictions are mapped back onto
  the training targets' quantiles, so they stay on the memorability scale;
- `weight_by_annotations`: videos seen by more viewers weigh more (their hit rate is less noisy),
  when the split table has `n_annotations`.
The streams become one matrix through memo.baselines.blocks.BlockBuilder (no reduction): sequences are
summarised, missing values take the training mean plus a 0/1 flag, columns are standardised on the
training rows only.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits

from memo.baselines.blocks import BlockBuilder
from memo.errors import MemoError
from memo.metrics import spearman
from memo.baselines.simple import _Simple
from memo.predictors import PREDICTORS
from memo.splits import grouped_kfold
from memo.store import Features

ALPHAS = tuple(float(a) for a in np.logspace(0, 4, 9))  # 1 .. 10,000 on standardised columns


def ridge_path(Z: np.ndarray, y: np.ndarray, alphas, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ridge for every penalty from one SVD: coefficients (A, F) and intercepts (A,)."""
    w = np.ones(len(y)) if w is None else w / w.mean()
    zm, ym = np.average(Z, axis=0, weights=w), np.average(y, weights=w)
    s_w = np.sqrt(w)[:, None]
    with threadpool_limits(1):  # a few hundred rows: BLAS threads only fight other processes (50x slower on a busy machine)
        U, s, Vt = np.linalg.svd((Z - zm) * s_w, full_matrices=False)  # (N, r), (r,), (r, F)
    uy = U.T @ ((y - ym) * s_w[:, 0])  # (r,)
    coefs = np.stack([Vt.T @ (s / (s**2 + a) * uy) for a in alphas])  # (A, F)
    return coefs, ym - coefs @ zm


@PREDICTORS.register("ridge")
class RidgeRanker(_Simple):  # describe, save and load (no pickle) as the simple baselines
    """Standardised streams -> ridge per target, penalty chosen on inner brand-grouped folds."""

    name = "ridge"

    def __init__(self, streams: list[str] | tuple[str, ...] = ("cues",), alphas: list[float] | tuple[float, ...] = ALPHAS,
                 inner_folds: int = 3, rank_targets: bool = False, weight_by_annotations: bool = False, random_state: int = 0):  # fmt: skip
        self.streams = streams  # selectors (memo.streams); a run sets them to its own streams
        self.alphas = alphas
        self.inner_folds = inner_folds
        self.rank_targets = rank_targets
        self.weight_by_annotations = weight_by_annotations
        self.random_state = random_state

    @classmethod
    def from_config(cls, config, **overrides: Any) -> "RidgeRanker":
        overrides.pop("device", None)  # nothing to put on a device
        return cls(**{"inner_folds": config.gbt.inner_folds, "random_state": config.project.seed, **overrides})

    def _weights(self, X: Features) -> np.ndarray | None:
        if not self.weight_by_annotations or "n_annotations" not in X.table:
            return None
        w = pd.to_numeric(X.table.loc[list(X.ids), "n_annotations"], errors="coerce").to_numpy(float)
        return np.where(np.isfinite(w) & (w > 0), w, np.nanmedian(w) if np.isfinite(w).any() else 1.0)

    def fit(self, X: Features, y: pd.DataFrame) -> "RidgeRanker":
        y = y.loc[list(X.ids)]
        self.targets_ = list(y.columns)
        self.builder_ = BlockBuilder(list(self.streams), "none", 0, int(self.random_state)).fit(X)
        self.notes_ = list(self.builder_.notes_)
        self.stream_widths_ = self.builder_.stream_widths_
        F = self.builder_.transform(X)  # (N, F) with NaN where a video lacks a stream
        with warnings.catch_warnings():  # a column no training video has: mean 0, scale 1
            warnings.simplefilter("ignore", RuntimeWarning)
            mu, sd = np.nanmean(F, axis=0), np.nanstd(F, axis=0)
        self.mu_, self.sd_ = np.nan_to_num(mu), np.where(np.isfinite(sd) & (sd > 1e-9), sd, 1.0)
        Z = self._standardise(F)
        w = self._weights(X)
        k = min(self.inner_folds, len(np.unique(X.groups)))
        if k < 2:
            raise MemoError(f"the ridge chooses its penalty on grouped inner folds and needs at least 2 brands; these videos have {len(np.unique(X.groups))}.")
        inner = grouped_kfold(X.groups, n_splits=k, seed=int(self.random_state) + 1)
        self.alpha_, self.coef_, self.intercept_, self.quantiles_ = {}, {}, {}, {}
        for t in self.targets_:
            yt = y[t].to_numpy(float)
            ok = np.isfinite(yt)
            fit_y = self._fit_target(yt[ok])
            oof = np.full((len(self.alphas), len(yt)), np.nan)
            for tr, va in inner:
                tr = tr[ok[tr]]
                c, b = ridge_path(Z[tr], self._fit_target(yt[tr]), self.alphas, None if w is None else w[tr])
                oof[:, va] = c @ Z[va].T + b[:, None]
            scores = [spearman(yt[ok], o[ok]) for o in oof]
            best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else len(self.alphas) - 1
            c, b = ridge_path(Z[ok], fit_y, [self.alphas[best]], None if w is None else w[ok])
            self.alpha_[t], self.coef_[t], self.intercept_[t] = float(self.alphas[best]), c[0], float(b[0])
            self.quantiles_[t] = np.sort(yt[ok])  # the training targets, to map rank predictions back
        return self

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        return (rankdata(y) - 0.5) / len(y) if self.rank_targets else y

    def _standardise(self, F: np.ndarray) -> np.ndarray:
        return np.nan_to_num((F - self.mu_) / self.sd_)  # a missing value sits at the training mean

    def predict(self, X: Features) -> pd.DataFrame:
        Z = self._standardise(self.builder_.transform(X))
        out = {}
        for t in self.targets_:
            p = Z @ self.coef_[t] + self.intercept_[t]
            if self.rank_targets:  # a predicted percentile -> the training target at that quantile
                q = self.quantiles_[t]
                p = np.interp(np.clip(p, 0, 1), (np.arange(len(q)) + 0.5) / len(q), q)
            out[t] = np.clip(p, 0, 1)
        return pd.DataFrame(out, index=pd.Index(list(X.ids), name="id"))
