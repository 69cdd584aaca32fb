"""The sections of `memo report`: each reads what a stage left on disk and returns it as data.

A section is a function `(project, page) -> Section` whose blocks (memo.evaluation.report_page)
are paragraphs, headings, tables (DataFrames through `page.table`) and figures (matplotlib
through `page.figure`, or another stage's own plot through `page.png`); none writes HTML.
A section whose inputs are missing says so and names the command that makes them.
memo.evaluation.report lists them in page order.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memo.evaluation.report_page import Block, Folded, Heading, Page, Paragraph, Section, missing, new_figure

if TYPE_CHECKING:
    from memo.project import Project


# ----------------------------------------------------------------------------- reading what stages wrote


def _labelled_table(project: Project) -> pd.DataFrame:
    return project.dataset.labelled().table


def _targets(project: Project) -> list[str]:
    try:
        return project.targets
    except Exception:  # a project whose configured targets are wrong still gets a report
        return list(project.dataset.labelled().target_columns)


# ----------------------------------------------------------------------------- sections


def overview_section(project: Project, page: Page) -> Section:
    import importlib.metadata as md

    cfg = project.config
    s = Section("overview", "Project")
    rows = {
        "memo.toml": str(cfg.path) if cfg.path else "(defaults; no memo.toml)",
        "dataset": str(project.data_path),
        "layout": project.dataset.layout,
        "targets": ", ".join(_targets(project)),
        "work folder": str(project.workdir),
        "seed": str(project.seed),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "memo version": md.version("memo") if _installed("memo") else "unknown",
    }
    models = {role: getattr(cfg.models, role) for role in ("vit", "e5", "audio", "llm")}
    for role, name in models.items():
        rows[f"model: {role}"] = name
    df = pd.DataFrame({"value": rows})
    s.parts.append(page.table("project", df))
    tiny = [f"{role} = {name}" for role, name in models.items() if str(name).startswith("tiny:")]
    if tiny:
        s.parts.append(
            Paragraph(
                "This project uses tiny randomly initialised models ("
                + ", ".join(tiny)
                + "): they check the pipeline "
                "end to end; numbers that rest on them carry no knowledge.",
                "warning",
            )
        )
    s.parts.append(
        Paragraph(
            "Every score on this page is a prediction or a cross-validated measurement of a model "
            "against the "
            "dataset's human scores; nothing here is measured human recall of new material.",
            "note",
        )
    )
    return s


def _installed(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def dataset_section(project: Project, page: Page) -> Section:
    """Per-split counts and modalities, and the distribution of each target."""
    from memo.data_check import summarize

    ds = project.dataset
    s = Section("dataset", "Dataset")
    summary = summarize(ds)
    s.parts.append(
        page.table(
            "dataset-summary",
            summary.T,
            caption="One column per split: videos, brands, targets (mean ± sd [min, max]), videos with "
            "each modality.",
        )
    )
    if ds.problems:
        s.parts.append(
            Paragraph(
                f"{len(ds.errors)} defect(s) and {len(ds.problems) - len(ds.errors)} note(s) in "
                "the dataset; `memo data check` lists them.",
                "note",
            )
        )
    table = _labelled_table(project)
    targets = _targets(project)
    if targets:
        fig, axes = new_figure(3.2 * len(targets) + 0.4, 2.8, ncols=len(targets))
        for ax, t in zip(axes[0], targets):
            v = pd.to_numeric(table[t], errors="coerce").dropna()
            ax.hist(v, bins=min(30, max(5, len(v) // 5)), color="#4c72b0", edgecolor="white")
            ax.set_title(t, fontsize=10)
            ax.set_xlabel("score")
            ax.set_ylabel("videos")
        s.parts.append(
            page.figure(
                "targets",
                fig,
                f"Distribution of the targets on the {ds.train_split} split ({len(table)} videos).",
            )
        )
        groups = table["group"].value_counts()
        per_brand = pd.DataFrame({"videos": groups})
        for t in targets:
            per_brand[f"mean {t}"] = pd.to_numeric(table[t], errors="coerce").groupby(table["group"]).mean()
        per_brand.index.name = "brand"
        brands = page.table("brands", per_brand.sort_values("videos", ascending=False))
        s.parts.append(Folded(f"{len(per_brand)} brands of the {ds.train_split} split", [brands]))
    return s


# ----------------------------------------------------------------------------- evaluation (memo evaluate)


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
    for target in [t for t in dict.fromkeys([*_targets(project), *df["target"]]) if t in set(df["target"])]:
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


def stats_section(project: Project, page: Page) -> Section:
    """Each video statistic (pacing, complexity, emotion ...) against each target: Spearman over the labelled
    split."""
    s = Section("stats", "Video statistics against the targets")
    split = project.dataset.train_split
    table = _labelled_table(project)
    if (
        "video_path" in table
        and table["video_path"].isna().all()
        and table.get("frames_dir", pd.Series(dtype=object)).isna().all()
    ):
        s.missing = True
        s.parts.append(
            missing(
                f"The {split} split has no video files (VIDEM's public dev set ships only its "
                "CSV), so there are no "
                "video statistics to set against its scores; with the videos in <split>/videos/, "
                "run `memo features --extractors stats`."
            )
        )
        return s
    loaded = _statistics_and_ratings(project, split, s)
    if loaded is None:
        return s
    ids, st, names = loaded
    present = st.present
    if not present.any():
        s.missing = True
        s.parts.append(
            missing(
                f"The {split} split has no video statistics (no videos to measure?); run `memo "
                "features --extractors stats`."
            )
        )
        return s
    # (n, K), NaN = missing
    V = st.values[:, 0, :][present] if st.values.shape[1] == 1 else st.pooled()[present]
    table = table.loc[[i for i, ok in zip(ids, present) if ok]]
    targets = _targets(project)
    empty = [name for k, name in enumerate(names) if np.isfinite(V[:, k]).sum() < 3]
    if empty:  # e.g. ratings a tiny random writer never wrote as a number: nothing to correlate
        s.parts.append(Paragraph(f"Left out, fewer than 3 videos have a value: {', '.join(empty)}.", "note"))
    df = _statistics_against_targets(project, V, names, empty, table, targets)
    s.parts.append(
        Paragraph(
            f"Spearman of each statistic with each target over the {int(present.sum())} {split} "
            "videos that have statistics; "
            "intervals resample whole brands. These are associations in this dataset, not causes.",
            "caption",
        )
    )
    s.parts.append(page.table("stats-vs-targets", df))
    s.parts += _statistics_figures(page, df, V, names, table, targets)
    return s


def _statistics_and_ratings(project: Project, split: str, s: Section):
    """(video ids, one Stream of statistics then aspect ratings, their names), or None after marking the
    section as missing them."""
    from memo.errors import MemoError
    from memo.features import load_features
    from memo.store import Stream

    try:
        X = load_features(project, split, ["stats"])
    except MemoError as e:
        s.missing = True
        hint = "" if "memo features" in str(e) else " Run `memo features --extractors stats`."
        s.parts.append(missing(f"No video statistics yet: {e}{hint}"))
        return None
    st = X.streams["stats"]
    names = st.names or [f"stat_{k}" for k in range(st.dim)]
    try:  # the writer's 1-10 aspect ratings (emotion, humor, ...) are statistics of the ad too
        R = load_features(project, split, ["ratings"]).streams["ratings"]
        if R.present.any():
            # (N, K + A); NaN where a video lacks one
            pooled = np.concatenate([st.pooled(), R.pooled()], axis=1)
            present = st.present | R.present
            st = Stream(pooled[:, None, :], present[:, None], None)
            names = names + [f"rating: {a}" for a in (R.names or [f"aspect_{k}" for k in range(R.dim)])]
    except MemoError:
        s.parts.append(
            Paragraph(
                "No aspect ratings yet (`memo rationale` writes them); only the video statistics are shown.",
                "note",
            )
        )
    return X.ids, st, names


def _statistics_against_targets(
    project: Project,
    V: np.ndarray,
    names: list[str],
    left_out: list[str],
    table: pd.DataFrame,
    targets: list[str],
) -> pd.DataFrame:
    """One row per statistic (V's columns): its Spearman with each target and a 95% brand-bootstrap interval,
    strongest with the first target first."""
    from memo.metrics import bootstrap_ci, spearman

    n_boot = min(int(project.config.evaluate.bootstrap), 500)
    rows = []
    for k, name in enumerate(names):
        if name in left_out:
            continue
        row = {"statistic": name, "videos": int(np.isfinite(V[:, k]).sum())}
        for t in targets:
            y = pd.to_numeric(table[t], errors="coerce").to_numpy(float)
            ok = np.isfinite(y) & np.isfinite(V[:, k])
            if ok.sum() < 3:  # no rank correlation, and no brand to resample, on fewer pairs
                row[f"{t} ρ"], row[f"{t} 95% CI"] = float("nan"), "–"
                continue
            row[f"{t} ρ"] = spearman(y[ok], V[ok, k])
            lo, hi = bootstrap_ci(
                spearman,
                y[ok],
                V[ok, k],
                n_boot=n_boot,
                seed=project.seed,
                groups=table["group"].to_numpy()[ok],
            )
            row[f"{t} 95% CI"] = f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else "–"
        rows.append(row)
    df = pd.DataFrame(rows).set_index("statistic")
    first = f"{targets[0]} ρ"
    return df.reindex(df[first].abs().sort_values(ascending=False, na_position="last").index)


def _statistics_figures(
    page: Page, df: pd.DataFrame, V: np.ndarray, names: list[str], table: pd.DataFrame, targets: list[str]
) -> list[Block]:
    """Bars of every statistic's Spearman per target, and the scatter of the three strongest against the first
    target."""
    fig, axes = new_figure(3.3 * len(targets) + 1.5, 0.25 * len(df) + 1.2, ncols=len(targets))
    for ax, t in zip(axes[0], targets):
        vals = df[f"{t} ρ"].to_numpy(float)[::-1]
        ax.barh(
            list(df.index[::-1]),
            np.nan_to_num(vals),
            color=["#55a868" if v > 0 else "#c44e52" for v in np.nan_to_num(vals)],
        )
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("Spearman ρ")
        ax.tick_params(axis="y", labelsize=7)
    out: list[Block] = [
        page.figure(
            "stats-vs-targets", fig, "Spearman of each video statistic with each target (labelled split)."
        )
    ]
    first = f"{targets[0]} ρ"
    top = [n for n in df.index[:3] if np.isfinite(df.loc[n, first])]
    if top:
        y = pd.to_numeric(table[targets[0]], errors="coerce").to_numpy(float)
        fig, axes = new_figure(3.2 * len(top), 2.9, ncols=len(top))
        for ax, n in zip(axes[0], top):
            ax.scatter(V[:, names.index(n)], y, s=10, alpha=0.7, color="#4c72b0")
            ax.set_xlabel(n, fontsize=8)
            ax.set_ylabel(targets[0], fontsize=8)
            ax.set_title(f"ρ = {df.loc[n, first]:.2f}", fontsize=9)
        out.append(
            page.figure(
                "stats-top-scatter",
                fig,
                f"The {len(top)} statistics most related to {targets[0]}, one dot per video.",
            )
        )
    return out


# ----------------------------------------------------------------------------- GBT feature importance


TREE_MEMBERS = ("xgboost", "lightgbm", "catboost")  # the members with split gain and TreeSHAP


def _member_gain(member, name: str, n_features: int) -> np.ndarray:
    """(F,) importance of one fitted member, normalised to sum 1: total gain (CatBoost: prediction-value
    change)."""
    if name == "xgboost":
        # {"f12": gain}; absent = never split on
        score = member.get_booster().get_score(importance_type="total_gain")
        v = np.zeros(n_features)
        for k, g in score.items():
            v[int(k[1:])] = g
    elif name == "lightgbm":
        v = np.asarray(member.booster_.feature_importance(importance_type="gain"), float)
    else:
        v = np.asarray(member.get_feature_importance(), float)
    total = v.sum()
    return v / total if total > 0 else v


def _member_shap(member, name: str, F: np.ndarray) -> np.ndarray:
    """(F,) mean |SHAP value| per feature over the rows of F, from each library's own TreeSHAP."""
    if name == "xgboost":
        import xgboost

        contrib = member.get_booster().predict(xgboost.DMatrix(F, missing=np.nan), pred_contribs=True)
    elif name == "lightgbm":
        contrib = member.predict(F, pred_contrib=True)
    else:
        import catboost

        contrib = member.get_feature_importance(catboost.Pool(F), type="ShapValues")
    return np.abs(np.asarray(contrib)[:, :-1]).mean(axis=0)  # last column is the expected value


def _block_of(feature: str) -> str:
    """'e5.title:pc3' -> 'e5.title'; the stream a feature column came from."""
    return re.split(r"[:\[]", feature, maxsplit=1)[0]


def gbt_section(project: Project, page: Page) -> Section:
    """Gain importance of the trained GBT ensemble and, on the training videos, mean |SHAP| (TreeSHAP)."""
    from memo.errors import MemoError
    from memo.submission.models import trained_model

    s = Section("importance", "GBT feature importance")
    try:
        found = trained_model(project, "gbt", run=page.run)
    except MemoError as e:
        s.missing = True
        s.parts.append(missing(str(e)[0].upper() + str(e)[1:]))
        return s
    folder, model = found.folder, found.predictor
    names = list(model.feature_names_)
    n = len(names)
    gain_rows, shap_rows = {}, {}
    F = None
    try:
        from memo.features import load_features

        streams = [p["stream"] for p in model.builder_.parts_ if not p["stream"].startswith("<")]
        X = load_features(
            project, project.dataset.train_split, ["metadata"] + [x for x in streams if x != "metadata"]
        )
        F = model.builder_.transform(X)  # (N, F) exactly what the members were trained on
    except MemoError as e:
        s.parts.append(missing(f"SHAP values need the training features, which could not be read: {e}"))
    other = sorted({m for t in model.targets_ for m in model.models_[t] if m not in TREE_MEMBERS})
    for t in model.targets_:
        for m, est in model.models_[t].items():
            if m not in TREE_MEMBERS:  # ridge, kernel ridge: no split gain, no TreeSHAP
                continue
            gain_rows[(t, m)] = _member_gain(est, m, n)
            if F is not None:
                shap_rows[(t, m)] = _member_shap(est, m, F)
    if not gain_rows or any(not any(k[0] == t for k in gain_rows) for t in model.targets_):
        s.missing = True
        s.parts.append(
            missing(
                f"The GBT ensemble of {found.source} has no tree member for every target "
                f"(its members: {', '.join(model.members)}); gain and TreeSHAP exist for xgboost, "
                "lightgbm and catboost only."
            )
        )
        return s
    if other:
        s.parts.append(
            Paragraph(
                f"The {' and '.join(other)} member{'s' if len(other) > 1 else ''} of the ensemble "
                f"{'have' if len(other) > 1 else 'has'} no split gain or TreeSHAP and "
                f"{'are' if len(other) > 1 else 'is'} left out here.",
                "note",
            )
        )
    gain = pd.DataFrame(gain_rows, index=names)
    summary = pd.DataFrame({f"gain {t}": gain.xs(t, axis=1, level=0).mean(axis=1) for t in model.targets_})
    if shap_rows:
        shap = pd.DataFrame(shap_rows, index=names)
        for t in model.targets_:
            summary[f"mean |SHAP| {t}"] = shap.xs(t, axis=1, level=0).mean(axis=1)
    key = summary.columns[0]
    summary = summary.sort_values(key, ascending=False)
    desc = json.loads((folder / "model.json").read_text()) if (folder / "model.json").is_file() else {}
    s.parts.append(
        Paragraph(
            f"The ensemble of {found.source} ({', '.join(model.members)}; {n} feature columns; ensemble "
            f"{', '.join(f'{t}: {k}' for t, k in (desc.get('ensemble') or {}).items()) or '?'}). "
            "Gain is each member's total split gain (CatBoost: prediction-value change), "
            "normalised per member and averaged; SHAP is the mean absolute TreeSHAP value over the "
            "training videos, "
            "from each library's own TreeSHAP, averaged over members.",
            "caption",
        )
    )
    top = summary.head(20)
    cols = [c for c in summary.columns]
    fig, axes = new_figure(3.6 * len(cols) + 2.0, 0.24 * len(top) + 1.2, ncols=len(cols))
    for ax, c in zip(axes[0], cols):
        ax.barh(
            list(top.index[::-1]),
            top[c].to_numpy()[::-1],
            color="#4c72b0" if c.startswith("gain") else "#dd8452",
        )
        ax.set_title(c, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    s.parts.append(
        page.figure(
            "gbt-importance", fig, f"The {len(top)} most important feature columns of the GBT ensemble."
        )
    )
    blocks = summary.groupby(summary.index.map(_block_of)).sum().sort_values(key, ascending=False)
    blocks.index.name = "stream"
    s.parts.append(
        page.table(
            "gbt-importance-by-stream",
            blocks,
            caption="Importance summed over the columns of each feature stream.",
        )
    )
    s.parts.append(Folded("every feature column", [page.table("gbt-importance", summary, digits=4)]))
    if getattr(model, "notes_", None):
        s.parts.append(Paragraph("Notes from training: " + "; ".join(model.notes_), "note"))
    return s


# ----------------------------------------------------------------------------- runs and their manifests


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj if not isinstance(obj, list) else ", ".join(map(str, obj))
    return out


def runs_section(project: Project, page: Page) -> Section:
    """The runs of memo.toml, the run files in the submission folder, and the manifest beside each."""
    import dataclasses

    cfg = project.config
    s = Section("runs", "Runs and run files")
    if cfg.runs:
        runs = pd.DataFrame(
            {
                name: {
                    k: (
                        ", ".join(map(str, v))
                        if isinstance(v, list)
                        else (json.dumps(v) if isinstance(v, dict) else v)
                    )
                    for k, v in dataclasses.asdict(r).items()
                    if v not in ("", [], {})
                }
                for name, r in cfg.runs.items()
            }
        ).T
        runs.index.name = "run"
        s.parts.append(page.table("runs-config", runs, caption="Runs defined in memo.toml."))
    else:
        s.parts.append(missing("memo.toml defines no runs; add [runs.1] (see `memo init`)."))
    folder = cfg.resolve(cfg.submission.out)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        s.missing = True
        s.parts.append(missing(f"No run files in {folder} yet; run `memo submit --run 1` (or --all)."))
        return s
    for f in files:
        manifest = _manifest_of(f)
        s.parts.append(Heading(f.name))
        if manifest is None:
            s.parts.append(
                missing(
                    f"{f.name} has no manifest beside it; rewrite it with `memo submit --force` to "
                    "record how it was made."
                )
            )
            continue
        path, data = manifest
        cv = data.get("cv") or {}
        scores = cv.get("scores") or {}
        if scores:
            tab = pd.DataFrame(scores).T
            tab.index.name = "target"
            s.parts.append(
                Paragraph(
                    cv.get("scheme", "cross-validation")
                    + (f", {cv['videos']} videos" if cv.get("videos") else ""),
                    "caption",
                )
            )
            s.parts.append(page.table(f"run-cv-{f.stem}", tab))
        brief = {
            k: v
            for k, v in _flatten({k: v for k, v in data.items() if k not in ("config", "versions")}).items()
        }
        flat = pd.DataFrame({"value": {k: str(v)[:300] for k, v in brief.items()}})
        flat.index.name = f"manifest ({path.name})"
        s.parts.append(Folded("manifest", [page.table(f"manifest-{f.stem}", flat)]))
    return s


def _manifest_of(run_file: Path) -> tuple[Path, dict] | None:
    """The JSON manifest written beside a run file, if any."""
    for cand in (
        run_file.with_suffix(".json"),
        run_file.with_name(run_file.name + ".json"),
        run_file.with_suffix(".manifest.json"),
        run_file.with_name(run_file.stem + ".manifest.json"),
    ):
        if cand.is_file():
            try:
                return cand, json.loads(cand.read_text())
            except ValueError:
                return None
    return None
