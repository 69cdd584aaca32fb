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
Three options against brand shift (a model scored on brands it never saw), off by default; each is
measured on VIDEM's nested CV (docs/evaluation.md, "run 1 chooses inside the cross-validation"):
- `centre_targets`: fit each video's target minus its training brand's mean, so the line learns
  what ranks ads within a brand, not which brands score high (brand levels do not carry over);
- `bag_brands`: average the coefficients of this many ridges, each fitted on a bootstrap sample of
  the training brands (the penalty is chosen once, as without bagging);
- `stable_signs`: keep only the columns whose coefficient has the same sign in at least this share
  of the leave-one-brand-out fits, then fit again on those.
The streams become one matrix through memo.baselines.blocks.BlockBuilder (no reduction): sequences are
summarised, missing values take the training mean plus a 0/1 flag, columns are standardised on the
training rows only.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from memo.baselines.blocks import BlockBuilder
from memo.baselines.simple import _Simple
from memo.errors import MemoError
from memo.metrics import spearman
from memo.predictors import PREDICTORS, contribution_table, explanation_frame
from memo.splits import grouped_kfold
from memo.store import Features

ALPHAS = tuple(float(a) for a in np.logspace(0, 4, 9))  # 1 .. 10,000 on standardised columns


@cache
def _blas():
    """The process's thread pools, found once: threadpool_limits() looks for them on every call, reading
    /proc/self/maps (a third of run 1's search time went there, thousands of small SVDs)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def ridge_path(
    Z: np.ndarray, y: np.ndarray, alphas, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ridge for every penalty from one SVD: coefficients (A, F) and intercepts (A,)."""
    w = np.ones(len(y)) if w is None else w / w.mean()
    zm, ym = np.average(Z, axis=0, weights=w), np.average(y, weights=w)
    s_w = np.sqrt(w)[:, None]
    # a few hundred rows: BLAS threads only fight other processes (50x slower on a busy machine)
    with _blas().limit(limits=1):
        U, s, Vt = np.linalg.svd((Z - zm) * s_w, full_matrices=False)  # (N, r), (r,), (r, F)
    uy = U.T @ ((y - ym) * s_w[:, 0])  # (r,)
    coefs = np.stack([Vt.T @ (s / (s**2 + a) * uy) for a in alphas])  # (A, F)
    return coefs, ym - coefs @ zm


