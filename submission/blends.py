"""Blend runs: the rank average (or weighted mean) of other runs' predictions, or, with `choose`, per
target the blend or one run alone, whichever grouped CV prefers (the choice nested in the CV).

    result = compute_blend(project, plan, compute)   # compute(plan, test) -> RunResult of a component

A blend computes nothing of its own: its runs' out-of-fold predictions are blended repeat by repeat
(the same folds in every run), and the test predictions of only the runs its choice takes are
fitted in full.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from memo.crossval import cv_scores, repeats_of
from memo.errors import MemoError
from memo.metrics import blend_predictions
from memo.progress import say
from memo.submission.plan import Plan, RunResult

# computes one run (a component of a blend): compute(plan, test) -> RunResult
Compute = Callable[[Plan, bool], RunResult]


def compute_blend(project, plan: Plan, compute: Compute, test: bool = True) -> RunResult:
    """A blend run's grouped-CV predictions from its runs' (`compute(plan, test)` computes a run) and,
    with `test`, its test predictions."""
    # the runs' CV first: a chosen blend then fits in full only the runs its choice takes
    results = _on_shared_repeats(plan, [compute(c, False) for c in plan.components])
    common = results[0].cv.index
    for r in results[1:]:
        if list(r.cv.index) != list(common) or r.folds != results[0].folds:
            raise MemoError(
                f"runs {', '.join(plan.run.blend)} were cross-validated on different videos or folds, "
                f"so blend {plan.name} cannot be scored; give them the same targets."
            )
    if plan.run.choose:
        result = _chosen_blend(project, plan, results)
    else:
        # the same folds in every repeat: blending out-of-fold predictions repeat by repeat is an honest blend
        # score
        oof = pd.concat(
            [
                blend_predictions(
                    [r.cv.xs(i, level="repeat", drop_level=False)[plan.targets] for r in results],
                    list(plan.run.weights) or None,
                )
                for i in repeats_of(results[0].cv)
            ]
        )
        result = RunResult(
            plan, None, oof, cv_scores(project, plan.targets, oof), results[0].folds, components=results
        )
    return (
        dataclasses.replace(result, test=_test_of(project, result, plan.targets, compute)) if test else result
    )


def _test_of(project, result: RunResult, targets: list[str], compute: Compute) -> pd.DataFrame:
    """A run's test predictions: those its result has; a blend's from its components' results (nothing
    cross-validated or chosen is redone; a chosen blend fits in full only the runs its picks take); else its
    full fit, made now."""
    plan = result.plan
    if result.test is not None:
        return result.test[targets]
    if not plan.is_blend:
        return compute(plan, True).test[targets]
    if plan.run.choose:
        return _chosen_test(project, result, compute)[targets]
    return blend_predictions(
        [_test_of(project, r, plan.targets, compute) for r in result.components],
        list(plan.run.weights) or None,
    )[targets]


def _on_shared_repeats(plan: Plan, results: list[RunResult]) -> list[RunResult]:
    """The runs' CV restricted to the repeats they all have (repeat i is the same split in every run), so a
    run cross-validated once (an LLM, `repeats = 1`) blends with runs repeated five times on their first
    split."""
    shared = sorted(set.intersection(*(set(repeats_of(r.cv)) for r in results)))
    if not shared:
        raise MemoError(
            f"runs {', '.join(plan.run.blend)} share no cross-validation repeat, so blend {plan.name} "
            "cannot be scored; give them the same [runs.N] repeats."
        )
    if all(repeats_of(r.cv) == shared for r in results):
        return results
    say(
        f"run {plan.name}: scored on the {len(shared)} CV repeat(s) that runs "
        f"{', '.join(plan.run.blend)} all have"
    )
    return [
        dataclasses.replace(r, cv=r.cv.loc[r.cv.index.get_level_values("repeat").isin(shared)])
        for r in results
    ]


def blend_candidates(plan: Plan, preds: list[pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What a chosen blend picks from: the rank average of the runs (first, so it wins ties), then each run
    alone."""
    return {
        "rank average": blend_predictions(preds),
        **{f"run {c.name}": p for c, p in zip(plan.components, preds)},
    }


