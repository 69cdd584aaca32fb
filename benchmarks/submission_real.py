"""Benchmark `memo init --offline` + `memo submit --run 1` on real data, beside simple baselines.

    python benchmarks/submission_real.py [--data ../shared/data/videm] [--work /tmp/memo-bench-submit] [--runs
    1]

Prints: wall time of the first `memo submit` (features + CV + fit + file) and of the second (the
up-to-date check, which must compute nothing), the run file's row count and validation result,
and the grouped-CV Spearman of each run beside three simple baselines scored on the same
brand-grouped folds (duration, text_ridge, metadata_gbt as extra runs of the same project).
Skips cleanly when the data folder is absent. The CPU is shared: times are indicative.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BASELINES = {"b-duration": "duration", "b-text": "text_ridge", "b-meta": "metadata_gbt"}


def sh(args: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return dt, out.stdout + out.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "videm"))
    ap.add_argument("--work", default="/tmp/memo-bench-submit")
    ap.add_argument("--runs", default="1", help="comma list of runs to time")
    ap.add_argument("--fresh", action="store_true", help="delete the work folder first (recompute features)")
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    if not data.exists():
        print(f"skipped: no data at {data}")
        return
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    sh(["memo", "init", "--data", str(data), "--offline", "--team", "demo", "--force"], work)
    with open(work / "memo.toml", "a") as f:  # the baselines as runs: same project, same folds
        for name, predictor in BASELINES.items():
            f.write(
                f'\n[runs.{name}]\npredictor = "{predictor}"\nfeatures = ["metadata", '
                '"e5"]\ndescription = "baseline"\n'
            )
    rows = []
    for run in args.runs.split(","):
        t1, log = sh(["memo", "submit", "--run", run, "--force"], work)
        t2, log2 = sh(["memo", "submit", "--run", run], work)
        assert f"run {run} is up to date" in log2, log2
        path = next((work / "run_files").glob(f"*run{run}.csv"))
        _, vlog = sh(["memo", "validate", str(path)], work)
        n = sum(1 for _ in open(path)) - 1
        print(
            f"run {run}: first submit {t1:.0f} s, second submit {t2:.1f} s (up to date, {t1 / t2:.0f}x "
            f"faster); {n} rows; {vlog.strip()}"
        )
        rows.append(run)
    for name in BASELINES:
        sh(["memo", "submit", "--run", name, "--force"], work)
        rows.append(name)
    manifests = {
        run: json.loads(next((work / "run_files").glob(f"*run{run}.manifest.json")).read_text())
        for run in rows
    }
    # manifests sort their keys; print in the run's target order
    targets = manifests[rows[0]]["resolved"]["targets"]
    print(f"\n| run | predictor | {' | '.join(targets)} |")
    print("|---|---|" + "---|" * len(targets))
    for run, m in manifests.items():
        cells = []
        for t in targets:
            s = m["cv"]["scores"][t]
            cells.append(f"{s['spearman']:.3f} [{s['spearman_lo']:.2f}, {s['spearman_hi']:.2f}]")
        print(
            f"| {run} | {m['resolved']['predictor']} ({', '.join(m['resolved'].get('streams', []))}) | "
            f"{' | '.join(cells)} |"
        )
    print(f"\n{m['cv']['scheme']}; Spearman with 95% intervals from resampling brands")


if __name__ == "__main__":
    main()
