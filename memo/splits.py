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
    """K folds in which every group (brand) is wholly on one side, balanced in videos, reproducible from
    `seed`.

    scikit-learn's GroupKFold deals the groups, largest first, to the fold with the fewest videos so
    far. Its ties (brands of equal size) follow the group labels, and its `shuffle=True` mode deals
    equal numbers of brands instead of balancing videos; so the seed enters here: each brand is
    relabelled by its place in a seeded permutation, which makes the seeded order break the ties.
    With one group per video this is shuffled plain K-fold.
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray([str(g) for g in groups])
    unique = np.unique(groups)
    if len(unique) < n_splits:
        raise MemoError(
            f"grouped {n_splits}-fold cross-validation needs at least {n_splits} groups (brands), the "
            f"data has {len(unique)}; "
            "use fewer folds (--folds)."
        )
    order = unique[np.random.default_rng(seed).permutation(len(unique))]
    # GroupKFold takes tied sizes in descending label order: the first in the seeded order gets the highest
    # label
    label = {g: len(order) - 1 - k for k, g in enumerate(order)}
    relabelled = np.array([label[g] for g in groups])
    return [(train, test) for train, test in GroupKFold(n_splits=n_splits).split(groups, groups=relabelled)]


def check_disjoint(
    ids: Sequence[str], groups: Sequence[str], train_idx: np.ndarray, test_idx: np.ndarray
) -> None:
    """Refuse a split where a video id or a group (brand) is on both sides."""
    ids, groups = np.asarray(ids), np.asarray(groups)
    shared_ids = set(ids[train_idx]) & set(ids[test_idx])
    if shared_ids:
        raise MemoError(
            f"video id {str(sorted(shared_ids)[0])!r} is on both sides of a split; this would leak labels."
        )
    shared_groups = set(groups[train_idx]) & set(groups[test_idx])
    if shared_groups:
        raise MemoError(
            f"brand {str(sorted(shared_groups)[0])!r} is on both sides of a split; folds must be "
            "grouped by brand."
        )


def fold_assignment(folds: list[Fold], n: int) -> np.ndarray:
    """(N,) fold index of every sample's held-out fold."""
    out = np.full(n, -1)
    for k, (_, test) in enumerate(folds):
        out[test] = k
    return out
