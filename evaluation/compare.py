"""Training, prediction and honest evaluation of any registered predictor.

    train_model(project, "gbt")                     # fit on the labelled split -> <workdir>/models/gbt/
    predict_model(project, "gbt")                   # DataFrame ids x targets for the test split
    evaluate_models(project, ["gbt"])               # brand-grouped CV beside the [evaluate] baselines
    cross_val_predict(make, X, y, folds)            # the out-of-fold driver every predictor shares

Honesty rules the driver enforces, not just documents:
- folds come from memo.splits.grouped_kfold (by brand, seeded by [project] seed) and every fold
  passes memo.splits.check_disjoint: no brand and no id on both sides;
- each fold gets a fresh predictor from `make_predictor()` and sees only its training rows, so
  everything the predictor fits (scalers, PCA, tuning, stacking) never meets the held-out fold;
- the simple baselines run on the same folds in the same call, so their numbers sit beside;
- the reported score is the outer one; a predictor's inner tuning score is never reported as CV.

Files written under <workdir>/eval/ (or `out`), described in docs/evaluation.md:
results.csv, results.md, oof_predictions.csv, folds.csv, spearman.png, scatter_<model>.png.
"""

from __future__ import annotations

import inspect
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.metrics import score_table
from memo.predictors import PREDICTORS, Predictor
from memo.splits import Fold, check_disjoint, fold_assignment, grouped_kfold
from memo.store import Features, atomic_write_bytes, atomic_write_json, atomic_write_text

# ----------------------------------------------------------------------------- building blocks


def load_available(project, split: str, streams: list[str]) -> tuple[Features, list[str]]:
    """Features of `split` for the streams the store has; a stream it lacks is left out with a note.

    The GBT ensemble lists every block it could use; VIDEM's public dev split, for example, has
    only texts and metadata, so asking for `vit` there must not stop the run.
    """
    from memo.features import load_features

    try:
        return load_features(project, split, list(streams)), []
    except MemoError:
        pass
    notes: list[str] = []
    merged: Features | None = None
    for s in streams:
        try:
            X = load_features(project, split, [s])
        except MemoError as e:
            notes.append(f"stream {s} left out: {e}")
            continue
        if merged is None:
            merged = X
        else:
            merged.streams.update(X.streams)
    if merged is None:  # nothing at all: the table alone (text baselines need no stream)
        merged = load_features(project, split, [])
    return merged, notes


def build_predictor(project, name: str, device: str = "auto", params: dict[str, Any] | None = None) -> Predictor:
    """PREDICTORS[name].from_config(config, device=..., **params); `device` only where the predictor takes one."""
    cls = PREDICTORS.get(name)
    overrides = dict(params or {})
    if "device" in inspect.signature(cls.__init__).parameters:
        overrides.setdefault("device", device)
    return cls.from_config(project.config, **overrides)


def labelled_targets(project, split: str | None = None) -> tuple[str, list[str]]:
    split = split or project.dataset.train_split
    sp = project.dataset.splits.get(split)
    if sp is None:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(project.dataset.splits)}.")
    targets = project.targets
    missing = [t for t in targets if t not in sp.target_columns]
    if missing:
        raise MemoError(f"split {split!r} has no labels for {', '.join(missing)}; evaluate on a labelled split.")
    return split, targets


def target_frame(X: Features, targets: list[str]) -> pd.DataFrame:
    """y: DataFrame indexed by X.ids, one float column per target."""
    return X.table.loc[X.ids, targets].apply(pd.to_numeric, errors="coerce")


def cross_val_predict(
    make_predictor: Callable[[], Predictor],
    X: Features,
    y: pd.DataFrame,
    folds: list[Fold],
    desc: str = "cv",
) -> pd.DataFrame:
    """Out-of-fold predictions: DataFrame indexed by X.ids, one column per target.

    Each fold: check that no brand or id is on both sides, fit a fresh predictor on the training
    rows only, predict the held-out rows. Rows no fold holds out stay NaN. What the fold models
    said about their inputs (`notes_`: streams left out, blocks skipped) is in `out.attrs["notes"]`.
    """
    from tqdm.auto import tqdm

    y = y.loc[X.ids]
    out = pd.DataFrame(np.nan, index=pd.Index(list(X.ids), name="id"), columns=list(y.columns))
    notes: list[str] = []
    for k, (tr, te) in enumerate(tqdm(folds, desc=desc, leave=False, disable=None)):
        check_disjoint(X.ids, X.groups, tr, te)
        model = make_predictor()
        model.fit(X.take(tr), y.iloc[tr])
        pred = model.predict(X.take(te))
        if list(pred.index) != [X.ids[i] for i in te]:
            raise MemoError(f"{type(model).__name__}.predict returned rows out of order in fold {k}; predictions must align to X.ids.")
        out.iloc[te] = pred[list(y.columns)].to_numpy(float)
        notes += [n for n in getattr(model, "notes_", []) if n not in notes]
    out.attrs["notes"] = notes
    return out