def _score(y: pd.Series, pred: pd.Series) -> float:
    """Spearman of pred against the labelled values of y (NaN labels left out); NaN when undefined."""
    from memo.metrics import spearman

    known = y.notna().to_numpy()
    return spearman(y.to_numpy(float)[known], pred.loc[y.index].to_numpy(float)[known])


def _best(scores: dict[str, float]) -> str:
    """The key with the highest finite score; the first key (the rank average) when none is finite or on
    ties."""
    return max(scores, key=lambda k: -np.inf if not np.isfinite(scores[k]) else scores[k])


def chosen_out_of_fold(cands: dict[str, pd.DataFrame], y: pd.DataFrame, folds) -> pd.DataFrame:
    """Out-of-fold predictions of choosing, per target, among candidate predictions (same ids and columns as
    y):
    each fold takes the candidate that scores best on the *other* folds' rows and labels, so a fold never
    helps choose for itself. The first candidate wins ties and undefined scores."""
    first = next(iter(cands))
    oof = cands[first].loc[y.index, list(y.columns)].copy()
    for _, held in folds:
        rest = np.setdiff1d(np.arange(len(y)), held)
        for j, t in enumerate(y.columns):
            pick = _best({k: _score(y[t].iloc[rest], c[t]) for k, c in cands.items()})
            oof.iloc[held, j] = cands[pick][t].loc[y.index].iloc[held].to_numpy()
    return oof


def _chosen_blend(project, plan: Plan, results: list[RunResult]) -> RunResult:
    """Per target, the rank average of the runs or one run alone: whichever scores best on grouped CV.

    The reported score pays for the choosing: in every repeat, each fold's pick is made on the other
    folds' out-of-fold predictions and labels (the folds of that repeat, so a brand never helps pick
    for itself). The test predictions take the pick with the best mean Spearman over all repeats; only
    the runs a pick takes are fitted in full (after the choice).
    """
    from memo.splits import grouped_kfold

    targets = plan.targets
    table = project.dataset.labelled().table
    oof_parts, totals = [], {}
    for i in repeats_of(results[0].cv):
        cands = blend_candidates(plan, [r.cv.xs(i, level="repeat")[targets] for r in results])
        ids = cands["rank average"].index
        y = table.loc[ids, targets].apply(pd.to_numeric, errors="coerce")
        folds = grouped_kfold(
            table.loc[ids, "group"].astype(str).to_numpy(), n_splits=results[0].folds, seed=project.seed + i
        )
        oof = chosen_out_of_fold(cands, y, folds)
        oof_parts.append(oof.assign(repeat=i).set_index("repeat", append=True).reorder_levels([1, 0]))
        for t in targets:
            for k, c in cands.items():
                totals.setdefault(t, {}).setdefault(k, []).append(_score(y[t], c[t]))
    with np.errstate(all="ignore"):
        mean = {
            t: {k: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for k, v in totals[t].items()}
            for t in targets
        }
    chosen = {t: _best(mean[t]) for t in targets}
    for t in targets:
        say(
            f"run {plan.name}: {t} takes the {chosen[t]} (mean grouped-CV Spearman "
            + ", ".join(f"{k} {v:.3f}" for k, v in mean[t].items())
            + ")"
        )
    oof = pd.concat(oof_parts)
    return RunResult(
        plan, None, oof, cv_scores(project, targets, oof), results[0].folds, chosen=chosen, components=results
    )


def _chosen_test(project, result: RunResult, compute: Compute) -> pd.DataFrame:
    """Test predictions of a chosen blend: each target from its pick, fitting in full only the runs the picks
    take."""
    plan, chosen = result.plan, result.chosen
    picks = set(chosen.values())
    if "rank average" in picks:  # every run is needed
        cands = blend_candidates(
            plan, [_test_of(project, r, plan.targets, compute) for r in result.components]
        )
    else:
        skipped = [c.name for c in plan.components if f"run {c.name}" not in picks]
        if skipped:
            say(
                f"run {plan.name}: no target takes run {', '.join(skipped)}, so its fit on all "
                f"{project.dataset.train_split} videos is not needed"
            )
        cands = {
            f"run {r.plan.name}": _test_of(project, r, plan.targets, compute)
            for r in result.components
            if r.plan.name not in skipped
        }
    return pd.DataFrame({t: cands[chosen[t]][t] for t in plan.targets})
