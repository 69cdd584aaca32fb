"""The evaluation plots: Spearman per model with intervals, predicted against true. PNG, written atomically.

plot_spearman(summary, results, folder / "spearman.png")
plot_scatter(oof_long, "gbt", folder / "scatter_gbt.png")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from memo.store import atomic_write_bytes


def save_figure(fig, path: Path) -> None:
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
        err = np.vstack(
            [s - pooled["spearman_lo"].to_numpy(float), pooled["spearman_hi"].to_numpy(float) - s]
        )
        ax.barh(y, np.nan_to_num(s), xerr=np.nan_to_num(err), color="#4c72b0", alpha=0.85, capsize=3)
        ax.set_yticks(y, pooled["model"].tolist())
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("Spearman (pooled out-of-fold, 95% brand bootstrap)")
        ax.set_title(t)
    save_figure(fig, path)


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
    save_figure(fig, path)
