"""A configured run, evaluated exactly as `memo submit --run N` trains it, beside the baselines.

    table, info = evaluate_run(project, "1")      # `memo evaluate --run 1`

The run's cross-validation is the one memo.submission.runs computes and caches for its manifest,
so `memo submit` afterwards reuses it; the [evaluate] baselines are ad hoc runs
(memo.submission.plan.plan_model, as `memo evaluate --model` makes them) on the same repeated
folds, cached in their own folders (<workdir>/runs/model-NAME/).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from memo.crossval import cv_scheme, cv_scores, repeats_of, unseen
from memo.errors import MemoError
from memo.search import describe_picks
from memo.submission.plan import plan_model, resolve_run
from memo.submission.runs import compute_run


def evaluate_run(
    project,
    run: str,
    device: str = "auto",
    baselines: list[str] | None = None,
    folds: int | None = None,
    repeats: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cross-validate [runs.RUN] exactly as `memo submit` would (same streams, same cache), and the
    [evaluate] baselines on the same repeated folds; returns (table, info). `folds` and `repeats` set
    [evaluate] folds and repeats for this call, as --set does (they are part of the run's fingerprint:
    `memo submit` reuses the work when it runs with the same settings).

    The table has one row per model and target: `expected` (mean pooled Spearman over the repeats, the figure
    to expect on unseen brands), `min`/`max` over the repeats, the first split's Spearman with its 95%
    interval from resampling brands, and the streams the model `reads`. Everything is cached in the run's
    folder (<workdir>/runs/<run>/<fingerprint>/), so `memo submit --run RUN` afterwards reuses the work, and a
    second `memo evaluate --run RUN` with nothing changed computes nothing.
    """
    if repeats is not None and repeats < 1:
        raise MemoError(f"repeats {repeats} (--repeats) must be 1 or more.")
    chosen = {k: v for k, v in {"folds": folds, "repeats": repeats}.items() if v is not None}
    project = project.with_settings(evaluate=chosen) if chosen else project
    cfg = project.config
    plan = resolve_run(project, run, device)
    result = compute_run(project, plan, device, test=False)  # its CV alone: the full fit is `memo submit`'s
    names = list(cfg.evaluate.baselines if baselines is None else baselines)
    reads = (
        f"runs {', '.join(plan.run.blend)} ({plan.describe()['blend']})"
        if plan.is_blend
        else (", ".join(result.consumed or plan.streams) or "the split's texts")
    )
    rows = _score_rows(f"run {run}", result.cv_scores, reads)
    reps = repeats_of(result.cv)
    notes: list[str] = []
    for name in names:  # each baseline is an ad hoc run on the same repeated folds (memo evaluate --model)
        baseline = plan_model(project, name, repeats=len(reps), device=device)
        notes += [f"{name}: {s} left out: {why}" for s, why in baseline.dropped.items()]
        oof = compute_run(project, baseline, device, test=False).cv
        oof = oof.loc[oof.index.isin(result.cv.index), plan.targets]  # the run's videos and targets
        rows += _score_rows(
            name, cv_scores(project, plan.targets, oof), ", ".join(baseline.streams) or "the split's texts"
        )
    info = {
        "run": run,
        "predictor": plan.run.predictor,
        "description": plan.run.description,
        "streams": result.consumed or plan.streams,
        "reads": reads,
        "scheme": cv_scheme(project, result.folds, len(reps)),
        "dropped": plan.dropped,
        "notes": notes,
        "picks": describe_picks(result.choices) if result.choices else [],
        "unseen": unseen(project),
    }
    return pd.DataFrame(rows), info


def _score_rows(model: str, scores: dict[str, dict[str, float]], reads: str) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "target": t,
            "expected": s["expected"],
            "min": s["expected_min"],
            "max": s["expected_max"],
            "repeats": s["repeats"],
            "first_split": s["spearman"],
            "ci95": f"[{s['spearman_lo']:.3f}, {s['spearman_hi']:.3f}]",
            "reads": reads,
        }
        for t, s in scores.items()
    ]
