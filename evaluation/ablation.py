"""MindMem ablations (the paper's Tables 1 and 2), reproducible with one command: `memo ablate mindmem`.

Every variant is scored by brand-grouped cross-validation on the same folds
(memo.crossval.cross_val_predict), Spearman pooled over the out-of-fold predictions with a 95%
interval from resampling whole brands:

- modalities: each one alone, every pair, all of them (the [mindmem] modalities that have data);
- pooling: masked mean, masked max, self-attention pooling, all without cross-attention;
- cross-attention: self-attention pooling plus cross-attention (the full model);
- zeroed at inference: the full model's fold models, each modality masked out at predict time
  (the model sees it as missing, i.e. its learned 'missing' embedding; nothing is retrained).

Written under <workdir>/ablation/ (or `out`): ablation.csv, ablation.md, ablation.png, and
cache/<key>.csv, the out-of-fold predictions of each variant, so a killed run resumes where it
stopped and a rerun with nothing changed costs nothing.
"""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.crossval import (
    build_predictor,
    cross_val_predict,
    labelled_targets,
    score_predictions,
    target_frame,
)
from memo.errors import MemoError
from memo.evaluation.compare import Evaluation, to_markdown
from memo.evaluation.plots import save_figure
from memo.features.load import load_available
from memo.predictors import Predictor
from memo.progress import say
from memo.splits import fold_assignment, grouped_kfold
from memo.store import atomic_write_json, atomic_write_text, stable_hash
from memo.streams import select

# MindMem's reported Spearman on LAMBDA (arXiv 2502.18371, Tables 1 and 2), for the docs and the table
PAPER_LAMBDA = {
    "video": 0.564,
    "text": 0.589,
    "audio": 0.336,
    "video+audio+text": 0.631,
    "mean pooling": 0.424,
    "max pooling": 0.462,
    "self-attention pooling": 0.614,
    "self + cross attention": 0.631,
}


class _KeepFoldModels(Predictor):
    """A MindMem that, once fitted, leaves itself in `shelf` with the ids it was trained on."""

    def __init__(self, model: Predictor, shelf: list):
        self.model = model
        self.shelf = shelf

    def fit(self, X, y):
        self.model.fit(X, y)
        self.shelf.append((tuple(X.ids), self.model))
        return self

    def predict(self, X):
        return self.model.predict(X)


class _ZeroedAtInference(Predictor):
    """The full model trained on this fold (taken from the shelf), predicting with modalities masked out.

    With no shelved model for these training ids (a resumed run whose full model came from the
    cache) it trains one: training is deterministic for a seed, so it is the same model.
    """

    def __init__(self, make_full, shelf: list, drop: list[str]):
        self.make_full = make_full
        self.shelf = shelf
        self.drop = drop

    def fit(self, X, y):
        ids = tuple(X.ids)
        found = [m for i, m in self.shelf if i == ids]
        model = found[0] if found else self.make_full().fit(X, y)
        self.model_ = copy.copy(model)  # shares the weights; only inference_drop differs
        self.model_.inference_drop = list(self.drop)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def variants(modalities: list[str]) -> list[dict[str, Any]]:
    """The ablation grid for the modalities that have data: section, variant name, MindMem overrides.

    The modality rows use the full architecture (self-attention pooling, cross-attention), so the
    row with every modality and 'self + cross attention' are one model, trained once.
    """
    full = {"use": list(modalities), "pooling": "attention", "cross_attention": True}
    rows = []
    sizes = sorted({1, 2, len(modalities)})
    for k in sizes:
        for combo in itertools.combinations(modalities, k):
            rows.append(
                {
                    "section": "modalities",
                    "variant": "+".join(combo),
                    "params": {**full, "use": list(combo)},
                    "drop": [],
                }
            )
    for pooling, name in (
        ("mean", "mean pooling"),
        ("max", "max pooling"),
        ("attention", "self-attention pooling"),
    ):
        rows.append(
            {
                "section": "pooling",
                "variant": name,
                "params": {**full, "pooling": pooling, "cross_attention": False},
                "drop": [],
            }
        )
    if len(modalities) > 1:
        rows.append(
            {
                "section": "cross-attention",
                "variant": "self + cross attention",
                "params": dict(full),
                "drop": [],
            }
        )
        for m in modalities:
            rows.append(
                {
                    "section": "zeroed at inference",
                    "variant": f"{'+'.join(modalities)}, {m} zeroed",
                    "params": dict(full),
                    "drop": [m],
                }
            )
    for r in rows:
        r["paper_lambda"] = PAPER_LAMBDA.get(r["variant"], np.nan)
        r["full"] = r["params"] == full and not r["drop"]
    return rows