@PREDICTORS.register("ridge")
class RidgeRanker(_Simple):  # describe, save and load (no pickle) as the simple baselines
    """Standardised streams -> ridge per target, penalty chosen on inner brand-grouped folds."""

    name = "ridge"

    def __init__(
        self,
        streams: list[str] | tuple[str, ...] = ("cues",),
        alphas: list[float] | tuple[float, ...] = ALPHAS,
        inner_folds: int = 3,
        rank_targets: bool = False,
        weight_by_annotations: bool = False,
        centre_targets: bool = False,
        bag_brands: int = 0,
        stable_signs: float = 0.0,
        random_state: int = 0,
    ):
        self.streams = streams  # selectors (memo.streams); a run sets them to its own streams
        self.alphas = alphas
        self.inner_folds = inner_folds
        self.rank_targets = rank_targets
        self.weight_by_annotations = weight_by_annotations
        self.centre_targets = centre_targets
        self.bag_brands = bag_brands
        self.stable_signs = stable_signs
        self.random_state = random_state

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        return super().config_params(config, overrides) | {"inner_folds": config.gbt.inner_folds}

    def _weights(self, X: Features) -> np.ndarray | None:
        if not self.weight_by_annotations or "n_annotations" not in X.table:
            return None
        w = pd.to_numeric(X.table.loc[list(X.ids), "n_annotations"], errors="coerce").to_numpy(float)
        return np.where(np.isfinite(w) & (w > 0), w, np.nanmedian(w) if np.isfinite(w).any() else 1.0)

    def fit(self, X: Features, y: pd.DataFrame) -> RidgeRanker:
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
            raise MemoError(
                "the ridge chooses its penalty on grouped inner folds and needs at least 2 brands; "
                f"these videos have {len(np.unique(X.groups))}."
            )
        inner = grouped_kfold(X.groups, n_splits=k, seed=int(self.random_state) + 1)
        self.alpha_, self.coef_, self.intercept_, self.quantiles_ = {}, {}, {}, {}
        groups = np.asarray(X.groups)
        for t in self.targets_:
            raw = y[t].to_numpy(float)
            ok = np.isfinite(raw)
            level = 0.0
            yt = raw
            # within-brand deviations (ranks within a brand carry over, brand levels do not)
            if self.centre_targets:
                yt = raw - pd.Series(raw).groupby(groups).transform("mean").to_numpy()
                # predictions back on the hit-rate scale
                level = 0.0 if self.rank_targets else float(np.mean(raw[ok]))
            fit_y = self._fit_target(yt[ok])
            oof = np.full((len(self.alphas), len(yt)), np.nan)
            for tr, va in inner:
                tr = tr[ok[tr]]
                c, b = ridge_path(Z[tr], self._fit_target(yt[tr]), self.alphas, None if w is None else w[tr])
                oof[:, va] = c @ Z[va].T + b[:, None]
            scores = [spearman(yt[ok], o[ok]) for o in oof]
            best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else len(self.alphas) - 1
            alpha, wk = self.alphas[best], None if w is None else w[ok]
            c, b = ridge_path(Z[ok], fit_y, [alpha], wk)
            if self.stable_signs > 0:
                c, b = self._stable_sign_fit(Z[ok], fit_y, groups[ok], alpha, wk, c[0])
            if self.bag_brands > 0:
                c, b = self._brand_bagged_fit(Z[ok], fit_y, groups[ok], alpha, wk, c[0] != 0)
            self.alpha_[t], self.coef_[t], self.intercept_[t] = float(alpha), c[0], float(b[0]) + level
            self.quantiles_[t] = np.sort(raw[ok])  # the training targets, to map rank predictions back
        return self

    def _stable_sign_fit(self, Z, y, groups, alpha, w, coef) -> tuple[np.ndarray, np.ndarray]:
        """Refit on the columns whose sign agrees with the full fit's in >= stable_signs of the
        leave-one-brand-out fits."""
        brands = np.unique(groups)
        agree = np.zeros(Z.shape[1])
        for g in brands:
            keep = groups != g
            c, _ = ridge_path(Z[keep], y[keep], [alpha], None if w is None else w[keep])
            agree += np.sign(c[0]) == np.sign(coef)
        cols = (agree / len(brands) >= self.stable_signs) & (coef != 0)
        out = np.zeros((1, Z.shape[1]))
        if not cols.any():  # nothing holds across brands: a constant (the training mean)
            return out, np.array([np.average(y, weights=w)])
        c, b = ridge_path(Z[:, cols], y, [alpha], w)
        out[0, cols] = c[0]
        return out, b

    def _brand_bagged_fit(self, Z, y, groups, alpha, w, cols) -> tuple[np.ndarray, np.ndarray]:
        """Mean coefficients of `bag_brands` ridges on bootstrap samples of whole brands (the columns in
        `cols`)."""
        rng = np.random.default_rng(int(self.random_state) + 7)
        brands = np.unique(groups)
        rows = {g: np.flatnonzero(groups == g) for g in brands}
        coefs, intercepts = np.zeros((1, Z.shape[1])), 0.0
        for _ in range(self.bag_brands):
            take = np.concatenate([rows[g] for g in rng.choice(brands, size=len(brands), replace=True)])
            c, b = ridge_path(Z[take][:, cols], y[take], [alpha], None if w is None else w[take])
            coefs[0, cols] += c[0] / self.bag_brands
            intercepts += float(b[0]) / self.bag_brands
        return coefs, np.array([intercepts])

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

    def explain(self, X: Features) -> pd.DataFrame:
        """Coefficient x standardised value per column, and the intercept (memo.predictors' explanation
        protocol): they add up to the prediction before clipping. With rank_targets the line predicts a
        percentile, mapped back through the training targets, so no target is explained."""
        Z = self._standardise(self.builder_.transform(X))  # (N, F)
        names = self.builder_.feature_names_
        parts = [
            contribution_table(X.ids, t, names, Z * self.coef_[t], self.intercept_[t])
            for t in ([] if self.rank_targets else self.targets_)
        ]
        return explanation_frame(parts)
