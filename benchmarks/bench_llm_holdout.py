"""The LLM fusion with a real Gemma-3 on Memento10k: a learning curve scored on the untouched holdout.

    # e5, ~15 min here
    memo init --data ../shared/data/memento10k --offline --folder M && (cd M && memo features)
    python benchmarks/bench_llm_holdout.py run    --project M --out DIR --models llm --threads 2 &
    python benchmarks/bench_llm_holdout.py run    --project M --out DIR --models text_ridge,run1 --threads 1 &
    python benchmarks/bench_llm_holdout.py report --project M --out DIR  # report.csv, learning_curve.png

The holdout is explore_captions.py's: 2,000 of the 7,000 training videos (seed 2026), never used for
a choice (docs/evaluation.md). The training videos of size N are the first N of a seeded permutation
of the other 5,000, the same N videos for every model, so the sizes are nested and the models compare
like with like. Every model is fitted once per size and scored on all 2,000 holdout videos:
- llm: LLMFusion with the project's [llm] table (the [llm] defaults under `memo init`), backbone
  --backbone; the prompt quotes the captions and no rationales (writing two per video is 6-10 s each
  on this CPU), soft tokens of the e5 caption embedding and the metadata; for --llm-sizes only;
- run1: [runs.1] exactly as `memo submit` fits it (on Memento10k the GBT ensemble on metadata and e5);
- text_ridge: the TF-IDF ridge on the captions, the simple prior of docs/evaluation.md.
report adds the rank average of run 1 and the fusion at each size both have, and 95% intervals from
1,000 resamples of the holdout videos. Each fit writes its predictions (DIR/{model}_n{N}.csv) and its
timings (DIR/timings.jsonl) as soon as it ends; a restart skips them, and two processes share the fits
through an flock per fit (bench_llm_videm.claimed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_llm_videm import claimed, fit_predict  # noqa: E402  (the fusion's fit and the fit claims, shared)
from explore_captions import exploration_split  # noqa: E402  (the one exploration / holdout split)

MODELS = ["text_ridge", "run1", "llm"]


def setup(args):
    """(project, train split, target, training pool in permutation order, holdout ids)."""
    from memo.project import Project

    project = Project.open(Path(args.project) / "memo.toml")
    target = project.config.project.targets[0]
    ids, explore, hold = exploration_split(project.config.project.data, args.split_seed, args.explore)
    pool = [ids[i] for i in np.random.RandomState(args.seed).permutation(explore)]
    return project, project.dataset.train_split, target, pool, [ids[i] for i in hold]


def model_inputs(project, split: str, model: str, device: str):
    """(Features the model reads, a factory of the unfitted model or None for the fusion)."""
    from memo.crossval import build_predictor
    from memo.features import load_available, load_features
    from memo.submission.plan import make_predictor, resolve_run

    if model == "run1":
        plan = resolve_run(project, "1", device)
        return load_features(project, split, plan.streams), lambda: make_predictor(project, plan, device)
    streams = list(project.config.llm.streams) if model == "llm" else ["metadata.absolute"]
    X, notes = load_available(project, split, streams)
    for n in notes:
        print(f"{model}: {n}", flush=True)
    return X, (None if model == "llm" else (lambda: build_predictor(project, model, device, {})))


def run(args) -> None:
    from memo.crossval import target_frame
    from memo.store import atomic_write_text

    project, split, target, pool, holdout = setup(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.run_params = dataclasses.asdict(project.config.llm)  # the project's [llm] table, for fit_predict
    log = open(out / "timings.jsonl", "a")
    inputs = {}  # model -> (Features, factory, row of each id, y): loaded once, used at every size
    for n in sorted(int(s) for s in args.sizes.split(",")):
        for model in [m for m in args.models.split(",") if m]:
            if model == "llm" and str(n) not in args.llm_sizes.split(","):
                continue
            f = out / f"{model}_n{n}.csv"
            with claimed(f.with_suffix("")) as mine:
                if not mine or f.is_file():
                    continue
                if model not in inputs:
                    X, make = model_inputs(project, split, model, args.device)
                    inputs[model] = X, make, {v: i for i, v in enumerate(X.ids)}, target_frame(X, [target])
                X, make, pos, y = inputs[model]
                tr, te = np.array([pos[v] for v in pool[:n]]), np.array([pos[v] for v in holdout])
                if make is None:
                    pred, info = fit_predict(args, args.rank, X, y, tr, te)
                else:
                    t = time.perf_counter()
                    fitted = make().fit(X.take(tr), y.iloc[tr])
                    fit_s = time.perf_counter() - t
                    pred = fitted.predict(X.take(te))
                    info = {
                        "n_train": n,
                        "n_test": len(te),
                        "fit_s": round(fit_s, 1),
                        "predict_s": round(time.perf_counter() - t - fit_s, 1),
                        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    }
                atomic_write_text(f, pred.to_csv())  # a file that exists is complete
                log.write(json.dumps({"model": model, "n": n, **info}) + "\n")
                log.flush()
                print(f"{model} n={n}: {info}", flush=True)


def report(args) -> None:
    """Spearman on the holdout per model and size, with intervals; a table, its CSV and a plot."""
    from memo.crossval import target_frame
    from memo.features import load_available
    from memo.metrics import bootstrap_ci, rank_average, spearman

    project, split, target, pool, holdout = setup(args)
    X, _ = load_available(project, split, ["metadata.absolute"])
    y = target_frame(X, [target]).loc[holdout, target].to_numpy(float)
    out = Path(args.out)
    preds = {}
    for f in sorted(out.glob("*_n*.csv")):
        model, n = f.stem.rsplit("_n", 1)
        preds[(model, int(n))] = (
            pd.read_csv(f, index_col=0, dtype={0: str}).loc[holdout, target].to_numpy(float)
        )
    for (model, n), p in list(preds.items()):
        if model == "llm" and ("run1", n) in preds:
            preds[("rank average of run1 and llm", n)] = rank_average([preds[("run1", n)], p])
    timings = {}
    for line in open(out / "timings.jsonl") if (out / "timings.jsonl").is_file() else []:
        r = json.loads(line)
        timings[(r["model"], r["n"])] = r
    rows = []
    for (model, n), p in sorted(preds.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lo, hi = bootstrap_ci(spearman, y, p, n_boot=1000, seed=0)
        t = timings.get((model, n), {})
        rows.append(
            {
                "n_train": n,
                "model": model,
                "spearman": round(spearman(y, p), 3),
                "ci_low": round(lo, 3),
                "ci_high": round(hi, 3),
                "fit_s": t.get("fit_s"),
                "steps": t.get("steps"),
                "s_per_step": t.get("s_per_step"),
                "peak_rss_mb": t.get("peak_rss_mb"),
            }
        )
    table = pd.DataFrame(rows)
    print(f"{target} on the {len(holdout)} holdout videos (95% interval: 1,000 resamples of videos)")
    print(table.to_string(index=False))
    table.to_csv(out / "report.csv", index=False)
    if len(table):
        plot(table, out / "learning_curve.png", target, len(holdout))


def plot(table: pd.DataFrame, path: Path, target: str, n_holdout: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model, g in table.groupby("model", sort=False):
        ax.errorbar(
            g["n_train"],
            g["spearman"],
            yerr=[g["spearman"] - g["ci_low"], g["ci_high"] - g["spearman"]],
            marker="o",
            capsize=3,
            label=model,
        )
    ax.set_xscale("log")
    ax.minorticks_off()  # only the sizes run are labelled
    ax.set_xticks(sorted(table["n_train"].unique()), [str(n) for n in sorted(table["n_train"].unique())])
    ax.set_xlabel("training videos (nested subsets of the 5,000)")
    ax.set_ylabel(f"Spearman, {n_holdout} holdout videos")
    ax.set_title(f"Memento10k {target}: learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["run", "report"])
    ap.add_argument(
        "--project", required=True, help="a memo project on Memento10k (memo init --offline; memo features)"
    )
    ap.add_argument("--out", default="/tmp/memo-llm-holdout")
    ap.add_argument(
        "--models", default=",".join(MODELS), help=f"run: which of {','.join(MODELS)} this process fits"
    )
    ap.add_argument("--sizes", default="500,1000,2000,5000", help="training sizes for every model")
    ap.add_argument(
        "--llm-sizes",
        default="500,1000,2000",
        help="the sizes the fusion is fitted at (its fits are the costly ones)",
    )
    ap.add_argument("--backbone", default="gemma3-270m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank ([llm] lora_r)")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the permutation of the training pool, and the fusion's random_state",
    )
    ap.add_argument(
        "--split-seed", type=int, default=2026, help="explore_captions.py's exploration / holdout split"
    )
    ap.add_argument("--explore", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run(args) if args.part == "run" else report(args)


if __name__ == "__main__":
    main()
