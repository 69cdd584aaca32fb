"""The sections of `memo report` that show the project and its data: the project's settings and
models, the dataset (splits, target distributions, brands), and each video statistic and aspect
rating against the targets.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memo.evaluation.report_page import Block, Folded, Page, Paragraph, Section, missing, new_figure
from memo.evaluation.report_sections import labelled_table, report_targets

if TYPE_CHECKING:
    from memo.project import Project


def overview_section(project: Project, page: Page) -> Section:
    import importlib.metadata as md

    cfg = project.config
    s = Section("overview", "Project")
    rows = {
        "memo.toml": str(cfg.path) if cfg.path else "(defaults; no memo.toml)",
        "dataset": str(project.data_path),
        "layout": project.dataset.layout,
        "targets": ", ".join(report_targets(project)),
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
    table = labelled_table(project)
    targets = report_targets(project)
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


# ----------------------------------------------------------------------------- video statistics


def stats_section(project: Project, page: Page) -> Section:
    """Each video statistic (pacing, complexity, emotion ...) against each target: Spearman over the labelled
    split."""
    s = Section("stats", "Video statistics against the targets")
    split = project.dataset.train_split
    table = labelled_table(project)
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
    targets = report_targets(project)
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
