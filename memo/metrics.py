"""Metrics: Spearman (the official one), Pearson, Kendall, MSE, with bootstrap intervals; rank averaging.

Spearman is Pearson on average ranks, so ties get the mean of the ranks they span, as the
official scorer does. A constant prediction has no ranking and scores NaN, never 0.

    spearman(y_true, y_pred)                        # float, NaN for a constant prediction
    score_table(y_true, y_pred, groups=brands)      # Spearman with its 95% interval, Pearson, Kendall, MSE
    rank_average([scores_a, scores_b])              # (N,) mean rank of N videos over two models

Rank averaging lives here because it ranks the way Spearman does (mid-ranks for ties): the GBT
ensemble's rank combiner, the rank blend of runs and the benchmarks all call `rank_average`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:  # pandas only where a function needs it: importing memo.metrics stays light
    import pandas as pd


def spearman(y_true, y_pred) -> float:
    """Spearman's rho; NaN when undefined (fewer than two pairs, or one side constant). NaN inputs are not
    dropped here: callers leave unlabelled rows out themselves (memo.crossval.repeat_scores)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(stats.spearmanr(y_true, y_pred).statistic)


def pearson(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(stats.pearsonr(y_true, y_pred).statistic)


def kendall(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(stats.kendalltau(y_true, y_pred).statistic)


def mse(y_true, y_pred) -> float:
    return float(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2))


METRICS = {"spearman": spearman, "pearson": pearson, "kendall": kendall, "mse": mse}


def bootstrap_ci(
    metric, y_true, y_pred, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0, groups=None
) -> tuple[float, float]:
    """Percentile interval of `metric` over resamples of videos, or of whole groups when given.

    Resampling groups (brands) is the honest choice for brand-grouped data: videos of one brand
    are not independent.
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    rng = np.random.default_rng(seed)
    if groups is None:
        units = [np.array([i]) for i in range(len(y_true))]
    else:
        groups = np.asarray(groups)
        units = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    # (B, U)
    picks = (
        np.stack([rng.integers(0, len(units), len(units)) for _ in range(n_boot)])
        if units
        else np.zeros((n_boot, 0), int)
    )
    # all resamples at once: the same values as the loop below, without 1,000 scipy calls
    if metric is spearman:
        values = list(_resampled_spearman(y_true, y_pred, units, picks))
    else:
        values = [
            metric(y_true[idx], y_pred[idx])
            for idx in (np.concatenate([units[i] for i in pick]) for pick in picks)
        ]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _average_ranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, N) average rank each video's value has in each resample, where video i appears counts[b, i] times.

    What scipy's rankdata gives on the expanded resample: equal values (ties in the data, or copies
    of one video) share the mean of the ranks they occupy.
    """
    uniq, inv = np.unique(values, return_inverse=True)
    per_value = np.zeros((counts.shape[0], len(uniq)))
    np.add.at(per_value.T, inv, counts.T)  # (B, K) copies of each distinct value
    below = np.cumsum(per_value, axis=1) - per_value
    return (below + (per_value + 1) / 2)[:, inv]


def _resampled_spearman(
    y_true: np.ndarray, y_pred: np.ndarray, units: list[np.ndarray], picks: np.ndarray
) -> np.ndarray:
    """(B,) Spearman of each resample (picks: (B, U) drawn units): Pearson of average ranks, copies weighted;
    NaN if constant."""
    unit_of = np.empty(len(y_true), int)
    for u, idx in enumerate(units):
        unit_of[idx] = u
    drawn = np.zeros((picks.shape[0], len(units)))
    np.add.at(drawn, (np.repeat(np.arange(picks.shape[0]), picks.shape[1]), picks.ravel()), 1)
    counts = drawn[:, unit_of]  # (B, N) copies of each video
    rt, rp = _average_ranks(y_true, counts), _average_ranks(y_pred, counts)
    n = counts.sum(1, keepdims=True)
    with np.errstate(all="ignore"):  # an empty resample gives NaN, left out by the caller
        dt, dp = rt - (counts * rt).sum(1, keepdims=True) / n, rp - (counts * rp).sum(1, keepdims=True) / n
        cov, vt, vp = (counts * dt * dp).sum(1), (counts * dt * dt).sum(1), (counts * dp * dp).sum(1)
        r = cov / np.sqrt(vt * vp)
    # one distinct value: undefined, as spearman()
    tiny = (vt <= 1e-12 * n[:, 0] ** 3) | (vp <= 1e-12 * n[:, 0] ** 3) | (n[:, 0] < 2)
    return np.where(tiny, np.nan, np.clip(r, -1, 1))


def score_table(y_true, y_pred, n_boot: int = 1000, seed: int = 0, groups=None) -> dict[str, float]:
    """Spearman with its 95% interval, Pearson, Kendall and MSE of one prediction."""
    lo, hi = bootstrap_ci(spearman, y_true, y_pred, n_boot=n_boot, seed=seed, groups=groups)
    return {
        "spearman": spearman(y_true, y_pred),
        "spearman_lo": lo,
        "spearman_hi": hi,
        "pearson": pearson(y_true, y_pred),
        "kendall": kendall(y_true, y_pred),
        "mse": mse(y_true, y_pred),
    }


RANK_SCALES = ("rank", "pct", "percentile")


def rank_average(scores, references=None, scale: str = "rank") -> np.ndarray:
    """(R, N) scores of R models for the same N items -> (N,) their mean rank.

    Each model's scores become mid-ranks (1..n; ties share the mean of the ranks they span, as in
    Spearman) among its own scores, or among `references[r]`, a sorted sample such as that model's
    out-of-fold predictions: then an item ranks the same alone as in a batch. NaN scores rank NaN.
    `scale` is what each rank is divided by before the average (n: the reference's size, or the
    model's non-NaN scores):
      "rank"        nothing: 1..n
      "pct"         n: in (0, 1], pandas' rank(pct=True)
      "percentile"  n + 1: strictly inside (0, 1), so np.quantile can map it back onto a scale

        rank_average([[0.1, 0.5, 0.3], [0.2, 0.1, 0.9]])   # array([1.5, 2. , 2.5])
    """
    if scale not in RANK_SCALES:
        raise ValueError(f"scale is {scale!r}; choose one of {', '.join(RANK_SCALES)}.")
    S = np.atleast_2d(np.asarray(scores, dtype=float))  # (R, N)
    ranks = np.empty(S.shape)  # (R, N)
    for r, s in enumerate(S):
        ref = np.sort(s[~np.isnan(s)]) if references is None else np.asarray(references[r], dtype=float)
        n = len(ref)
        # twice the mid-rank: lo reference values lie below s and hi - lo equal it (ranks lo+1 .. hi), so the
        # mid-rank is (lo + hi + 1) / 2. Dividing this integer once gives each scale correctly rounded
        # (what pandas and percentile-of-reference code compute), so averages match them to the last bit
        twice = np.searchsorted(ref, s, side="left") + np.searchsorted(ref, s, side="right") + 1
        ranks[r] = twice / {"rank": 2, "pct": 2 * n, "percentile": 2 * n + 2}[scale]
        ranks[r, np.isnan(s)] = np.nan
    return ranks.mean(axis=0)


def blend_predictions(preds: list[pd.DataFrame], weights: list[float] | None = None) -> pd.DataFrame:
    """Combine models' or runs' predictions (same ids and columns): weighted mean, or rank average.

    Rank average: each run's scores become ranks, the ranks are averaged, and the averaged
    ranking is mapped onto the sorted mean of the runs' scores. The order is exactly the rank
    average's (what Spearman sees) and the values stay on the memorability scale.
    """
    import pandas as pd

    ids, cols = preds[0].index, list(preds[0].columns)
    stack = np.stack([p.loc[ids, cols].to_numpy(float) for p in preds])  # (R, N, C)
    if weights:
        w = np.asarray(weights, float)[:, None, None]
        return pd.DataFrame((stack * w).sum(0) / w.sum(), index=ids, columns=cols).clip(0, 1)
    out = np.empty(stack.shape[1:])
    for c in range(stack.shape[2]):
        mean_rank = rank_average(stack[:, :, c])  # (N,) each run's ranks 1..N, averaged
        order = pd.Series(mean_rank).rank().to_numpy()  # 1..N, ties share the mean rank
        scale = np.sort(stack[:, :, c].mean(0))
        out[:, c] = np.interp(order, np.arange(1, len(scale) + 1), scale)
    return pd.DataFrame(out, index=ids, columns=cols).clip(0, 1)
