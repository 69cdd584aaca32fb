"""Predictors side by side on the same brand-grouped folds, beside the simple baselines.

    ev = evaluate_models(project, ["gbt"])     # `memo evaluate --model gbt`
    ev.summary  # per model and target: expected (mean over repeated splits), first split [95% CI], ...
    ev.setup, ev.notes, ev.folder              # what was done, what was left out, where the files are

Every model gets a fresh predictor per fold from memo.crossval (the honesty rules are there). The
result is cached by a fingerprint of everything it reads (`evaluation_fingerprint`): a second call
with nothing changed reads the files back and says it is up to date.

Files written under <workdir>/eval/ (or `out`), described in docs/evaluation.md:
results.csv, results.md, summary.csv, oof_predictions.csv, folds.csv, run.json, spearman.png,
scatter_<model>.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.crossval import (
    build_predictor,
    labelled_targets,
    repeat_scores,
    score_predictions,
    target_frame,
)
from memo.errors import MemoError
from memo.evaluation.plots import plot_scatter, plot_spearman
from memo.features.load import load_available
from memo.predictors import PREDICTORS
from memo.progress import say, table_text
from memo.splits import fold_assignment, grouped_kfold
from memo.store import atomic_write_json, atomic_write_text, read_saved, stable_hash
from memo.streams import canonical
from memo.submission.plan import plan_model
from memo.submission.runs import compute_run


@dataclass
class Evaluation:
    """What `evaluate_models` returns: the summary table and how it was made."""

    # model, target, n, expected, min, max, repeats, spearman, ci95, fold_mean, fold_sd, pearson, mse
    summary: pd.DataFrame
    setup: str  # "brand-grouped 5-fold CV on dev, seed 0" or "split val (trained on train)"
    folder: Path  # where the tables, out-of-fold predictions and plots are
    notes: list[str] = field(default_factory=list)  # streams left out, brands on both sides, ...
    up_to_date: bool = False  # read back from `folder`: nothing it reads changed since it was computed

    def text(self) -> str:
        """The summary as a terminal table under its setup line, then the notes and where the files are."""
        numbers = ("expected", "min", "max", "spearman", "fold_mean", "fold_sd", "pearson", "mse")
        shown = self.summary.assign(
            **{c: self.summary[c].map(lambda v: f"{v:.3f}") for c in numbers if c in self.summary}
        )
        title = self.setup + (
            f" (up to date: nothing it reads changed; cached in {self.folder})" if self.up_to_date else ""
        )
        lines = [title, table_text(shown.set_index(list(shown.columns[:2])))]
        lines += [f"note: {n}" for n in self.notes] + [
            f"tables, out-of-fold predictions and plots in {self.folder}"
        ]
        return "\n".join(lines)


def evaluate_models(
    project,
    models: list[str],
    folds: int | None = None,
    split: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    params: dict[str, dict[str, Any]] | None = None,
    baselines: list[str] | None = None,
    repeats: int | None = None,
) -> Evaluation:
    """Evaluate `models` and the [evaluate] baselines on the same brand-grouped folds.

    The CV is repeated `repeats` times ([evaluate] repeats by default) with seeds seed, seed+1, ...
    (memo.crossval.repeated_cross_val's folds): `expected` is the mean pooled Spearman over the
    repeats, the figure to expect on unseen brands; the interval, per-fold figures, tables and plots
    are the first split's. `split`: instead of CV, train on the labelled split and score a second
    labelled split (e.g. an official validation split). `params`: per-model overrides of from_config.
    """
    if repeats is not None and repeats < 1:
        raise MemoError(f"repeats {repeats} (--repeats) must be 1 or more.")
    cfg = project.config
    names = _model_names(models, cfg.evaluate.baselines if baselines is None else baselines)
    train_split, targets = labelled_targets(project)
    if split is not None:
        _check_split(project, split, train_split, repeats)
    out = Path(out) if out else project.workdir / "eval"
    n_folds = folds or cfg.evaluate.folds
    n_repeats = 1 if split is not None else max(1, cfg.evaluate.repeats if repeats is None else repeats)
    plans = {}
    if split is None:  # each model is an ad hoc run: planned, computed and cached as `memo submit` does
        project, plans = _model_runs(project, names, folds, repeats or 0, device, params)
    fingerprint = evaluation_fingerprint(project, names, n_folds, split, device, params, n_repeats, plans)
    info = read_saved(out / "run.json", fingerprint)
    if info is not None and (out / "summary.csv").is_file():
        return Evaluation(
            pd.read_csv(out / "summary.csv"), info["setup"], out, info.get("notes", []), up_to_date=True
        )

    oof_frames, result_rows, notes, per_repeat = [], [], [], {}
    fold_table = None
    for name in names:
        t0 = time.perf_counter()
        if split is None:
            oof, scored_y, meta, more, per_repeat[name] = _cross_validated(project, plans[name], device)
        else:
            oof, scored_y, meta, more, per_repeat[name] = _trained_on_labelled(
                project, name, train_split, targets, split, device, (params or {}).get(name)
            )
        notes += more
        result_rows += score_predictions(
            oof,
            scored_y,
            meta["group"].to_numpy(),
            meta["fold"].to_numpy(),
            name,
            n_boot=cfg.evaluate.bootstrap,
            seed=project.seed,
        )
        oof_frames.append(_long_predictions(oof, scored_y, meta, name))
        fold_table = meta if fold_table is None else fold_table
        say(f"{name}: done in {time.perf_counter() - t0:.1f}s")

    setup = _setup_line(project, fold_table, split, train_split, n_folds, n_repeats)
    notes = list(dict.fromkeys(notes))
    results = pd.DataFrame(result_rows)
    summary = with_repeats(summary_table(results), per_repeat)
    _write_outputs(
        out,
        results,
        summary,
        pd.concat(oof_frames, ignore_index=True),
        fold_table,
        setup,
        notes,
        {"models": names, "targets": targets, "fingerprint": fingerprint},
    )
    return Evaluation(summary, setup, out, notes)


def _model_runs(project, names, folds, repeats, device, params):
    """(the project with `folds` as [evaluate] folds, each model's ad hoc run plan)."""
    groups = project.dataset.labelled().table["group"]
    if folds and groups.nunique() < folds:  # a run takes fewer folds silently; --folds N is asked for
        raise MemoError(
            f"grouped {folds}-fold cross-validation needs at least {folds} groups (brands), the "
            f"{project.dataset.train_split} split has {groups.nunique()}; use fewer folds (--folds)."
        )
    if folds and folds != project.config.evaluate.folds:
        project = project.with_settings(evaluate={"folds": folds})
    return project, {n: plan_model(project, n, (params or {}).get(n), repeats, device) for n in names}


def _model_names(models: list[str], baselines: list[str]) -> list[str]:
    """The models, then the baselines, once each; an unknown name fails here, before any work."""
    names = list(dict.fromkeys([*(models or []), *baselines]))
    if not names:
        raise MemoError("no model to evaluate; pass --model gbt (or another predictor).")
    for n in names:
        PREDICTORS.get(n)
    return names


def _check_split(project, split: str, train_split: str, repeats: int | None) -> None:
    if split == train_split:
        raise MemoError(
            f"--split {split} is the training split; name another labelled split, or leave --split out "
            "for cross-validation."
        )
    labelled_targets(project, split)
    if repeats not in (None, 1):
        raise MemoError(
            f"--split {split} trains once on {train_split} and scores {split}: there is no split "
            "to repeat; leave out --repeats."
        )


def _long_predictions(oof: pd.DataFrame, scored_y: pd.DataFrame, meta: pd.DataFrame, name: str):
    """One row per video and target: id, group, fold, model, target, y_true, y_pred."""
    long = oof.reset_index().melt(id_vars="id", var_name="target", value_name="y_pred")
    truth = scored_y.reset_index().melt(id_vars="id", var_name="target", value_name="y_true")
    long = long.merge(truth, on=["id", "target"])
    return long.merge(meta, on="id").assign(model=name)[
        ["id", "group", "fold", "model", "target", "y_true", "y_pred"]
    ]


def _setup_line(project, fold_table, split, train_split, n_folds: int, n_repeats: int) -> str:
    """How the scores were made, in words: the folds (or the scored split), seed and repeats."""
    if split:
        return f"split {split} (trained on {train_split})"
    grouping = (
        "brand-grouped" if fold_table["group"].nunique() < len(fold_table) else "plain (one video per group)"
    )
    setup = f"{grouping} {n_folds}-fold CV on {train_split}, seed {project.seed}"
    if n_repeats > 1:
        setup += (
            f", repeated {n_repeats} times (seeds {project.seed}..{project.seed + n_repeats - 1}); "
            "'expected' is the mean Spearman over the repeats, the score to expect on unseen brands; "
            "the interval and per-fold figures are the first split's"
        )
    return setup


def _cross_validated(project, plan, device):
    """One model's out-of-fold predictions from its ad hoc run (memo.submission.runs.compute_run, cached
    in its run folder): (oof, y, meta with id/group/fold, notes, memo.crossval.repeat_scores:
    {target: expected, expected_min, expected_max, repeats}); oof and meta are the first split's."""
    result = compute_run(project, plan, device, test=False)
    oofs = result.cv
    oof = oofs.xs(0, level="repeat")
    table = project.dataset.labelled().table
    y = table.loc[oof.index, plan.targets].apply(pd.to_numeric, errors="coerce")
    groups = table.loc[oof.index, "group"].astype(str).to_numpy()
    # repeat 0's folds, as repeated_cross_val drew them
    fold_of = fold_assignment(grouped_kfold(groups, n_splits=result.folds, seed=project.seed), len(oof))
    name = plan.run.predictor
    notes = [f"{name}: {s} left out: {why}" for s, why in plan.dropped.items()]
    notes += [f"{name}: {n}" for n in result.notes]
    meta = pd.DataFrame({"id": list(oof.index), "group": groups, "fold": fold_of})
    return oof, y, meta, notes, repeat_scores(y, oofs)


def _trained_on_labelled(project, name, train_split, targets, split, device, params):
    """One model trained on the whole labelled split and scored on another labelled `split` (one "fold"):
    (predictions, y, meta with id/group/fold, notes, memo.crossval.repeat_scores)."""
    probe = build_predictor(project, name, device, params)
    X, load_notes = load_available(project, train_split, probe.streams)
    y = target_frame(X, targets)
    Xv, more = load_available(project, split, probe.streams)
    notes = []
    shared = set(X.groups) & set(Xv.groups) - set(X.ids)
    if shared:
        notes.append(
            f"{len(shared)} brand(s) are in both {train_split} and {split}; the score may be optimistic."
        )
    pred = probe.fit(X, y).predict(Xv)[targets]
    scored_y = target_frame(Xv, targets)
    per_repeat = repeat_scores(
        scored_y, pred.assign(repeat=0).set_index("repeat", append=True).reorder_levels([1, 0])
    )
    notes += [f"{name}: {n}" for n in [*load_notes, *more, *getattr(probe, "notes_", [])]]
    meta = pd.DataFrame({"id": list(Xv.ids), "group": np.asarray(Xv.groups), "fold": np.zeros(len(Xv), int)})
    return pred, scored_y, meta, notes, per_repeat


def _write_outputs(
    out: Path, results, summary, oof_long, fold_table, setup: str, notes: list[str], run: dict[str, Any]
) -> None:
    """The evaluation's files; run.json (with the fingerprint) last, so a killed write is never up to date."""
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "oof_predictions.csv", oof_long.to_csv(index=False))
    atomic_write_text(out / "folds.csv", fold_table.to_csv(index=False))
    md = f"# Evaluation: {setup}\n\n{to_markdown(summary)}\n## Per fold\n\n" + to_markdown(
        results[["model", "target", "fold", "n", "spearman", "spearman_lo", "spearman_hi", "pearson", "mse"]]
    )
    if notes:
        md += "\n## Notes\n\n" + "".join(f"- {n}\n" for n in notes)
    atomic_write_text(out / "results.md", md)
    plot_spearman(summary, results, out / "spearman.png")
    for name in run["models"]:
        plot_scatter(oof_long, name, out / f"scatter_{name}.png")
    atomic_write_json(
        out / "run.json",
        {"setup": setup, **run, "notes": notes, "written": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )


def evaluation_fingerprint(
    project,
    names: list[str],
    folds: int,
    split: str | None,
    device: str,
    params,
    repeats: int = 1,
    plans=None,
) -> str:
    """A hash of everything `evaluate_models` reads. Cross-validated models: their ad hoc runs'
    fingerprints (memo.submission.plan). Models scored on a `split`: their resolved parameters and the
    feature-store tables behind their streams (key, count, dims). Then the dataset files, the folds,
    seed, targets and memo's version. The same fingerprint means the same results, so the tables are
    not made again."""
    import memo

    parts: dict[str, Any] = (
        {n: p.fingerprint for n, p in plans.items()}
        if plans
        else {n: _stored_inputs(project, n, device, (params or {}).get(n)) for n in names}
    )
    cfg = project.config
    parts["setup"] = {
        "folds": folds,
        "repeats": repeats,
        "split": split,
        "seed": project.seed,
        "targets": project.targets,
        "bootstrap": cfg.evaluate.bootstrap,
        "data": project.data_signature(),
        "groups": project.groups_signature(),
        "memo": memo.__version__,
    }
    return stable_hash(parts, 16)


def _stored_inputs(project, name: str, device: str, params) -> dict[str, Any]:
    """What a model scored on a labelled split reads: its resolved parameters, its streams and the
    feature-store tables behind them (key, count, dims)."""
    from memo.features.load import EXTRACTOR_STREAMS, catalog

    probe = build_predictor(project, name, device, params)
    prefixes = sorted(
        {canonical(s).partition(".")[0] for s in probe.streams} & {*EXTRACTOR_STREAMS, "rationale", "ratings"}
    )
    tables = {
        n: {k: t.read_manifest().get(k) for k in ("key", "count", "dims")}
        for n, (t, _, _) in catalog(project, prefixes).items()
    }
    return {"params": probe.prediction_params(), "streams": list(probe.streams), "store": tables}


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model and target: pooled Spearman [95% CI], fold mean ± sd, Pearson, MSE."""
    rows = []
    for (model, target), g in results.groupby(["model", "target"], sort=False):
        pooled = g[g["fold"] == "pooled"].iloc[0]
        per_fold = g[g["fold"] != "pooled"]["spearman"].astype(float)
        rows.append(
            {
                "model": model,
                "target": target,
                "n": int(pooled["n"]),
                "spearman": pooled["spearman"],
                "ci95": f"[{pooled['spearman_lo']:.3f}, {pooled['spearman_hi']:.3f}]",
                "fold_mean": per_fold.mean(),
                "fold_sd": per_fold.std(ddof=0) if len(per_fold) > 1 else float("nan"),
                "pearson": pooled["pearson"],
                "mse": pooled["mse"],
            }
        )
    return pd.DataFrame(rows)


def with_repeats(summary: pd.DataFrame, per_repeat: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """The summary with `expected` (mean pooled Spearman over the repeats), `min`, `max` and `repeats` after
    `n`."""
    stats = pd.DataFrame(
        [
            {
                "model": m,
                "target": t,
                "expected": r["expected"],
                "min": r["expected_min"],
                "max": r["expected_max"],
                "repeats": r["repeats"],
            }
            for m, by_target in per_repeat.items()
            for t, r in by_target.items()
        ]
    )
    merged = summary.merge(stats, on=["model", "target"], how="left")
    first = ["model", "target", "n", "expected", "min", "max", "repeats"]
    return merged[first + [c for c in merged.columns if c not in first]]


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub table (pandas' to_markdown needs `tabulate`, which memo does not require)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"
