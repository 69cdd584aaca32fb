"""The sections of `memo report` that show cross-validation: `memo evaluate`'s table of every model
beside the baselines, predicted against true, Spearman within each brand, and `memo ablate
mindmem`'s variants.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memo.evaluation.report_page import Block, Folded, Heading, Page, Paragraph, Section, missing, new_figure
from memo.evaluation.report_sections import report_targets

if TYPE_CHECKING:
    from memo.project import Project


def _eval_files(project: Project) -> dict[str, Path]:
    d = project.workdir / "eval"
    return {
        k: d / f
        for k, f in (
            ("summary", "summary.csv"),
            ("results", "results.csv"),
            ("oof", "oof_predictions.csv"),
            ("run", "run.json"),
        )
    }


def evaluation_section(project: Project, page: Page) -> Section:
    """The CV table of every evaluated model beside the baselines, with 95% intervals, and the per-fold
    scores."""
    from memo.evaluation.plots import plot_spearman

    s = Section("evaluation", "Cross-validation")
    f = _eval_files(project)
    if not f["summary"].is_file() or not f["results"].is_file():
        s.missing = True
        s.parts.append(
            missing(
                f"No evaluation in {f['summary'].parent} yet; run `memo evaluate --model "
                "gbt,mindmem` (the simple baselines run beside on the same folds)."
            )
        )
        return s
    summary = pd.read_csv(f["summary"])
    results = pd.read_csv(f["results"])
    run = json.loads(f["run"].read_text()) if f["run"].is_file() else {}
    if run.get("setup"):
        s.parts.append(
            Paragraph(
                f"{run['setup']} (written {run.get('written', '?')}). Spearman pooled over the "
                "out-of-fold predictions; "
                "the 95% interval resamples whole brands; fold mean ± sd over the folds.",
                "caption",
            )
        )
    shown = summary.set_index(["model", "target"])
    s.parts.append(page.table("cv-summary", shown))
    s.parts.append(
        page.png(
            "cv-spearman",
            lambda path: plot_spearman(summary, results, path),
            "Pooled out-of-fold Spearman per model with its 95% brand-bootstrap interval.",
        )
    )
    per_fold = results[results["fold"].astype(str) != "pooled"].pivot_table(
        index=["model", "target"], columns="fold", values="spearman"
    )
    per_fold.columns = [f"fold {c}" for c in per_fold.columns]
    s.parts.append(Folded("Spearman per fold", [page.table("cv-per-fold", per_fold)]))
    s.parts += _notes(run.get("notes") or [])
    return s


def _notes(notes: list[str]) -> list[Block]:
    """A stage's notes: inline when few, folded away when many."""
    body: list[Block] = [Paragraph(n, "note") for n in notes]
    return body if len(notes) <= 3 else [Folded(f"{len(notes)} notes from this stage", body)]


def _read_oof(project: Project, s: Section) -> pd.DataFrame | None:
    """memo evaluate's out-of-fold predictions, or None after marking the section as missing them."""
    f = _eval_files(project)["oof"]
    if not f.is_file():
        s.missing = True
        s.parts.append(missing("No out-of-fold predictions yet; run `memo evaluate --model gbt`."))
        return None
    return pd.read_csv(f, dtype={"id": str, "group": str})


def scatter_section(project: Project, page: Page) -> Section:
    """Out-of-fold predicted against true, one figure per model (memo.evaluation.compare's own plot)."""
    from memo.evaluation.plots import plot_scatter

    s = Section("scatter", "Predicted against true")
    oof = _read_oof(project, s)
    if oof is None:
        return s
    for model in dict.fromkeys(oof["model"]):
        s.parts.append(
            page.png(
                f"scatter-{model}",
                lambda path, m=model: plot_scatter(oof, m, path),
                f"{model}: out-of-fold prediction against the human score, coloured by fold; the "
                "grey line is y = x.",
            )
        )
    return s