def score_predictions(
    oof: pd.DataFrame, y: pd.DataFrame, groups: np.ndarray, fold_of: np.ndarray, model: str, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Rows of the result table: per fold and pooled, per target; intervals resample whole brands."""
    rows = []
    for target in oof.columns:
        yt, pt = y[target].to_numpy(float), oof[target].to_numpy(float)
        ok = np.isfinite(yt) & np.isfinite(pt)
        for k in [*sorted(set(fold_of[ok].tolist())), "pooled"]:
            sel = ok if k == "pooled" else ok & (fold_of == k)
            s = score_table(yt[sel], pt[sel], n_boot=n_boot, seed=seed, groups=groups[sel])
            rows.append({"model": model, "target": target, "fold": str(k), "n": int(sel.sum()), **s})
    return rows


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model and target: pooled Spearman [95% CI], fold mean ± sd, Pearson, MSE."""
    rows = []
    for (model, target), g in results.groupby(["model", "target"], sort=False):
        pooled = g[g["fold"] == "pooled"].iloc[0]
        per_fold = g[g["fold"] != "pooled"]["spearman"].astype(float)
        rows.append({
            "model": model, "target": target, "n": int(pooled["n"]),
            "spearman": pooled["spearman"], "ci95": f"[{pooled['spearman_lo']:.3f}, {pooled['spearman_hi']:.3f}]",
            "fold_mean": per_fold.mean(), "fold_sd": per_fold.std(ddof=0) if len(per_fold) > 1 else float("nan"),
            "pearson": pooled["pearson"], "mse": pooled["mse"],
        })  # fmt: skip
    return pd.DataFrame(rows)


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


# ----------------------------------------------------------------------------- plots


def _save_figure(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_spearman(summary: pd.DataFrame, results: pd.DataFrame, path: Path) -> None:
    """Pooled Spearman per model with its 95% interval, one panel per target."""
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(summary["target"]))
    fig = Figure(figsize=(5.5 * len(targets), 0.5 + 0.45 * summary["model"].nunique() + 1))
    for i, t in enumerate(targets):
        ax = fig.add_subplot(1, len(targets), i + 1)
        pooled = results[(results["target"] == t) & (results["fold"] == "pooled")]
        y = np.arange(len(pooled))
        s = pooled["spearman"].to_numpy(float)
        err = np.vstack([s - pooled["spearman_lo"].to_numpy(float), pooled["spearman_hi"].to_numpy(float) - s])
        ax.barh(y, np.nan_to_num(s), xerr=np.nan_to_num(err), color="#4c72b0", alpha=0.85, capsize=3)
        ax.set_yticks(y, pooled["model"].tolist())
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("Spearman (pooled out-of-fold, 95% brand bootstrap)")
        ax.set_title(t)
    _save_figure(fig, path)


def plot_scatter(oof_long: pd.DataFrame, model: str, path: Path) -> None:
    """Predicted against true, coloured by fold, one panel per target."""
    from matplotlib.figure import Figure

    d = oof_long[oof_long["model"] == model]
    targets = list(dict.fromkeys(d["target"]))
    fig = Figure(figsize=(4.5 * len(targets), 4.2))
    for i, t in enumerate(targets):
        ax = fig.add_subplot(1, len(targets), i + 1)
        dt = d[d["target"] == t]
        for k, g in dt.groupby("fold"):
            ax.scatter(g["y_true"], g["y_pred"], s=10, alpha=0.7, label=f"fold {k}")
        lo = float(np.nanmin([dt["y_true"].min(), dt["y_pred"].min()]))
        hi = float(np.nanmax([dt["y_true"].max(), dt["y_pred"].max()]))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel(f"true {t}")
        ax.set_ylabel("predicted (out of fold)")
        ax.set_title(model)
        ax.legend(fontsize=7, markerscale=1.5)
    _save_figure(fig, path)


# ----------------------------------------------------------------------------- evaluate


def evaluate_models(
    project,
    models: list[str],
    folds: int | None = None,
    split: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    params: dict[str, dict[str, Any]] | None = None,
    baselines: list[str] | None = None,
) -> pd.DataFrame:
    """Evaluate `models` and the [evaluate] baselines on the same brand-grouped folds; returns the summary.

    `split`: instead of CV, train on the labelled split and score a second labelled split (e.g. an
    official validation split). `params`: per-model overrides of from_config (ablations, runs).
    """
    import typer

    cfg = project.config
    seed = project.seed
    names = list(dict.fromkeys([*(models or []), *(cfg.evaluate.baselines if baselines is None else baselines)]))
    if not names:
        raise MemoError("no model to evaluate; pass --model gbt (or another predictor).")
    for n in names:
        PREDICTORS.get(n)  # unknown names fail here, before any work
    train_split, targets = labelled_targets(project)
    if split is not None and split == train_split:
        raise MemoError(f"--split {split} is the training split; name another labelled split, or leave --split out for cross-validation.")
    if split is not None:
        labelled_targets(project, split)
    out = Path(out) if out else project.workdir / "eval"
    fingerprint = evaluation_fingerprint(project, names, folds or cfg.evaluate.folds, split, device, params)
    done = out / "run.json"
    if done.is_file() and (out / "summary.csv").is_file() and json.loads(done.read_text()).get("fingerprint") == fingerprint:
        summary = pd.read_csv(out / "summary.csv")
        _echo_summary(summary, json.loads(done.read_text())["setup"] + " (up to date: nothing it reads changed; cached in " + str(out) + ")")
        return summary

    oof_frames, result_rows, notes = [], [], []
    fold_table = None
    for name in names:
        t0 = time.perf_counter()
        probe = build_predictor(project, name, device, (params or {}).get(name))
        X, load_notes = load_available(project, train_split, probe.streams)
        y = target_frame(X, targets)
        if split is None:
            n_folds = folds or cfg.evaluate.folds
            fold_list = grouped_kfold(X.groups, n_splits=n_folds, seed=seed)
            oof = cross_val_predict(lambda: build_predictor(project, name, device, (params or {}).get(name)), X, y, fold_list, desc=f"{name} cv")
            fold_of = fold_assignment(fold_list, len(X))
            scored_y, groups, ids = y, X.groups, X.ids
        else:  # train on all of the training split, score the named split: one "fold"
            Xv, more = load_available(project, split, probe.streams)
            load_notes += more
            yv = target_frame(Xv, targets)
            shared = set(X.groups) & set(Xv.groups) - set(X.ids)
            if shared:
                notes.append(f"{len(shared)} brand(s) are in both {train_split} and {split}; the score may be optimistic.")
            oof = probe.fit(X, y).predict(Xv)[targets]
            oof.attrs["notes"] = list(getattr(probe, "notes_", []))
            fold_of = np.zeros(len(Xv), dtype=int)
            scored_y, groups, ids = yv, Xv.groups, Xv.ids
        notes += [f"{name}: {n}" for n in load_notes]
        notes += [f"{name}: {n}" for n in oof.attrs.get("notes", [])]
        result_rows += score_predictions(oof, scored_y, np.asarray(groups), fold_of, name, n_boot=cfg.evaluate.bootstrap, seed=seed)
        long = oof.reset_index().melt(id_vars="id", var_name="target", value_name="y_pred")
        truth = scored_y.reset_index().melt(id_vars="id", var_name="target", value_name="y_true")
        long = long.merge(truth, on=["id", "target"])
        meta = pd.DataFrame({"id": list(ids), "group": np.asarray(groups), "fold": fold_of})
        oof_frames.append(long.merge(meta, on="id").assign(model=name)[["id", "group", "fold", "model", "target", "y_true", "y_pred"]])
        if fold_table is None:
            fold_table = meta
        typer.echo(f"{name}: done in {time.perf_counter() - t0:.1f}s", err=True)

    results = pd.DataFrame(result_rows)
    summary = summary_table(results)
    oof_long = pd.concat(oof_frames, ignore_index=True)
    grouping = "brand-grouped" if fold_table is not None and fold_table["group"].nunique() < len(fold_table) else "plain (one video per group)"
    setup = f"split {split} (trained on {train_split})" if split else f"{grouping} {folds or cfg.evaluate.folds}-fold CV on {train_split}, seed {seed}"
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "oof_predictions.csv", oof_long.to_csv(index=False))
    atomic_write_text(out / "folds.csv", fold_table.to_csv(index=False))
    md = f"# Evaluation: {setup}\n\n{to_markdown(summary)}\n## Per fold\n\n" + to_markdown(
        results[["model", "target", "fold", "n", "spearman", "spearman_lo", "spearman_hi", "pearson", "mse"]]
    )
    if notes:
        md += "\n## Notes\n\n" + "".join(f"- {n}\n" for n in dict.fromkeys(notes))
    atomic_write_text(out / "results.md", md)
    atomic_write_json(out / "run.json", {"setup": setup, "models": names, "targets": targets, "notes": list(dict.fromkeys(notes)),
                                          "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "fingerprint": fingerprint})  # fmt: skip
    plot_spearman(summary, results, out / "spearman.png")
    for name in names:
        plot_scatter(oof_long, name, out / f"scatter_{name}.png")

    _echo_summary(summary, setup)
    for n in dict.fromkeys(notes):
        typer.echo(f"note: {n}", err=True)
    typer.echo(f"tables, out-of-fold predictions and plots in {out}", err=True)
    return summary


def _echo_summary(summary: pd.DataFrame, title: str) -> None:
    from memo.cli import echo_table

    shown = summary.assign(**{c: summary[c].map(lambda v: f"{v:.3f}") for c in ("spearman", "fold_mean", "fold_sd", "pearson", "mse")})
    echo_table(shown.set_index(["model", "target"]), title=title)


def evaluation_fingerprint(project, names: list[str], folds: int, split: str | None, device: str, params) -> str:
    """A hash of everything `evaluate_models` reads: each model's resolved parameters and the feature-store
    tables behind its streams (key, count and time of last update), the dataset files, the folds, seed,
    targets and memo's version. The same fingerprint means the same results, so they are not recomputed."""
    import memo
    from memo.features.load import EXTRACTOR_STREAMS, catalog
    from memo.streams import canonical
    from memo.submission.runs import LOCATION_PARAMS, _hash, data_signature

    parts: dict[str, Any] = {}
    for name in names:
        probe = build_predictor(project, name, device, (params or {}).get(name))
        prefixes = sorted({canonical(s).partition(".")[0] for s in probe.streams} & {*EXTRACTOR_STREAMS, "rationale", "ratings"})
        tables = {n: {k: t.read_manifest().get(k) for k in ("key", "count", "dims")} for n, (t, _, _) in catalog(project, prefixes).items()}
        parts[name] = {"params": {k: v for k, v in probe.get_params().items() if k not in LOCATION_PARAMS}, "streams": list(probe.streams), "store": tables}
    cfg = project.config
    parts["setup"] = {"folds": folds, "split": split, "seed": project.seed, "targets": project.targets, "bootstrap": cfg.evaluate.bootstrap,
                      "data": data_signature(project), "memo": memo.__version__}  # fmt: skip
    return _hash(parts)


# ----------------------------------------------------------------------------- train and predict


def _cv_scores(project, model: str) -> dict[str, Any] | None:
    """Pooled CV Spearman of `model` from the last `memo evaluate`, if it evaluated this model."""
    p = project.workdir / "eval" / "summary.csv"
    if not p.is_file():
        return None
    s = pd.read_csv(p)
    s = s[s["model"] == model]
    return {r.target: {"spearman": r.spearman, "ci95": r.ci95, "fold_mean": r.fold_mean} for r in s.itertuples()} or None


def train_model(project, model: str, device: str = "auto", params: dict[str, Any] | None = None) -> Path:
    """Fit `model` on the whole labelled split; save it with its metadata under <workdir>/models/<model>/."""
    train_split, targets = labelled_targets(project)
    est = build_predictor(project, model, device, params)
    X, notes = load_available(project, train_split, est.streams)
    y = target_frame(X, targets)
    est.fit(X, y)
    folder = project.workdir / "models" / model
    # save beside, then swap: a killed save never leaves a half-written model where predict looks
    partial = folder.parent / f".{model}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    est.save(partial)
    described = est.describe() if hasattr(est, "describe") else {}
    from memo.baselines.gbt import library_versions

    atomic_write_json(partial / "meta.json", {
        "predictor": model, "class": type(est).__name__, "params": est.get_params(), "targets": targets,
        "train_split": train_split, "n_videos": len(X), "streams": sorted(X.streams),
        "features": described.get("features") or sorted(X.streams), "notes": notes + list(getattr(est, "notes_", [])),
        "inner_cv_spearman": described.get("inner_cv_spearman"), "cv": _cv_scores(project, model),
        "config": project.config.to_dict(), "versions": library_versions(), "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })  # fmt: skip
    if folder.exists():
        old = folder.parent / f".{model}.old"
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        partial.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(folder)
    return folder


def load_trained(project, model: str) -> tuple[Predictor, dict[str, Any]]:
    folder = project.workdir / "models" / model
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise MemoError(f"no trained {model} in {folder}; run `memo train {model}` first.")
    meta = json.loads(meta_path.read_text())
    return PREDICTORS.get(meta["predictor"]).load(folder), meta


def predict_model(project, model: str, split: str | None = None, out: str | Path | None = None, device: str = "auto") -> pd.DataFrame:
    """Predictions of a trained model for a split (default: the test split), written to `out` as CSV if given."""
    split = split or project.dataset.test_split
    if split is None:
        raise MemoError("the dataset has no test split; pass --split NAME to choose one.")
    if split not in project.dataset.splits:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(project.dataset.splits)}.")
    est, meta = load_trained(project, model)
    X, _ = load_available(project, split, est.streams)
    df = est.predict(X)
    if out is not None:
        atomic_write_text(Path(out), df.to_csv(index_label="id"))
    return df


# ----------------------------------------------------------------------------- a run as configured


def evaluate_run(project, run: str, device: str = "auto", baselines: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cross-validate [runs.RUN] exactly as `memo submit` would (same streams, same cache), and the
    [evaluate] baselines on the same repeated folds; returns (table, info).

    The table has one row per model and target: `expected` (mean pooled Spearman over the repeats,
    the figure to expect on unseen brands), `min`/`max` over the repeats, the first split's
    Spearman with its 95% interval from resampling brands, and the streams the model `reads`.
    Everything is cached in the run's folder
    (<workdir>/runs/<run>/<fingerprint>/), so `memo submit --run RUN` afterwards reuses the work,
    and a second `memo evaluate --run RUN` with nothing changed computes nothing.
    """
    from memo.submission.runs import _cache_dir, _labels, compute_run, cv_scores, grouping, repeated_cross_val, repeats_of, resolve_run

    cfg = project.config
    plan = resolve_run(project, run, device)
    result = compute_run(project, plan, device)
    names = list(cfg.evaluate.baselines if baselines is None else baselines)
    cached = _cache_dir(project, plan) / "baselines.csv"
    have = pd.read_csv(cached, dtype={"id": str}) if cached.is_file() else pd.DataFrame(columns=["model", "repeat", "id", *plan.targets])
    reads = f"runs {', '.join(plan.run.blend)} ({'weighted mean' if plan.run.weights else 'rank average'})" if plan.is_blend else (", ".join(result.consumed or plan.streams) or "the split's texts")
    rows = _score_rows(f"run {run}", result.cv_scores, reads)
    reps = repeats_of(result.cv)
    notes: list[str] = []
    for name in names:
        got = have[have["model"] == name]
        probe = build_predictor(project, name, device)
        if got.empty:
            X, load_notes = load_available(project, project.dataset.train_split, probe.streams)
            notes += [f"{name}: {n}" for n in load_notes]
            X, y = _labels(project, plan, X)
            oof = repeated_cross_val(project, lambda: build_predictor(project, name, device), X, y[plan.targets], name, repeats=len(reps))
            got = oof.rename_axis(["repeat", "id"]).reset_index().assign(model=name)
            have = pd.concat([have, got], ignore_index=True)
            atomic_write_text(cached, have.to_csv(index=False, float_format="%.10g"))
        oof = got.set_index(["repeat", "id"])[plan.targets]
        rows += _score_rows(name, cv_scores(project, plan.targets, oof), ", ".join(probe.streams) or "the split's texts")
    info = {
        "run": run, "predictor": plan.run.predictor, "description": plan.run.description, "streams": result.consumed or plan.streams, "reads": reads,
        "scheme": f"{result.folds}-fold {grouping(project)} cross-validation on {project.dataset.train_split}, repeated {len(reps)} time(s)",
        "dropped": plan.dropped, "notes": notes,
    }  # fmt: skip
    return pd.DataFrame(rows), info


def _score_rows(model: str, scores: dict[str, dict[str, float]], reads: str) -> list[dict[str, Any]]:
    return [{"model": model, "target": t, "expected": s["expected"], "min": s["expected_min"], "max": s["expected_max"], "repeats": s["repeats"],
             "first_split": s["spearman"], "ci95": f"[{s['spearman_lo']:.3f}, {s['spearman_hi']:.3f}]", "reads": reads} for t, s in scores.items()]  # fmt: skip