def plot_ablation(table: pd.DataFrame, path: Path) -> None:
    """Horizontal bars, one per variant, coloured by section, 95% brand-bootstrap intervals; a panel per
    target."""
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(table["target"]))
    sections = list(dict.fromkeys(table["section"]))
    colours = dict(zip(sections, ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]))
    n = table["variant"].nunique()
    # constrained: long variant names must not overlap the next panel
    fig = Figure(figsize=(7.5 * len(targets), 1.5 + 0.38 * n), layout="constrained")
    for i, t in enumerate(targets):
        ax = fig.add_subplot(1, len(targets), i + 1)
        d = table[table["target"] == t].reset_index(drop=True)
        s = d["spearman"].to_numpy(float)
        err = np.vstack([s - d["spearman_lo"].to_numpy(float), d["spearman_hi"].to_numpy(float) - s])
        ax.barh(
            np.arange(len(d)),
            np.nan_to_num(s),
            xerr=np.nan_to_num(np.clip(err, 0, None)),
            capsize=3,
            color=[colours[x] for x in d["section"]],
            alpha=0.9,
        )
        ax.set_yticks(np.arange(len(d)), d["variant"].tolist(), fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("Spearman (pooled out-of-fold, 95% brand bootstrap)")
        ax.set_title(f"MindMem ablation: {t}")
    from matplotlib.patches import Patch

    # one legend for the figure, in its own row under the panels (inside a panel it covered the axis label)
    fig.legend(
        handles=[Patch(color=colours[s], label=s) for s in sections],
        fontsize=8,
        loc="outside lower center",
        ncol=len(sections),
    )
    save_figure(fig, path)


def ablate_mindmem(
    project, folds: int | None = None, out: str | Path | None = None, device: str = "auto"
) -> Evaluation:
    """Run the MindMem ablation grid on brand-grouped CV; write CSV, Markdown and a bar plot.

    Returns an Evaluation whose `summary` is the full table (one row per variant and target;
    `shown(summary)` is the short form the CLI prints).
    """
    cfg = project.config
    seed = project.seed
    out = Path(out) if out else project.workdir / "ablation"
    train_split, targets = labelled_targets(project)
    probe = build_predictor(project, "mindmem", device)
    X, notes = load_available(project, train_split, probe.streams)
    y = target_frame(X, targets)
    available = _modalities_with_data(probe, X, train_split, notes)
    n_folds = folds or cfg.evaluate.folds
    fold_list = grouped_kfold(X.groups, n_splits=n_folds, seed=seed)
    fold_of = fold_assignment(fold_list, len(X))

    grid = variants(available)
    # what makes a cached out-of-fold table valid: the data, folds, targets, config and the variant
    base_key = {
        "ids": stable_hash({"ids": list(X.ids)}),
        "folds": fold_of.tolist(),
        "targets": targets,
        "mindmem": probe.get_params(),
        "streams": sorted(X.streams),
    }
    shelf: list = []  # fold models of the full model, reused by the zeroed-at-inference variants

    def make(params: dict[str, Any]):
        return lambda: build_predictor(project, "mindmem", device, params)

    rows = []
    say(
        f"mindmem ablation: {len(grid)} variants x {n_folds} brand-grouped folds on {train_split} "
        f"({len(X)} videos); modalities: {', '.join(available)}"
    )
    for v in grid:
        t0 = time.perf_counter()
        cache = out / "cache" / f"{stable_hash({**base_key, 'params': v['params'], 'drop': v['drop']})}.csv"
        oof = _variant_predictions(v, cache, make(v["params"]), shelf, X, y, fold_list)
        scored = score_predictions(
            oof, y, np.asarray(X.groups), fold_of, v["variant"], n_boot=cfg.evaluate.bootstrap, seed=seed
        )
        rows += _pooled_rows(v, scored, time.perf_counter() - t0)
        say(
            f"  {v['variant']}: "
            + ", ".join(f"{r['target']} {r['spearman']:.3f}" for r in rows[-len(targets) :])
        )

    table = pd.DataFrame(rows)
    notes = list(dict.fromkeys(notes))
    setup = (
        f"brand-grouped {n_folds}-fold CV on {train_split} ({len(X)} videos), seed {seed}, the same folds "
        "for every variant"
    )
    run = {
        "setup": setup,
        "modalities": available,
        "targets": targets,
        "mindmem": probe.get_params(),
        "notes": notes,
    }
    _write_ablation(out, table, run)
    return Evaluation(table, setup, out, notes)


def _variant_predictions(v: dict[str, Any], cache: Path, make, shelf: list, X, y, fold_list) -> pd.DataFrame:
    """Variant `v`'s out-of-fold predictions: read from its cache file, else cross-validated and cached.

    `make()` builds the variant's MindMem. The full model leaves its fold models on `shelf`; a
    zeroed-at-inference variant predicts with them (memo.evaluation.ablation._ZeroedAtInference).
    """
    if cache.is_file():
        oof = pd.read_csv(cache, index_col="id")
        oof.index = oof.index.astype(str)
        return oof.loc[list(X.ids), list(y.columns)]
    if v["drop"]:
        make_pred = lambda: _ZeroedAtInference(make, shelf, v["drop"])  # noqa: E731
    elif v["full"]:
        make_pred = lambda: _KeepFoldModels(make(), shelf)  # noqa: E731
    else:
        make_pred = make
    oof = cross_val_predict(make_pred, X, y, fold_list, desc=v["variant"])
    atomic_write_text(cache, oof.to_csv(index_label="id"))
    return oof


def _write_ablation(out: Path, table: pd.DataFrame, run: dict[str, Any]) -> None:
    """<out>/ablation.csv (every row), ablation.md (the short table, the setup and the notes), run.json
    (`run`: the setup, modalities, targets, MindMem's settings, the notes) and ablation.png."""
    atomic_write_text(out / "ablation.csv", table.to_csv(index=False))
    md = (
        f"# MindMem ablation\n\n{run['setup']}. Spearman pooled over out-of-fold predictions; 95% interval "
        "resamples whole brands.\n"
    )
    md += (
        "`paper_lambda`: MindMem's own figure on LAMBDA (another dataset), for orientation only.\n\n"
        + to_markdown(shown(table))
    )
    if run["notes"]:
        md += "\n## Notes\n\n" + "".join(f"- {n}\n" for n in run["notes"])
    atomic_write_text(out / "ablation.md", md)
    atomic_write_json(out / "run.json", run)
    plot_ablation(table, out / "ablation.png")


def _modalities_with_data(probe, X, split: str, notes: list[str]) -> list[str]:
    """The [mindmem] modalities with at least one present stream: the grid is built over these only."""
    groups_of = probe._modality_map()
    available = [
        m
        for m, pats in groups_of.items()
        if any(
            X.streams[s].dim > 0 and X.streams[s].present.any()
            for s in select(pats, sorted(X.streams), strict=False)
        )
    ]
    if not available:
        raise MemoError(
            f"none of the mindmem modalities ({', '.join(groups_of)}) has features for {split}; "
            "run `memo features` first, or set [mindmem] use to modalities that have data."
        )
    left_out = [m for m in groups_of if m not in available]
    if left_out:
        notes.append(f"modalities without data, not in the grid: {', '.join(left_out)}")
    return available


def _pooled_rows(v: dict[str, Any], scored: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """One row per target for variant `v`: the pooled scores, the mean over folds, the paper's figure."""
    rows = []
    for r in scored:
        if r["fold"] != "pooled":
            continue
        per_fold = [q["spearman"] for q in scored if q["target"] == r["target"] and q["fold"] != "pooled"]
        rows.append(
            {
                "section": v["section"],
                "variant": v["variant"],
                "target": r["target"],
                "n": r["n"],
                "spearman": r["spearman"],
                "spearman_lo": r["spearman_lo"],
                "spearman_hi": r["spearman_hi"],
                "fold_mean": float(np.nanmean(per_fold)) if np.isfinite(per_fold).any() else np.nan,
                "pearson": r["pearson"],
                "mse": r["mse"],
                "paper_lambda": v["paper_lambda"],
                "seconds": round(seconds, 1),
            }
        )
    return rows


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The ablation table as people read it: section, variant, target, Spearman [95% CI], fold mean, the
    paper's figure."""
    out = table.assign(
        ci95=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["spearman_lo"], table["spearman_hi"])]
    )
    return out[["section", "variant", "target", "spearman", "ci95", "fold_mean", "paper_lambda"]]
