"""A configured run, evaluated exactly as `memo submit --run N` trains it, beside the baselines.

    table, info = evaluate_run(project, "1")      # `memo evaluate --run 1`

The run's cross-validation is the one memo.submission.runs computes and caches for its manifest,
so `memo submit` afterwards reuses it; the [evaluate] baselines meet the same repeated folds and
are cached in the run's folder too.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from memo.crossval import build_predictor, cv_scheme, cv_scores, repeated_cross_val, repeats_of, unseen
from memo.features.load import load_available
from memo.search import describe_picks
from memo.store import atomic_write_text
from memo.submission.plan import resolve_run, run_folder
from memo.submission.runs import compute_run, labelled_rows


def evaluate_run(
    project, run: str, device: str = "auto", baselines: list[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cross-validate [runs.RUN] exactly as `memo submit` would (same streams, same cache), and the
    [evaluate] baselines on the same repeated folds; returns (table, info).

    The table has one row per model and target: `expected` (mean pooled Spearman over the repeats, the figure
    to expect on unseen brands), `min`/`max` over the repeats, the first split's Spearman with its 95%
    interval from resampling brands, and the streams the model `reads`. Everything is cached in the run's
    folder (<workdir>/runs/<run>/<fingerprint>/), so `memo submit --run RUN` afterwards reuses the work, and a
    second `memo evaluate --run RUN` with nothing changed computes nothing.
    """
    cfg = project.config
    plan = resolve_run(project, run, device)
    result = compute_run(project, plan, device, test=False)  # its CV alone: the full fit is `memo submit`'s
    names = list(cfg.evaluate.baselines if baselines is None else baselines)
    cached = run_folder(project, plan) / "baselines.csv"
    have = (
        pd.read_csv(cached, dtype={"id": str})
        if cached.is_file()
        else pd.DataFrame(columns=["model", "repeat", "id", *plan.targets])
    )
    reads = (
        f"runs {', '.join(plan.run.blend)} ({plan.describe()['blend']})"
        if plan.is_blend
        else (", ".join(result.consumed or plan.streams) or "the split's texts")
    )
    rows = _score_rows(f"run {run}", result.cv_scores, reads)
    reps = repeats_of(result.cv)
    notes: list[str] = []
    for name in names:
        got = have[have["model"] == name]
        probe = build_predictor(project, name, device)
        if got.empty:
            X, load_notes = load_available(project, project.dataset.train_split, probe.streams)
            notes += [f"{name}: {n}" for n in load_notes]
            X, y = labelled_rows(project, plan, X)
            oof = repeated_cross_val(
                project,
                lambda: build_predictor(project, name, device),
                X,
                y[plan.targets],
                name,
                repeats=len(reps),
            )
            got = oof.rename_axis(["repeat", "id"]).reset_index().assign(model=name)
            have = pd.concat([have, got], ignore_index=True)
            atomic_write_text(cached, have.to_csv(index=False, float_format="%.10g"))
        oof = got.set_index(["repeat", "id"])[plan.targets]
        rows += _score_rows(
            name, cv_scores(project, plan.targets, oof), ", ".join(probe.streams) or "the split's texts"
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
