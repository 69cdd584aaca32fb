"""Ratings from the next-token distribution on real data: throughput (one at a time, batched, prefix shared)
and Spearman.

    python benchmarks/bench_ratings.py --model gemma3-270m --data ../shared/data/videm --out
    /tmp/gemma_ratings.csv
    python benchmarks/bench_ratings.py --analyse-only --out /tmp/gemma_ratings.csv  # the Spearman table again
    # do the ratings help runs 1 and 4?
    python benchmarks/bench_ratings.py --cv P --out /tmp/gemma_ratings.csv

1. Every ad of every split (VIDEM: 250 dev + 85 test) x aspect, prefix-shared batches, appended
   to `--out` after each batch: a killed run resumes with the ads not yet in the file.
2. Throughput: the same `--speed-ads` ads x aspects prompts (the first ads of the first split)
   rated three ways in the same run: one prompt at a time, batches of `--batch` whole prompts
   (left-padded), and batches of `--batch` ads with each ad's shared prefix run once (memo's
   default); prompts/s and ratios, and the largest difference between the ways' label
   probabilities (they feed the same tokens). Skipped once recorded in the summary JSON.
3. Per aspect, Spearman of the expected rating (and of its std) against each target on the
   labelled split, with a 95% interval from resampling brands (`group`, VIDEM's channelName);
   also of the mean over aspects (`mean`) and of each aspect minus that mean (`<aspect>_rel`).

4. With `--cv P` (a memo project on the same data, `memo features` done): run 1's ridge on the
   format cues and run 4's GBT (untuned members) on cues, metadata and E5, each with and without
   the ratings of --out as one more stream (the expected rating per aspect), on the same repeated
   brand-grouped folds (`[evaluate] repeats`, memo.crossval.repeated_cross_val); mean pooled Spearman.

Steps 1-3 need no memo project: the dataset is read with memo.layouts.read_dataset. The prompts are the
`rating` template with the default [rationale] windowing (transcripts 1500 characters).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ASPECTS = ["humor", "emotion", "brand", "narrative", "message"]


def analyse(out: Path, data: str, aspects: list[str], n_boot: int, seed: int) -> list[dict]:
    import numpy as np
    import pandas as pd

    from memo.layouts import read_dataset
    from memo.metrics import bootstrap_ci, spearman

    ds = read_dataset(data)
    lab = ds.labelled().table
    df = pd.read_csv(out, dtype={"id": str}).drop_duplicates("id", keep="last").set_index("id")
    ids = [i for i in lab.index.astype(str) if i in df.index]
    present = [a for a in aspects if a in df.columns]
    # a small model's ratings share one ad-level factor; the mean over aspects is it, `<a>_rel` what is left
    df["mean"] = df[present].mean(axis=1)
    for a in present:
        df[f"{a}_rel"] = df[a] - df["mean"]
    # simple baselines on the same ads and resamples: the ad's duration and the length of its description
    base = {}
    for col in ("durationSeconds", "duration"):
        if col in lab.columns:
            base["baseline_duration"] = pd.to_numeric(lab.loc[ids, col], errors="coerce").to_numpy(float)
            break
    # VIDEM: description; Memento10k: captions
    text = next(c for c in ("description", "captions", "title") if c in lab.columns)
    base[f"baseline_{text}_chars"] = lab.loc[ids, text].fillna("").astype(str).str.len().to_numpy(float)
    rows = []
    for col in (
        present + ["mean"] + [f"{a}_rel" for a in present] + [f"{a}_std" for a in present] + list(base)
    ):
        if col not in df.columns and col not in base:
            continue
        pred = base[col] if col in base else df.loc[ids, col].to_numpy(float)
        r = {"feature": col, "n": len(ids), "sd_over_ads": float(np.std(pred))}
        for t in ds.targets:
            y = lab.loc[ids, t].to_numpy(float)
            g = lab.loc[ids, "group"].astype(str).to_numpy()
            lo, hi = bootstrap_ci(spearman, y, pred, n_boot=n_boot, seed=seed, groups=g)
            r[t] = [round(spearman(y, pred), 3), round(lo, 3), round(hi, 3)]
        rows.append(r)
    return rows


def grouped_cv(out: Path, project_dir: str, aspects: list[str], models: list[str]) -> list[dict]:
    """Runs 1 and 4 with and without the ratings stream, on the repeated brand-grouped folds of `memo
    evaluate`."""
    import numpy as np
    import pandas as pd

    from memo.crossval import build_predictor, cv_scores, repeated_cross_val
    from memo.features import load_available
    from memo.project import Project
    from memo.store import Stream

    project = Project.open(Path(project_dir) / "memo.toml")
    ratings = pd.read_csv(out, dtype={"id": str}).drop_duplicates("id", keep="last").set_index("id")
    targets = project.targets
    setups = {
        "run 1: ridge": ("ridge", ["cues"]),
        "run 4: gbt": ("gbt", ["cues", "metadata", "e5"]),
        "ratings alone: ridge": ("ridge", []),
    }
    rows = []
    for name, (pred, streams) in setups.items():
        if pred not in models:
            continue
        X, _ = load_available(project, project.dataset.train_split, streams or ["metadata.absolute"])
        X = X.take([i for i, v in enumerate(X.ids) if v in ratings.index])
        y = project.dataset.labelled().table.loc[X.ids, targets].astype(float)
        r = ratings.loc[X.ids, aspects].to_numpy(np.float32)  # (N, aspects): the expected rating per aspect
        variants = (
            {"with ratings": streams + ["ratings"]}
            if not streams
            else {"without": streams, "with ratings": streams + ["ratings"]}
        )
        for variant, use in variants.items():
            Xv = X.take(list(range(len(X))))
            Xv.streams = {
                **{k: v for k, v in X.streams.items() if k in use},
                "ratings": Stream(r[:, None, :], np.ones((len(X), 1), bool)),
            }
            params = {"streams": use, **({"n_trials": 0} if pred == "gbt" else {})}
            t = time.perf_counter()
            oof = repeated_cross_val(
                project, lambda: build_predictor(project, pred, "cpu", params), Xv, y, f"{name} {variant}"
            )
            scores = cv_scores(project, targets, oof)
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "seconds": round(time.perf_counter() - t, 1),
                    **{t_: round(scores[t_]["expected"], 3) for t_ in targets},
                    **{
                        f"{t_}_range": f"{scores[t_]['expected_min']:.3f}..{scores[t_]['expected_max']:.3f}"
                        for t_ in targets
                    },
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "videm"))
    ap.add_argument("--out", default="/tmp/gemma_ratings.csv")
    ap.add_argument("--aspects", default=",".join(ASPECTS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--speed-ads", type=int, default=8, help="ads (x aspects) in the throughput comparison; 0 skips it"
    )
    ap.add_argument("--limit", type=int, default=0, help="rate only the first N ads of each split (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--style", default="auto", choices=["auto", "chat", "plain"])
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--analyse-only", action="store_true")
    ap.add_argument(
        "--cv",
        default="",
        help="a memo project on the same data: runs 1 and 4 with and without the ratings (step 4)",
    )
    ap.add_argument("--cv-models", default="ridge,gbt")
    ap.add_argument(
        "--speed-only", action="store_true", help="only the throughput comparison (and the analysis of --out)"
    )
    args = ap.parse_args()
    aspects_names = [a for a in args.aspects.split(",") if a]
    out = Path(args.out)
    summary_path = out.with_suffix(".json")
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}

    if args.cv:
        summary["grouped_cv"] = grouped_cv(out, args.cv, aspects_names, args.cv_models.split(","))
        summary_path.write_text(json.dumps(summary, indent=1))
        return
    if not args.analyse_only:
        import numpy as np
        import pandas as pd
        import torch

        from memo.config import RationaleConfig
        from memo.layouts import read_dataset
        from memo.rationales.aspects import resolve_aspects
        from memo.rationales.prompts import load_template
        from memo.rationales.rating import Rater, describe, rating_messages
        from memo.rationales.writer import Writer

        torch.set_num_threads(args.threads)
        ds = read_dataset(args.data)
        aspects = resolve_aspects(aspects_names)
        cfg, tpl = RationaleConfig(), load_template("rating")
        t0 = time.perf_counter()
        rater = Rater(Writer(args.model, device=args.device), style=args.style).load()
        summary.update(
            model=args.model,
            load_seconds=round(time.perf_counter() - t0, 1),
            rating=describe(rater),
            threads=args.threads,
            batch=args.batch,
            aspects=aspects_names,
            template_hash=tpl.hash,
        )
        ads = [
            (s, v, split.table.loc[v])
            for s, split in ds.splits.items()
            for v in (split.table.index[: args.limit] if args.limit else split.table.index)
        ]
        groups = {v: [rating_messages(tpl, a, row, cfg) for a in aspects] for _, v, row in ads}
        lengths = [
            len(ids)
            for v in list(groups)[:50]
            for h, rs in [rater.encode_group(groups[v])]
            for ids in [h + r for r in rs]
        ]
        summary["prompt_tokens_first50"] = [
            int(np.min(lengths)),
            int(np.median(lengths)),
            int(np.max(lengths)),
        ]

        done = set(pd.read_csv(out, dtype={"id": str})["id"]) if out.is_file() else set()
        todo = [] if args.speed_only else [(s, v) for s, v, _ in ads if str(v) not in done]
        print(f"rating {len(todo)} ads x {len(aspects)} aspects ({len(done)} already in {out})", flush=True)
        t_all, n_all = time.perf_counter(), 0
        chunk = args.batch
        for a in range(0, len(todo), chunk):
            part = todo[a : a + chunk]
            r = rater.rate([groups[v] for _, v in part], batch_size=args.batch, mode="shared")
            A = len(aspects)
            rows = []
            for g, (s, v) in enumerate(part):
                row = {"id": str(v), "split": s}
                for k, asp in enumerate(aspects):
                    row[asp.name] = round(float(r.expected[g * A + k]), 4)
                for k, asp in enumerate(aspects):
                    row[f"{asp.name}_std"] = round(float(r.std[g * A + k]), 4)
                for k, asp in enumerate(aspects):
                    row[f"{asp.name}_mass"] = round(float(r.mass[g * A + k]), 4)
                rows.append(row)
            pd.DataFrame(rows).to_csv(out, mode="a", header=not out.is_file(), index=False)
            n_all += len(part) * A
            el = time.perf_counter() - t_all
            print(f"{a + len(part)}/{len(todo)} ads, {n_all / el:.2f} prompts/s", flush=True)
        if n_all:
            summary["full_run"] = {
                "prompts": n_all,
                "seconds": round(time.perf_counter() - t_all, 1),
                "prompts_per_s": round(n_all / (time.perf_counter() - t_all), 3),
            }
        summary_path.write_text(json.dumps(summary, indent=1))

    if not args.analyse_only and args.speed_ads and "speed" not in summary:
        sub = [groups[v] for _, v, _ in ads[: args.speed_ads]]
        n = sum(len(g) for g in sub)
        res, speed = {}, {}
        for mode in ("single", "batched", "shared"):
            t = time.perf_counter()
            res[mode] = rater.rate(sub, batch_size=args.batch, mode=mode)
            dt = time.perf_counter() - t
            speed[mode] = {"prompts": n, "seconds": round(dt, 1), "prompts_per_s": round(n / dt, 3)}
            print(f"{mode}: {n} prompts in {dt:.1f} s ({n / dt:.3f}/s)", flush=True)
        speed["batched_over_single"] = round(speed["single"]["seconds"] / speed["batched"]["seconds"], 2)
        speed["shared_over_single"] = round(speed["single"]["seconds"] / speed["shared"]["seconds"], 2)
        speed["shared_over_batched"] = round(speed["batched"]["seconds"] / speed["shared"]["seconds"], 2)
        speed["max_prob_diff"] = float(
            max(np.abs(res[m].probs - res["single"].probs).max() for m in ("batched", "shared"))
        )
        summary["speed"] = speed
        summary_path.write_text(json.dumps(summary, indent=1))
        print(json.dumps(speed), flush=True)

    table = analyse(out, args.data, aspects_names, args.boot, 0)
    summary["spearman"] = table
    summary_path.write_text(json.dumps(summary, indent=1))
    for r in table:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
