"""Which streams and learners hold up on VIDEM brands never seen: repeated brand-grouped CV.

    memo init --data ../shared/data/videm --offline && memo features --extractors e5     # in a folder P
    OMP_NUM_THREADS=1 python benchmarks/explore_videm.py --project P/memo.toml --repeats 5 --out /tmp/explore

Every candidate is scored on the same R x K brand-grouped splits (seeds seed..seed+R-1 of
memo.splits.grouped_kfold), as the pooled out-of-fold Spearman of each repeat (mean and sd over
repeats) and the mean over folds of the per-fold Spearman (a fold is a handful of unseen brands,
like a test split). Learners choose their penalties on inner brand-grouped folds of each outer
training fold (memo.baselines.linear), never on the outer fold. Priors learn nothing: minus log
duration, log views. Writes explore.csv and a plot of the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SETS = (
    "metadata.absolute;metadata.brand;cues;e5;metadata.absolute,cues;metadata.brand,cues;"
    "metadata,cues;cues,e5;metadata,cues,e5"
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--sets",
        default=SETS,
        help="';'-separated stream sets, streams comma-separated (memo.streams selectors)",
    )
    ap.add_argument("--out", default="explore-videm")
    a = ap.parse_args(argv)

    from memo.baselines.linear import RidgeRanker
    from memo.crossval import cross_val_predict, target_frame
    from memo.features import load_features
    from memo.metrics import spearman
    from memo.project import Project
    from memo.splits import grouped_kfold

    project = Project.open(a.project)
    sets = [s.split(",") for s in a.sets.split(";")]
    X = load_features(project, project.dataset.train_split, sorted({x for s in sets for x in s}))
    y = target_frame(X, project.targets)
    splits = [grouped_kfold(X.groups, a.folds, seed=project.seed + r) for r in range(a.repeats)]
    meta = X.streams["metadata.absolute"]
    col = {n: meta.values[:, 0, j].astype(float) for j, n in enumerate(meta.names)}
    priors = {"prior: minus log duration": -col["log1p_duration"], "prior: log views": col.get("log1p_views")}

    rows = []

    def record(name: str, oofs: list[pd.DataFrame], seconds: float) -> None:
        for t in project.targets:
            pooled = [spearman(y[t], o[t]) for o in oofs]
            per_fold = [
                np.nanmean([spearman(y[t].iloc[te], o[t].iloc[te]) for _, te in folds])
                for o, folds in zip(oofs, splits)
            ]
            rows.append(
                {
                    "target": t,
                    "candidate": name,
                    "pooled": np.mean(pooled),
                    "pooled_sd": np.std(pooled),
                    "fold_mean": np.mean(per_fold),
                    "fold_sd": np.std(per_fold),
                    "seconds": seconds,
                }
            )
            print(
                f"{t:20s} {name:48s} pooled {rows[-1]['pooled']:+.3f} ± {rows[-1]['pooled_sd']:.3f}   "
                f"per fold {rows[-1]['fold_mean']:+.3f}",
                flush=True,
            )

    for name, v in priors.items():
        if v is not None:
            record(name, [pd.DataFrame({t: v for t in project.targets}, index=y.index)] * a.repeats, 0.0)
    for streams in sets:
        for rank, weights in ((False, False), (True, True)):
            t0 = time.perf_counter()
            make = lambda: RidgeRanker(
                streams=streams, rank_targets=rank, weight_by_annotations=weights, random_state=project.seed
            )  # noqa: E731
            oofs = [cross_val_predict(make, X, y, folds, desc="cv") for folds in splits]
            record(
                f"ridge{' (rank targets, weights)' if rank else ''} on {'+'.join(streams)}",
                oofs,
                time.perf_counter() - t0,
            )

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "explore.csv", index=False)
    plot(df, out / "explore.png")
    print(df.round(3).to_string(index=False))
    return 0


def plot(df: pd.DataFrame, path: Path) -> None:
    """Pooled Spearman (mean ± sd over repeats) per candidate, one panel per target."""
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(df["target"]))
    names = list(dict.fromkeys(df["candidate"]))
    fig = Figure(figsize=(6 * len(targets), 0.6 + 0.32 * len(names)))
    for i, t in enumerate(targets):
        ax = fig.add_subplot(1, len(targets), i + 1)
        d = df[df["target"] == t].set_index("candidate").loc[names]
        ax.barh(np.arange(len(d)), d["pooled"], xerr=d["pooled_sd"], color="#4c72b0", alpha=0.85, capsize=2)
        ax.set_yticks(np.arange(len(d)), names if i == 0 else [""] * len(d), fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(t)
        ax.set_xlabel("pooled Spearman, mean ± sd over repeated brand-grouped 5-fold")
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    sys.exit(main())
