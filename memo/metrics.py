"""Metrics: Spearman (the official one), Pearson, Kendall, MSE, with bootstrap intervals.

Spearman is Pearson on average ranks, so ties get the mean of the ranks they span, as the
official scorer does. A constant prediction has no ranking and scores NaN, never 0.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def spearman(y_true, y_pred) -> float:
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


def bootstrap_ci(metric, y_true, y_pred, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0, groups=None) -> tuple[float, float]:
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
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(units), len(units))
        idx = np.concatenate([units[i] for i in pick])
        v = metric(y_true[idx], y_pred[idx])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


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
