"""Cross-validation splits grouped by brand, reproducible from a seed, with a leakage guard.

    folds = grouped_kfold(groups, n_splits=5, seed=0)   # list of (train_idx, test_idx)
    check_disjoint(ids, groups, train_idx, test_idx)      # raises if a brand or id leaks

Every predictor in memo is judged on these folds; baselines measured in the same run use the
same folds, so their numbers sit side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memo.errors import MemoError

Fold = tuple[np.ndarray, np.ndarray]


def grouped_kfold(groups: Sequence[str], n_splits: int = 5, seed: int = 0) -> list[Fold]:
    """K folds in which every group (brand) is wholly on one side.

    Groups are shuffled with the seed, then dealt greedily (largest first) to the fold that has
    the fewest videos so far, so folds are balanced in size even when brands are not. With one
    group per video this is shuffled plain K-fold.
    """
    groups = np.asarray([str(g) for g in groups])
    unique = np.unique(groups)
    if len(unique) < n_splits:
        raise MemoError(
            f"grouped {n_splits}-fold cross-validation needs at least {n_splits} groups (brands), the data has {len(unique)}; "
            "use fewer folds (--folds)."
        )
    rng = np.random.default_rng(seed)
    unique = unique[rng.permutation(len(unique))]
    sizes = {g: int((groups == g).sum()) for g in unique}
    # stable sort keeps the seeded order among groups of equal size
    order = sorted(unique, key=lambda g: -sizes[g])
    fold_of: dict[str, int] = {}
    load = np.zeros(n_splits, dtype=int)
    for g in order:
        k = int(np.argmin(load))
        fold_of[g] = k
        load[k] += sizes[g]
    fold_ids = np.array([fold_of[g] for g in groups])
    idx = np.arange(len(groups))
    folds = [(idx[fold_ids != k], idx[fold_ids == k]) for k in range(n_splits)]
    return folds


def check_disjoint(ids: Sequence[str], groups: Sequence[str], train_idx: np.ndarray, test_idx: np.ndarray) -> None:
    """Refuse a split where a video id or a group (brand) is on both sides."""
    ids, groups = np.asarray(ids), np.asarray(groups)
    shared_ids = set(ids[train_idx]) & set(ids[test_idx])
    if shared_ids:
        raise MemoError(f"video id {str(sorted(shared_ids)[0])!r} is on both sides of a split; this would leak labels.")
    shared_groups = set(groups[train_idx]) & set(groups[test_idx])
    if shared_groups:
        raise MemoError(f"brand {str(sorted(shared_groups)[0])!r} is on both sides of a split; folds must be grouped by brand.")


def fold_assignment(folds: list[Fold], n: int) -> np.ndarray:
    """(N,) fold index of every sample's held-out fold."""
    out = np.full(n, -1)
    for k, (_, test) in enumerate(folds):
        out[test] = k
    return out
