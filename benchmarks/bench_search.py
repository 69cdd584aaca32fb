"""Run 1's search and the levers against brand shift, each as a run, on the same nested repeated grouped CV.

    memo init --data ../shared/data/videm --offline && memo features          # in a folder P
    OMP_NUM_THREADS=1 python benchmarks/bench_search.py --project P/memo.toml --out docs/search_videm

Every row is `memo evaluate --run` of one [runs.N] table (memo.evaluation.evaluate_run: the same
folds, parent-brand groups, the run's cache), so a figure here is the outer score of the whole
procedure, the search's choice included. Variants:

- run 1 as `memo init` writes it (the search over what the data has);
- fixed models, no choice: the ridge on the cues (the previous run 1), and the ridge on the cues
  with each lever (memo.baselines.linear: within-brand-centred targets, bagging over brands,
  sign-stable columns) and with the channel-relative metadata (metadata.brand);
- run 1's search with those levers added as candidates (chosen on inner folds like the rest).

With `--cost A,B` it times instead one outer fold's fit of run A's and run B's predictors on the
same training videos (fold 0 of the first split), in turn, `--pairs` times, and prints the ratio
pair by pair (on Memento10k: the search against the plain GBT run it replaced).

The priors of [evaluate] baselines are scored on the same folds. Writes levers.csv, levers.md (the
table for docs/evaluation.md) and the seconds each variant took (0 when it came from the cache).
Runs are cached in the project's work folder, so a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pandas as pd

LEVERS = {
    "ridge(cues), centred targets": {"centre_targets": True},
    "ridge(cues), bagged over brands": {"bag_brands": 25},
    "ridge(cues), sign-stable columns": {"stable_signs": 0.8},
}


def variants(run1) -> dict[str, object]:
    """name -> RunConfig: run 1, the fixed ridges, run 1 with the levers as candidates."""
    from memo.config import RunConfig

    fixed = {"ridge(cues)": RunConfig(predictor="ridge", streams=["cues"], description="the previous run 1")}
    for name, params in LEVERS.items():
        fixed[name] = RunConfig(predictor="ridge", streams=["cues"], params=params, description=name)
    fixed["ridge(cues + metadata.brand)"] = RunConfig(
        predictor="ridge", streams=["cues", "metadata.brand"], description="channel-relative values"
    )
    extra = [{"predictor": "ridge", "streams": ["cues"], "params": p, "name": n} for n, p in LEVERS.items()]
    extra.append(
        {"predictor": "ridge", "streams": ["cues", "metadata.brand"], "name": "ridge(cues + metadata.brand)"}
    )
    levered = copy.deepcopy(run1)
    levered.candidates = [*levered.candidates, *extra]
    levered.description = "run 1's search with the levers as candidates"
    return {"run 1 (search)": run1, **fixed, "run 1 + levers (search)": levered}


def markdown(df: pd.DataFrame) -> str:
    """A frame as a Markdown table (index first), without the tabulate package."""
    head = [df.index.name or "", *map(str, df.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(df.index, df.to_numpy())]
    return "\n".join(lines) + "\n"


def fit_cost(config: str, runs: list[str], pairs: int) -> int:
    """Seconds of one outer fold's fit of each run's predictor on the same training videos, in turn."""
    from memo.project import Project
    from memo.splits import grouped_kfold
    from memo.submission.plan import make_predictor, resolve_run
    from memo.submission.runs import _features, labelled_rows

    project = Project.open(config)
    plans = [resolve_run(project, r, "cpu") for r in runs]
    data = {}
    for plan in plans:
        X, _ = _features(project, plan, "cpu", test=False)
        data[plan.name] = labelled_rows(project, plan, X)
    X0 = data[plans[0].name][0]
    train, _ = grouped_kfold(X0.groups, n_splits=project.config.evaluate.folds, seed=project.seed)[0]
    ids = [X0.ids[i] for i in train]
    for k in range(pairs):
        took = {}
        for plan in plans:
            X, y = data[plan.name]
            rows = [X.ids.index(i) for i in ids] if list(X.ids) != list(X0.ids) else list(train)
            t0 = time.perf_counter()
            make_predictor(project, plan, "cpu").fit(X.take(rows), y.iloc[rows])
            took[plan.name] = time.perf_counter() - t0
        a, b = (took[p.name] for p in plans)
        print(
            f"pair {k + 1}: run {plans[0].name} {a:.1f} s, run {plans[1].name} {b:.1f} s, ratio "
            f"{b / a:.2f}x on {len(ids)} videos",
            flush=True,
        )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--out", default="bench-search")
    ap.add_argument(
        "--only", default="", help="comma-separated variant numbers (1-based) to run; default all"
    )
    ap.add_argument("--cost", default="", help="A,B: time one outer fold's fit of runs A and B instead")
    ap.add_argument("--pairs", type=int, default=1)
    a = ap.parse_args(argv)
    if a.cost:
        return fit_cost(a.project, a.cost.split(","), a.pairs)

    from memo.evaluation import evaluate_run
    from memo.project import Project

    project = Project.open(a.project)
    if "1" not in project.config.runs or project.config.runs["1"].predictor != "search":
        print("run 1 of this memo.toml is not a search; run `memo init` again to write one.", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table = variants(project.config.runs["1"])
    pick = {int(x) for x in a.only.split(",") if x} or set(range(1, len(table) + 1))
    rows = []
    for k, (label, run) in enumerate(table.items(), 1):
        if k not in pick:
            continue
        name = "1" if label == "run 1 (search)" else f"lever{k}"
        project.config.runs[name] = run
        t0 = time.perf_counter()
        res, info = evaluate_run(project, name, device="cpu", baselines=None if k == 1 else [])
        seconds = time.perf_counter() - t0
        for _, r in res.iterrows():
            model = label if r["model"] == f"run {name}" else f"prior: {r['model']}"
            rows.append(
                {
                    "model": model,
                    "target": r["target"],
                    "expected": r["expected"],
                    "min": r["min"],
                    "max": r["max"],
                    "seconds": round(seconds, 1) if model == label else None,
                }
            )
        for line in info["picks"]:
            print(f"{label}: picked for {line}", flush=True)
        print(
            f"{label}: {seconds:.0f} s; "
            + ", ".join(
                f"{r['target']} {r['expected']:.3f}" for _, r in res[res["model"] == f"run {name}"].iterrows()
            ),
            flush=True,
        )
        df = pd.DataFrame(rows)
        df.to_csv(out / "levers.csv", index=False, float_format="%.4f")
        wide = df.pivot_table(index="model", columns="target", values="expected", sort=False)
        spread = df.assign(
            r=df.apply(lambda r: f"{r['expected']:.3f} ({r['min']:.2f}..{r['max']:.2f})", axis=1)
        ).pivot_table(index="model", columns="target", values="r", aggfunc="first", sort=False)
        (out / "levers.md").write_text(markdown(spread.loc[wide.index]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
