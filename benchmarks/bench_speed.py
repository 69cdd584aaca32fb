"""Side-by-side speed of `memo evaluate --model gbt` and `memo demo`: the code of issue #17's day against
today's.

Issue #17 measured, on a shared 2-core CPU, `memo evaluate --model gbt` on VIDEM dev at 11 min 34 s
and the first `memo demo` at 412-530 s. This script runs the OLD code (a git worktree of the commit
the issue was filed against) and the NEW code (a worktree of HEAD as committed when the run starts)
at the same time, on fresh projects, with the same thread settings, and prints each side's wall
time and CPU time (user + system of the command and its children), their ratios, and the
brand-grouped CV Spearman each side reports. Both sides run at once so they share whatever load
the machine has; on a shared machine CPU time is the steadier of the two figures.

How each side runs: `python -m memo ...` with PYTHONPATH set to a folder of symlinks that maps the
tree's pyproject `package-dir` (memo.features = features/ ...) into one `memo` package, so each
tree imports its own modules and never the installed editable copy. Each side gets its own fresh
MEMO_CACHE (tiny models are built on the first run, as for a new user) and OMP/BLAS threads = 1.

    # GBT on VIDEM dev: per side memo init --data VIDEM --offline; memo features --split dev (not part
    # of the comparison; each side its own store, or one it wrote before via --store-from); then
    # `memo evaluate --model gbt` timed (seed 0), then, for quality only, the GBT alone on seeds
    # 1..n-1 (other brand-grouped 5-fold splits; --cv-seeds, default old=1,new=5)
    python benchmarks/bench_speed.py gbt --work /tmp/h2/bench
    # demo: the first `memo demo --folder <fresh dir>` on each side (fresh model cache too)
    python benchmarks/bench_speed.py demo --work /tmp/h2/bench
    python benchmarks/bench_speed.py all --work /tmp/h2/bench     # both comparisons at once

Options: --old COMMIT (default d7b9c4e: the last commit before the session that worked on issues
#15 and #17, when the default was a GBT tuned with 20 Optuna trials per member and target in each
outer fold, scored on one 5-fold split: the issue's 11 min 34 s), --new REF (default HEAD; '.' =
the working tree as it is), --data (VIDEM folder), --sides old,new, --store-from SIDE=FOLDER.
Each side's result is kept in <work>/<comparison>/<side>.json, so a killed run resumes with the
sides not yet measured (--again measures them anew). Results: <work>/<comparison>.json and the
printed tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

NEW_TREE = Path(__file__).resolve().parents[1]
OLD_COMMIT = "d7b9c4e"
VIDEM = Path("/work/shared/data/videm")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def commit_tree(work: Path, ref: str) -> Path:
    """A detached git worktree of `ref` (resolved to its commit) under work/, made once and reused; '.' = this
    working tree."""
    if ref == ".":
        return NEW_TREE
    commit = subprocess.run(
        ["git", "-C", str(NEW_TREE), "rev-parse", "--short", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = work / f"tree-{commit}"
    if not (tree / "pyproject.toml").is_file():
        subprocess.run(
            ["git", "-C", str(NEW_TREE), "worktree", "add", "--detach", str(tree), commit], check=True
        )
    return tree


def package_site(tree: Path, dest: Path) -> Path:
    """A folder for PYTHONPATH in which `import memo` loads `tree`: pyproject's package-dir as symlinks."""
    mapping = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    root = dest / "memo"
    if dest.exists():
        shutil.rmtree(dest)
    root.mkdir(parents=True)
    for entry in (tree / mapping["memo"]).iterdir():
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry)
    for package, folder in mapping.items():
        if package.startswith("memo."):
            (root / package.split(".", 1)[1]).symlink_to(tree / folder)
    return dest


def side_env(site: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({v: "1" for v in THREAD_VARS})
    env.update(PYTHONPATH=str(site), MEMO_CACHE=str(cache), PYTHONUNBUFFERED="1")
    return env


def memo(env: dict[str, str], cwd: Path, args: list[str], log: Path) -> tuple[float, float]:
    """Run `python -m memo ARGS` in cwd, output appended to log: (wall seconds, CPU seconds of the process and
    its children). CPU time hardly moves with the machine's load; wall time does. A failure stops the
    benchmark."""
    with log.open("a") as f:
        f.write(f"\n$ memo {' '.join(args)}   (cwd {cwd})\n")
        f.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "memo", *args], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        seconds, cpu = time.perf_counter() - start, usage.ru_utime + usage.ru_stime
        f.write(f"[{seconds:.1f} s wall, {cpu:.1f} s CPU, exit {rc}]\n")
    if rc != 0:
        raise SystemExit(f"`memo {' '.join(args)}` failed (exit {rc}) in {cwd}; see {log}.")
    return seconds, cpu