def brand_section(project: Project, page: Page) -> Section:
    """Spearman within each brand of the out-of-fold predictions: does a model rank a brand's own ads?"""
    from memo.metrics import spearman

    s = Section("brands", "Per-brand Spearman")
    oof = _read_oof(project, s)
    if oof is None:
        return s
    rows = []
    for (model, target, group), g in oof.groupby(["model", "target", "group"], sort=True):
        ok = g["y_true"].notna() & g["y_pred"].notna()
        rows.append(
            {
                "model": model,
                "target": target,
                "brand": group,
                "videos": int(ok.sum()),
                "spearman": spearman(g.loc[ok, "y_true"], g.loc[ok, "y_pred"]) if ok.sum() >= 3 else np.nan,
            }
        )
    df = pd.DataFrame(rows)
    s.parts.append(
        Paragraph(
            "Spearman between out-of-fold predictions and human scores among the videos of one "
            "brand (brands with at least "
            "3 videos; a brand whose scores or predictions are all equal has none). Few videos per "
            "brand make these noisy.",
            "caption",
        )
    )
    models = list(dict.fromkeys(df["model"]))
    scored = set(df["target"])
    for target in [t for t in dict.fromkeys([*report_targets(project), *df["target"]]) if t in scored]:
        d = df[df["target"] == target]
        wide = d.pivot_table(index="brand", columns="model", values="spearman", dropna=False)[models]
        wide.insert(0, "videos", d.groupby("brand")["videos"].max())
        wide = wide.sort_values("videos", ascending=False)
        s.parts.append(Heading(target))
        mean = wide[models].mean(axis=0)
        means = ", ".join(f"{m} {v:.3f}" for m, v in mean.items() if np.isfinite(v))
        s.parts.append(
            Paragraph(
                f"Mean over brands: {means}" if means else "No brand has a defined Spearman.", "caption"
            )
        )
        s.parts.append(
            page.figure(
                f"brand-spearman-{target}",
                _brand_heatmap(wide, models, target),
                f"Per-brand Spearman of each model on {target} (brand, videos); n/a: fewer than 3 "
                "videos, or constant scores or predictions within the brand.",
            )
        )
        s.parts.append(Folded("table", [page.table(f"brand-spearman-{target}", wide)]))
    return s


def _brand_heatmap(wide: pd.DataFrame, models: list[str], target: str):
    """Brands (rows, with their video counts) by models, coloured by Spearman; n/a where it is undefined."""
    fig, axes = new_figure(1.1 * len(models) + 3.0, 0.28 * len(wide) + 1.4)
    ax = axes[0][0]
    M = wide[models].to_numpy(float)  # (brands, models)
    ax.set_facecolor("#e8e8e8")  # grey = no Spearman (constant scores or predictions within the brand)
    im = ax.imshow(np.ma.masked_invalid(M), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(wide)), [f"{b} ({n})" for b, n in zip(wide.index, wide["videos"])], fontsize=7)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(
                j,
                i,
                f"{M[i, j]:.2f}" if np.isfinite(M[i, j]) else "n/a",
                ha="center",
                va="center",
                fontsize=6,
            )
    fig.colorbar(im, ax=ax, label="Spearman")
    ax.set_title(target, fontsize=10)
    return fig


def ablation_section(project: Project, page: Page) -> Section:
    """The MindMem ablation table and bars (memo ablate mindmem)."""
    s = Section("ablation", "MindMem ablation")
    d = project.workdir / "ablation"
    if not (d / "ablation.csv").is_file():
        s.missing = True
        s.parts.append(missing(f"No ablation in {d} yet; run `memo ablate mindmem`."))
        return s
    from memo.evaluation.ablation import plot_ablation

    table = pd.read_csv(d / "ablation.csv")
    run = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
    if run.get("setup"):
        s.parts.append(
            Paragraph(
                run["setup"] + ". Spearman pooled over out-of-fold predictions, 95% interval over brands. "
                "paper_lambda is MindMem's own figure on another dataset (LAMBDA), for orientation only.",
                "caption",
            )
        )
    s.parts.append(
        page.png(
            "ablation",
            lambda path: plot_ablation(table, path),
            "MindMem variants: Spearman with 95% brand-bootstrap intervals, coloured by section.",
        )
    )
    shown = table.assign(
        ci95=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["spearman_lo"], table["spearman_hi"])]
    )
    cols = [
        c
        for c in (
            "section",
            "variant",
            "target",
            "n",
            "spearman",
            "ci95",
            "fold_mean",
            "pearson",
            "paper_lambda",
        )
        if c in shown
    ]
    s.parts.append(page.table("ablation", shown[cols].set_index(["section", "variant", "target"])))
    s.parts += _notes(run.get("notes") or [])
    return s
