"""Real-data benchmark of the GBT ensemble: grouped CV Spearman beside its members, the simple
baselines and a per-block ablation, all on the same folds.

    cd $(mktemp -d) && memo init --data /work/shared/data/videm --offline
    memo features --extractors e5
    python /work/main/benchmarks/bench_gbt_real.py --project . --trials 8 --out bench-out \\
        --ablate-blocks 'metadata;metadata,e5'

Prints markdown tables (and writes them with CSVs under --out):
1. the tuned ensemble (nested: Optuna inside each outer training fold), each of its members as
   fitted inside that same ensemble, and the [evaluate] baselines, pooled out-of-fold Spearman
   with a 95% brand-bootstrap interval;
2. an ablation: the ensemble with default (untuned) members on each block alone and on all
   blocks, so the rows compare like with like;
3. with --holdout-ids FILE (one video id per line): a confirmation on videos that were never
   looked at while choosing settings: every model is fitted on the other labelled videos and
   scored on these (models and baselines as in 1).
Skips cleanly (exit 0 with a message) when the project or its data is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--project", type=Path, default=Path("."), help="folder with memo.toml (features already computed)"
    )
    ap.add_argument(
        "--trials", type=int, default=8, help="optuna trials per member and target, per outer fold"
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds of tuning per member and target")
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--streams",
        "--blocks",
        dest="blocks",
        default="metadata.brand,e5",
        help="stream selectors of the full model (comma list)",
    )
    ap.add_argument(
        "--members", default="", help="members of the full model (comma list; default: [gbt] members)"
    )
    ap.add_argument(
        "--ablate-blocks",
        default="",
        help="extra block sets for the ablation, ';'-separated, e.g. 'metadata,e5;e5'",
    )
    ap.add_argument(
        "--baselines", default=None, help="comma list of baselines (default: [evaluate] baselines)"
    )
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument(
        "--holdout-ids",
        type=Path,
        default=None,
        help="file of video ids kept out of every choice: fit on the rest, score them",
    )
    ap.add_argument(
        "--no-cv",
        action="store_true",
        help="skip the cross-validation table (e.g. only the holdout confirmation)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()

    if not (args.project / "memo.toml").is_file():
        print(f"no memo.toml in {args.project}; see the usage at the top of this file. Skipping.")
        return 0
    from memo.baselines.gbt import GBTEnsemble
    from memo.baselines.members import FULL, TREES
    from memo.crossval import build_predictor, cross_val_predict, score_predictions, target_frame
    from memo.evaluation.compare import summary_table, to_markdown
    from memo.features.load import load_available
    from memo.project import Project
    from memo.splits import check_disjoint, fold_assignment, grouped_kfold

    project = Project.open(args.project / "memo.toml")
    if not project.data_path.exists():
        print(f"dataset {project.data_path} is not here; skipping.")
        return 0
    cfg = project.config
    seed = project.seed
    blocks = [b.strip() for b in args.blocks.split(",") if b.strip()]
    targets = project.targets
    split = project.dataset.train_split
    X, notes = load_available(project, split, blocks)
    y = target_frame(X, targets)
    folds = grouped_kfold(X.groups, n_splits=args.folds, seed=seed)
    fold_of = fold_assignment(folds, len(X))
    groups = np.asarray(X.groups)
    n_boot = cfg.evaluate.bootstrap
    print(
        f"{project.data_path}: {len(X)} videos, {len(set(groups))} groups, targets {targets}, streams "
        f"{sorted(X.streams)}"
    )
    for n in notes:
        print("note:", n)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    gbt_kw = dict(
        streams=blocks,
        components=args.components,
        n_trials=args.trials,
        timeout=args.timeout,
        threads=args.threads,
    )
    members = [m.strip() for m in args.members.split(",") if m.strip()] or list(cfg.gbt.members)
    gbt_kw["members"] = members
    baselines = (
        cfg.evaluate.baselines if args.baselines is None else [b for b in args.baselines.split(",") if b]
    )
    if args.holdout_ids is not None:
        holdout(project, split, X, y, targets, gbt_kw, members, baselines, args)
    if args.no_cv:
        return 0

    # 1. the tuned ensemble and its members, fitted once per outer fold
    t0 = time.perf_counter()
    preds = {
        name: pd.DataFrame(np.nan, index=pd.Index(X.ids, name="id"), columns=targets)
        for name in ["gbt", *[f"gbt:{m}" for m in members]]
    }
    chosen = []
    for k, (tr, te) in enumerate(folds):
        check_disjoint(X.ids, X.groups, tr, te)
        model = GBTEnsemble.from_config(cfg, **gbt_kw).fit(X.take(tr), y.iloc[tr])
        preds["gbt"].iloc[te] = model.predict(X.take(te))[targets].to_numpy()
        for m in members:
            preds[f"gbt:{m}"].iloc[te] = model.member_predict(X.take(te), m)[targets].to_numpy()
        chosen.append({t: c["kind"] for t, c in model.combiner_.items()})
        print(f"fold {k}: {time.perf_counter() - t0:.0f}s, ensemble {chosen[-1]}", flush=True)
    t_gbt = time.perf_counter() - t0
    for name, p in preds.items():
        rows += score_predictions(p, y, groups, fold_of, name, n_boot=n_boot, seed=seed)
    for name in baselines:
        t1 = time.perf_counter()
        Xb, _ = load_available(project, split, build_predictor(project, name, "cpu").streams)
        p = cross_val_predict(
            lambda: build_predictor(project, name, "cpu"), Xb, target_frame(Xb, targets), folds, desc=name
        )
        rows += score_predictions(p, y, groups, fold_of, name, n_boot=n_boot, seed=seed)
        print(f"{name}: {time.perf_counter() - t1:.0f}s", flush=True)
    main_table = summary_table(pd.DataFrame(rows))
    (args.out / "main.csv").write_text(main_table.to_csv(index=False))
    print(
        f"\n## Tuned ensemble ({args.trials} trials per member and target, nested), members and "
        f"baselines; gbt took {t_gbt:.0f}s"
    )
    print(f"ensemble chosen per fold: {chosen}\n")
    print(to_markdown(main_table))

    # 2. ablation: untuned members, one block at a time, then all blocks, then any extra block sets;
    #    then the full blocks with the trees alone and each full-matrix member alone
    if not args.no_ablation:
        arows = []
        variants = [[b] for b in blocks] + ([blocks] if len(blocks) > 1 else [])
        variants += [
            [b.strip() for b in v.split(",") if b.strip()] for v in args.ablate_blocks.split(";") if v.strip()
        ]
        if any(
            b not in X.streams and not any(s.startswith(b + ".") for s in X.streams)
            for v in variants
            for b in v
        ):
            X, more = load_available(project, split, sorted({b for v in variants for b in v} | set(blocks)))
            notes += more
        # the trees together, then each full-matrix member alone (ridge, kernel), on the full blocks
        trees = [m for m in members if m in TREES]
        member_sets = ([trees] if trees else []) + [[m] for m in members if m in FULL]
        for mem in member_sets if len(members) > 1 else ():
            name = f"{'+'.join(blocks)} [{'+'.join(mem)}]"
            p = cross_val_predict(
                lambda: GBTEnsemble.from_config(cfg, **{**gbt_kw, "members": mem, "n_trials": 0}),
                X,
                y,
                folds,
                desc=name,
            )
            arows += score_predictions(p, y, groups, fold_of, name, n_boot=n_boot, seed=seed)
            print(f"ablation {name}: done", flush=True)
        for bl in variants:
            present = [b for b in bl if any(s == b or s.startswith(b + ".") for s in X.streams)]
            if not present:
                print(f"ablation: block(s) {bl} not in the store; skipped")
                continue
            name = "+".join(bl)
            p = cross_val_predict(
                lambda: GBTEnsemble.from_config(cfg, **{**gbt_kw, "streams": bl, "n_trials": 0}),
                X,
                y,
                folds,
                desc=name,
            )
            arows += score_predictions(p, y, groups, fold_of, name, n_boot=n_boot, seed=seed)
            print(f"ablation {name}: done", flush=True)
        if arows:
            abl = summary_table(pd.DataFrame(arows))
            (args.out / "ablation.csv").write_text(abl.to_csv(index=False))
            print("\n## Ablation (default members, no tuning, same folds)\n")
            print(to_markdown(abl))
    return 0


def holdout(project, split, X, y, targets, gbt_kw, members, baselines, args) -> None:
    """Fit on every labelled video not in the holdout file, score the held-out ones (one 'fold')."""
    from memo.baselines.gbt import GBTEnsemble
    from memo.crossval import build_predictor, score_predictions, target_frame
    from memo.evaluation.compare import summary_table, to_markdown
    from memo.features.load import load_available

    wanted = {line.strip() for line in args.holdout_ids.read_text().splitlines() if line.strip()}
    te = np.flatnonzero(np.isin(np.asarray(X.ids, dtype=str), list(wanted)))
    tr = np.setdiff1d(np.arange(len(X)), te)
    if len(te) < len(wanted):
        print(
            f"note: {len(wanted) - len(te)} held-out ids are not labelled videos of {split}; scoring "
            f"the {len(te)} that are"
        )
    groups, fold_of = np.asarray(X.groups), np.zeros(len(X), int)
    rows, t0 = [], time.perf_counter()
    model = GBTEnsemble.from_config(project.config, **gbt_kw).fit(X.take(tr), y.iloc[tr])
    sub = y.iloc[te]
    rows += score_predictions(
        model.predict(X.take(te))[targets],
        sub,
        groups[te],
        fold_of[te],
        "gbt",
        n_boot=project.config.evaluate.bootstrap,
        seed=project.seed,
    )
    for m in members:
        p = model.member_predict(X.take(te), m)[targets]
        rows += score_predictions(
            p,
            sub,
            groups[te],
            fold_of[te],
            f"gbt:{m}",
            n_boot=project.config.evaluate.bootstrap,
            seed=project.seed,
        )
    print(
        f"holdout gbt: {time.perf_counter() - t0:.0f}s, ensemble "
        f"{ ({t: c['kind'] for t, c in model.combiner_.items()}) }",
        flush=True,
    )
    for name in baselines:
        Xb, _ = load_available(project, split, build_predictor(project, name, "cpu").streams)
        assert list(Xb.ids) == list(X.ids), "every loader returns the split's videos in table order"
        yb = target_frame(Xb, targets)
        p = build_predictor(project, name, "cpu").fit(Xb.take(tr), yb.iloc[tr]).predict(Xb.take(te))[targets]
        rows += score_predictions(
            p, sub, groups[te], fold_of[te], name, n_boot=project.config.evaluate.bootstrap, seed=project.seed
        )
    table = summary_table(pd.DataFrame(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "holdout.csv").write_text(table.to_csv(index=False))
    print(f"\n## Holdout confirmation: fitted on {len(tr)} videos, scored on the {len(te)} held out\n")
    print(to_markdown(table))


if __name__ == "__main__":
    sys.exit(main())