def pooled_spearman(summary: Path) -> dict[str, dict[str, float]]:
    """model -> target -> pooled out-of-fold Spearman, from an evaluation's summary.csv (the same format on
    both sides)."""
    df = pd.read_csv(summary)
    return {
        m: {r["target"]: float(r["spearman"]) for _, r in g.iterrows()}
        for m, g in df.groupby("model", sort=False)
    }


def measure_gbt(
    side: str, tree: Path, work: Path, data: Path, cv_seeds: int = 1, store_from: Path | None = None
) -> dict:
    """init + features (not timed as the comparison), `memo evaluate --model gbt` timed; then, for the
    quality figure only, the same evaluation on cv_seeds - 1 more seeds (other brand-grouped splits), gbt
    alone."""
    folder, log = work / side, work / side / "log.txt"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    env = side_env(package_site(tree, work / f"site-{side}"), folder / "cache")
    init_s, _ = memo(env, folder, ["init", "--data", str(data), "--offline", "--folder", "."], log)
    # a store this side's code wrote before: `memo features` finds its arrays already there
    if store_from is not None:
        shutil.copytree(store_from, folder / ".memo" / "features")
    features_s, _ = memo(env, folder, ["features", "--split", "dev"], log)
    before = os.getloadavg()
    # the old code's evaluate scores one split; like with like
    one_split = [] if side == "old" else ["--repeats", "1"]
    evaluate_s, evaluate_cpu = memo(
        env, folder, ["evaluate", "--model", "gbt", "--out", "eval-seed0", *one_split], log
    )
    after = os.getloadavg()
    seeds = {0: pooled_spearman(folder / "eval-seed0" / "summary.csv")}
    for seed in range(1, cv_seeds):
        out = f"eval-seed{seed}"
        memo(
            env,
            folder,
            [
                "evaluate",
                "--model",
                "gbt",
                "--set",
                f"project.seed={seed}",
                "--set",
                "evaluate.baselines=",
                "--out",
                out,
                *one_split,
            ],
            log,
        )
        seeds[seed] = pooled_spearman(folder / out / "summary.csv")
    targets = list(seeds[0]["gbt"])
    mean = {t: float(sum(s["gbt"][t] for s in seeds.values()) / len(seeds)) for t in targets}
    return {
        "side": side,
        "tree": str(tree),
        "init_s": init_s,
        "features_s": features_s,
        "evaluate_s": evaluate_s,
        "evaluate_cpu_s": evaluate_cpu,
        "load_1min_before_after": [before[0], after[0]],
        "seed0": seeds[0],
        "gbt_per_seed": {s: v["gbt"] for s, v in seeds.items()},
        "gbt_mean": mean,
        "seeds": len(seeds),
    }


def measure_demo(side: str, tree: Path, work: Path, data: Path) -> dict:
    folder, log = work / side, work / side / "log.txt"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    env = side_env(package_site(tree, work / f"site-{side}"), folder / "cache")
    before = os.getloadavg()
    demo_s, demo_cpu = memo(env, folder, ["demo", "--folder", "memo-demo"], log)
    after = os.getloadavg()
    text = log.read_text()
    start = text.rfind("Time per stage:")  # the table StageClock prints at the end of a demo (new side only)
    table = text[start : text.rfind("Done.")].strip() if start >= 0 else ""
    return {
        "side": side,
        "tree": str(tree),
        "demo_s": demo_s,
        "demo_cpu_s": demo_cpu,
        "load_1min_before_after": [before[0], after[0]],
        "stage_table": table,
    }


def compare(
    name: str, measure, trees: dict[str, Path], work: Path, data: Path, again: bool, extras: dict[str, dict]
) -> dict:
    """Measure each side, keeping each side's result so a killed run resumes. Sides run at the same time
    (threads waiting on their subprocesses), so they share the machine's load as it comes."""
    out = work / name
    out.mkdir(parents=True, exist_ok=True)

    def one(side: str) -> dict:
        saved = out / f"{side}.json"
        if saved.is_file() and not again:
            return json.loads(saved.read_text())
        print(f"[{time.strftime('%H:%M:%S')}] {name}: measuring {side} ({trees[side]})", flush=True)
        result = measure(side, trees[side], out, data, **extras.get(side, {}))
        saved.write_text(json.dumps(result, indent=2))
        print(
            f"[{time.strftime('%H:%M:%S')}] {name}: {side} done: "
            f"{json.dumps({k: v for k, v in result.items() if k != 'stage_table'})}",
            flush=True,
        )
        return result

    with ThreadPoolExecutor(len(trees)) as pool:
        results = dict(zip(trees, pool.map(one, trees)))
    (work / f"{name}.json").write_text(json.dumps(results, indent=2))
    return results


