"""Few-shot exemplars per cross-validation fold, chosen by E5 similarity from the training side only.

The rule (what DSGT did, made strict): a labelled video held out in brand-grouped fold k sees
exemplars only from the videos *outside* fold k, the training side of the very folds
`memo evaluate` uses (memo.splits.grouped_kfold with the project seed and [evaluate] folds). So
no exemplar is the video itself, shares its brand, or sits in its held-out fold. A video of the
test split (no labels) draws from the whole labelled split.

What an exemplar is: another ad's texts (windowed short) and the zero-shot rationale the same
writer wrote for it; with [rationale] exemplar_labels = true, also its measured memorability level
(low / medium / high tercile of the first target within the pool). So the few-shot prompt shows
the model how ads like this one were judged on this aspect: the format is learnt from its own
outputs.

Why labels are off by default: the rule above keeps a video's *own* fold out of its prompt, not
every other fold. A video q of fold j may show an exemplar from fold k with its label; when
`memo evaluate` holds out fold k, q is a training video whose rationale was written with a fold-k
label, so the predictor can meet a held-out label through a training feature. Making that
impossible would need one rationale per (video, outer fold); with labels off, exemplars carry
texts and zero-shot rationales only, which hold no label, and the cross-validated scores stay honest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memo.errors import MemoError
from memo.splits import fold_assignment, grouped_kfold

LEVELS = ("low", "medium", "high")


def labelled_folds(ids: Sequence[str], groups: Sequence[str], n_folds: int, seed: int) -> dict[str, int]:
    """{video id: held-out fold} for the labelled split, the folds `memo evaluate` uses."""
    folds = grouped_kfold(groups, n_splits=n_folds, seed=seed)
    return dict(zip(ids, fold_assignment(folds, len(ids)).tolist()))


def allowed(
    query: str, query_group: str, query_fold: int | None, cand: str, cand_group: str, cand_fold: int
) -> bool:
    """May `cand` be an exemplar for `query`? Never itself, never its brand, never its held-out fold."""
    if cand == query or str(cand_group) == str(query_group):
        return False
    return query_fold is None or cand_fold != query_fold


def choose_exemplars(
    query_ids: Sequence[str],
    query_groups: Sequence[str],
    query_folds: Sequence[int | None],
    query_vecs: np.ndarray,
    pool_ids: Sequence[str],
    pool_groups: Sequence[str],
    pool_folds: Sequence[int],
    pool_vecs: np.ndarray,
    k: int,
) -> dict[str, list[str]]:
    """{query id: up to k pool ids}, most similar (cosine of unit E5 vectors) last, nearest the question.

    query_vecs (Q, D) and pool_vecs (P, D) are L2-normalised; query_folds[i] is None for an
    unlabelled (test) video. Ties break by pool order, so the choice is deterministic.
    """
    if k <= 0 or len(pool_ids) == 0:
        return {q: [] for q in query_ids}
    sims = np.asarray(query_vecs, np.float32) @ np.asarray(pool_vecs, np.float32).T  # (Q, P)
    pool_groups = [str(g) for g in pool_groups]
    out: dict[str, list[str]] = {}
    for i, q in enumerate(query_ids):
        ok = np.array(
            [
                allowed(q, query_groups[i], query_folds[i], c, pool_groups[j], pool_folds[j])
                for j, c in enumerate(pool_ids)
            ]
        )
        order = np.argsort(-np.where(ok, sims[i], -np.inf), kind="stable")
        picked = [pool_ids[j] for j in order[: min(k, int(ok.sum()))]]
        out[q] = picked[::-1]
        for c in picked:  # belt and braces: the invariant the docstring promises, checked
            j = list(pool_ids).index(c)
            if not allowed(q, query_groups[i], query_folds[i], c, pool_groups[j], pool_folds[j]):
                raise MemoError(
                    f"exemplar {c!r} for video {q!r} breaks the held-out fold; this is a bug in memo."
                )
    return out


def levels(
    pool_ids: Sequence[str], scores: Sequence[float], pool_folds: Sequence[int], query_fold: int | None
) -> dict[str, str]:
    """{pool id: low | medium | high}: terciles of the target among the pool a query of `query_fold` may
    see."""
    ids = [i for i, f in zip(pool_ids, pool_folds) if query_fold is None or f != query_fold]
    vals = np.array(
        [s for s, f in zip(scores, pool_folds) if query_fold is None or f != query_fold], dtype=float
    )
    ok = ~np.isnan(vals)
    if ok.sum() < 3:
        return {}
    lo, hi = np.quantile(vals[ok], [1 / 3, 2 / 3])
    return {i: LEVELS[int(v > lo) + int(v > hi)] for i, v in zip(ids, vals) if not np.isnan(v)}