def gbt_table(results: dict) -> str:
    old, new = results.get("old"), results.get("new")
    lines = [
        "| side | evaluate s wall (CPU) | gbt memorability_score (seed 0 / mean of seeds) | gbt "
        "brand_memorability (seed 0 / mean) | seeds |",
        "|---|---|---|---|---|",
    ]
    for side in (old, new):
        if side:
            cells = [
                f"{side['seed0']['gbt'][t]:.3f} / {side['gbt_mean'][t]:.3f}"
                for t in ("memorability_score", "brand_memorability")
            ]
            lines.append(
                f"| {side['side']} | {side['evaluate_s']:.0f} ({side['evaluate_cpu_s']:.0f} CPU) | "
                f"{cells[0]} | {cells[1]} | {side['seeds']} |"
            )
    for side in (old, new):
        if side:
            others = {m: v for m, v in side["seed0"].items() if m != "gbt"}
            lines.append(
                f"{side['side']} seed 0 baselines: "
                + "; ".join(
                    f"{m} {v.get('memorability_score', float('nan')):.3f} / "
                    f"{v.get('brand_memorability', float('nan')):.3f}"
                    for m, v in others.items()
                )
            )
    if old and new:
        lines.append(
            f"ratio old / new: wall {old['evaluate_s'] / new['evaluate_s']:.2f}x, CPU "
            f"{old['evaluate_cpu_s'] / new['evaluate_cpu_s']:.2f}x"
        )
    return "\n".join(lines)


def demo_table(results: dict) -> str:
    old, new = results.get("old"), results.get("new")
    lines = [
        f"{s['side']}: first memo demo {s['demo_s']:.0f} s wall, {s['demo_cpu_s']:.0f} s CPU"
        for s in (old, new)
        if s
    ]
    if old and new:
        lines.append(
            f"ratio old / new: wall {old['demo_s'] / new['demo_s']:.2f}x, CPU "
            f"{old['demo_cpu_s'] / new['demo_cpu_s']:.2f}x"
        )
    if new and new.get("stage_table"):
        lines.append("new side's stage table:\n" + new["stage_table"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["gbt", "demo", "all"])
    p.add_argument("--work", type=Path, default=Path("/tmp/memo-bench-speed"))
    p.add_argument("--old", default=OLD_COMMIT, help="commit of the old side")
    p.add_argument(
        "--new",
        default="HEAD",
        help="commit of the new side (default HEAD, as committed when the run starts; '.' = the working "
        "tree)",
    )
    p.add_argument("--data", type=Path, default=VIDEM, help="VIDEM folder (organisers' layout)")
    p.add_argument("--sides", default="old,new")
    p.add_argument("--again", action="store_true", help="measure sides that already have a result")
    p.add_argument(
        "--store-from",
        default="",
        help="SIDE=FOLDER,...: copy a feature store (<project>/.memo/features) that side's code wrote "
        "before, to skip re-extracting",
    )
    p.add_argument(
        "--cv-seeds",
        default="old=1,new=5",
        help="per side: brand-grouped splits (seeds 0..n-1) the GBT's quality is averaged over; only seed 0 "
        "is timed",
    )
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    refs = {"old": a.old, "new": a.new}
    # worktrees stay under --work for a resumed run
    trees = {side: commit_tree(a.work, refs[side]) for side in a.sides.split(",")}
    jobs = {}
    if a.what in ("gbt", "all"):
        if not (a.data / "devset").is_dir():
            raise SystemExit(f"{a.data} is not a VIDEM folder (no devset/); pass --data.")
        seeds = {k: int(v) for k, v in (x.split("=") for x in a.cv_seeds.split(","))}
        stores = {k: Path(v) for k, v in (x.split("=") for x in a.store_from.split(",") if x)}
        extras = {s: {"cv_seeds": seeds.get(s, 1), "store_from": stores.get(s)} for s in trees}
        jobs["gbt"] = lambda: gbt_table(compare("gbt", measure_gbt, trees, a.work, a.data, a.again, extras))
    if a.what in ("demo", "all"):
        jobs["demo"] = lambda: demo_table(compare("demo", measure_demo, trees, a.work, a.data, a.again, {}))
    with ThreadPoolExecutor(len(jobs)) as pool:  # every measurement at once: all four share the same load
        tables = dict(zip(jobs, pool.map(lambda j: j(), jobs.values())))
    for name, table in tables.items():
        print(f"\n== {name}\n{table}", flush=True)


if __name__ == "__main__":
    main()
