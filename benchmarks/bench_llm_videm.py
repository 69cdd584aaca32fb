"""The LLM fusion with a real Gemma-3 on VIDEM dev: brand-grouped CV beside the priors, LoRA rank on inner
folds.

    # where the data is: the same folds as `memo evaluate` (memo.splits.grouped_kfold, seed [project] seed +
    repeat)
    python benchmarks/bench_llm_videm.py run    --project P --out DIR [--backbone gemma3-270m] [--device cuda]
    # for a machine without the data (a GPU box): pack X, y once, run there with --bundle, score here
    python benchmarks/bench_llm_videm.py pack   --project P --bundle videm.npz
    python benchmarks/bench_llm_videm.py run    --bundle videm.npz --backbone FOLDER --device cuda --out DIR
    python benchmarks/bench_llm_videm.py report --project P --out DIR

run, in this order, each result written to DIR as soon as it exists and skipped on a restart:
1. outer: for each outer fold, LLMFusion with the [llm] defaults (LoRA rank `--rank`) fitted on the
   training brands, predictions for the held-out brands (outer_r{repeat}_f{fold}_rank{r}.csv);
2. inner (unless --no-sweep): for each outer fold and each rank of `--ranks`, a grouped `--inner`-fold
   CV inside that fold's training brands only, one file per inner fit
   (inner_r{repeat}_f{fold}_rank{r}_i{j}.json: mean Spearman of the two targets on that inner fold);
   the rank with the best inner mean is chosen for that outer fold and fitted on it (step 1 with that
   rank); those outer predictions make the nested figure. The outer held-out brands never choose a rank.
Every fit is claimed with an flock on its own .lock file, so two processes started with the same
arguments share the work (one thread each on a 2-core machine), and a killed one frees its claim.
`--only 0,1` restricts both steps to those outer folds.
report: pooled Spearman of the outer predictions beside duration, text_ridge and run 1 (ridge on cues)
fitted on the same outer folds; with all five folds, also the rank average of run 1 and the fusion and
what run 3 (`choose = true`) makes of them (memo.submission.runs.chosen_out_of_fold: each fold's pick
among the two runs and their rank average is made on the other folds); and, per swept outer fold, the
inner means per rank, the chosen rank and its outer score (rank_sweep_r{repeat}.csv).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGETS = ["memorability_score", "brand_memorability"]


def llm_params(args, rank: int) -> dict:
    """The [llm] defaults of memo.config (what `memo init` writes), with the backbone, device and LoRA rank
    set."""
    import dataclasses

    from memo.config import LLMConfig

    p = dict(
        getattr(args, "run_params", None)
        or {f.name: getattr(LLMConfig(), f.name) for f in dataclasses.fields(LLMConfig)}
    )
    p.update(
        backbone=args.backbone,
        device=args.device,
        random_state=args.seed,
        verbose=False,
        lora_r=rank,
        lora_alpha=2 * rank,
    )
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items()}


def load_xy(args):
    """(X: memo.store.Features of the dev split, y: DataFrame ids x targets), from the project or the
    bundle."""
    if args.bundle and args.part != "pack":
        if not Path(args.bundle).is_file():
            raise SystemExit(
                f"bundle {args.bundle} does not exist; write it with `pack --project P --bundle "
                f"{args.bundle}` first."
            )
        return read_bundle(args.bundle)
    if not args.project:
        raise SystemExit(
            "give --project (a memo project on the VIDEM dev data) or --bundle (written by `pack`)."
        )
    from memo.config import LLMConfig
    from memo.crossval import target_frame
    from memo.features import load_available
    from memo.project import Project

    project = Project.open(Path(args.project) / "memo.toml")
    if args.run:  # exactly what [runs.RUN] reads (its streams, its rationales) and its llm parameters
        from memo.features import load_features
        from memo.submission.plan import make_predictor, resolve_run, run_settings

        plan = resolve_run(project, args.run, args.device)
        X = load_features(run_settings(project, plan), project.dataset.train_split, plan.streams)
        args.run_params = make_predictor(project, plan, args.device).get_params()
        print(
            f"run {args.run}: streams {plan.streams}; rationales quoted from "
            f"{args.run_params.get('rationale_log') or 'nowhere'}",
            flush=True,
        )
        return X, target_frame(X, TARGETS)
    X, notes = load_available(project, project.dataset.train_split, list(LLMConfig().streams))
    for n in notes:
        print(n, flush=True)
    return X, target_frame(X, TARGETS)


def write_bundle(path: str, X, y: pd.DataFrame) -> None:
    """X and y in one .npz of plain arrays and JSON text (no pickle: a bundle travels between machines)."""
    arrays = {
        "ids": np.asarray(X.ids, str),
        "groups": np.asarray(X.groups, str),
        "table": np.asarray(X.table.to_json(orient="split", double_precision=15)),
        "y": np.asarray(y.to_json(orient="split", double_precision=15)),
        "index_names": np.asarray(json.dumps([X.table.index.name, y.index.name])),
    }
    for name, st in X.streams.items():
        arrays[f"values.{name}"], arrays[f"mask.{name}"] = st.values, st.mask
        arrays[f"names.{name}"] = np.asarray(json.dumps(st.names))
    tmp = Path(path).with_name(Path(path).name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_bundle(path: str):
    """(X: memo.store.Features, y) from write_bundle's file; allow_pickle=False, so loading runs no code."""
    import io

    from memo.store import Features, Stream

    with np.load(path, allow_pickle=False) as z:
        table = pd.read_json(io.StringIO(str(z["table"])), orient="split", dtype=False)
        y = pd.read_json(io.StringIO(str(z["y"])), orient="split", dtype=False)
        streams = {
            k.split(".", 1)[1]: Stream(
                z[k], z["mask." + k.split(".", 1)[1]], json.loads(str(z["names." + k.split(".", 1)[1]]))
            )
            for k in z.files
            if k.startswith("values.")
        }
        ids = [str(i) for i in z["ids"]]
        names = json.loads(str(z["index_names"]))
        table.index, y.index = pd.Index(ids, name=names[0]), pd.Index(ids, name=names[1])
        return Features(ids, z["groups"].astype(object), table, streams), y


def fit_predict(args, rank: int, X, y, tr, te) -> tuple[pd.DataFrame, dict]:
    """Fit LLMFusion on rows tr, predict rows te; returns (predictions, timing figures)."""
    import torch

    from memo.llm_fusion.model import LLMFusion

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    model = LLMFusion(**llm_params(args, rank)).fit(X.take(tr), y.iloc[tr])
    fit_s = time.perf_counter() - t
    pred = model.predict(X.take(te))
    end = [h for h in model.history_ if "train_runtime" in h][-1]
    steps = max(h.get("step", 0) for h in model.history_)
    info = {
        "rank": rank,
        "n_train": len(tr),
        "n_test": len(te),
        "fit_s": round(fit_s, 1),
        "predict_s": round(time.perf_counter() - t - fit_s, 1),
        "steps": steps,
        "train_runtime_s": end["train_runtime"],
        "s_per_step": round(end["train_runtime"] / max(steps, 1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "best_eval_spearman": max(
            [h["eval_spearman"] for h in model.history_ if "eval_spearman" in h], default=None
        ),
    }
    if torch.cuda.is_available():
        info["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return pred, info


def mean_spearman(y: pd.DataFrame, pred: pd.DataFrame) -> float:
    from memo.metrics import spearman

    return float(
        np.mean([spearman(y[t].to_numpy(float), pred.loc[y.index, t].to_numpy(float)) for t in TARGETS])
    )


def run(args) -> None:
    from memo.splits import grouped_kfold
    from memo.store import atomic_write_text

    X, y = load_xy(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ranks = [int(r) for r in args.ranks.split(",") if r]
    log = open(out / "timings.jsonl", "a")

    def outer_fit(rep, k, tr, te, rank):
        f = out / f"outer_r{rep}_f{k}_rank{rank}.csv"
        if f.is_file():
            return
        pred, info = fit_predict(args, rank, X, y, tr, te)
        atomic_write_text(f, pred.to_csv())  # a file that exists is complete
        log.write(json.dumps({"what": "outer", "repeat": rep, "fold": k, **info}) + "\n")
        log.flush()
        print(f"outer r{rep} f{k} rank {rank}: {info}", flush=True)

    folds = {
        rep: grouped_kfold(X.groups, n_splits=args.folds, seed=args.seed + rep) for rep in range(args.repeats)
    }
    only = {int(k) for k in args.only.split(",") if k}
    for rep, fs in folds.items():  # 1. the reported CV at the default rank
        for k, (tr, te) in enumerate(fs):
            if not only or k in only:
                with claimed(out / f"outer_r{rep}_f{k}_rank{args.rank}") as mine:
                    if mine:
                        outer_fit(rep, k, tr, te, args.rank)
    if args.no_sweep:
        return
    for rep, fs in folds.items():  # 2. the rank, chosen on inner folds of each outer training set
        for k, (tr, te) in enumerate(fs):
            if only and k not in only:
                continue
            inner = grouped_kfold(X.groups[tr], n_splits=args.inner, seed=args.seed)
            for rank in ranks:
                # one file per inner fit: a restart or a second process takes the next
                for j, (itr, ite) in enumerate(inner):
                    f = out / f"inner_r{rep}_f{k}_rank{rank}_i{j}.json"
                    with claimed(f.with_suffix("")) as mine:
                        if not mine or f.is_file():
                            continue
                        pred, info = fit_predict(args, rank, X, y, tr[itr], tr[ite])
                        score = mean_spearman(y.iloc[tr[ite]], pred)
                        atomic_write_text(
                            f,
                            json.dumps(
                                {"repeat": rep, "fold": k, "rank": rank, "inner": j, "score": score, **info}
                            ),
                        )
                        log.write(
                            json.dumps(
                                {
                                    "what": "inner",
                                    "repeat": rep,
                                    "fold": k,
                                    "inner": j,
                                    "score": score,
                                    **info,
                                }
                            )
                            + "\n"
                        )
                        log.flush()
                        print(f"inner r{rep} f{k} rank {rank} fold {j}: {score:.3f}", flush=True)
            means = inner_means(out, rep, k, ranks, args.inner)
            # every rank swept (by this process or another): fit the winner on the outer fold
            if len(means) == len(ranks):
                best = max(ranks, key=means.get)
                with claimed(out / f"outer_r{rep}_f{k}_rank{best}") as mine:
                    if mine:
                        outer_fit(rep, k, tr, te, best)


@contextlib.contextmanager
def claimed(stem: Path):
    """Yields True when this process holds stem.lock (an flock, so a killed holder frees it), False when
    another does."""
    with open(stem.with_name(stem.name + ".lock"), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def inner_means(out: Path, rep: int, k: int, ranks: list[int], n_inner: int) -> dict[int, float]:
    """{rank: mean inner-fold score} for the ranks whose n_inner inner fits of outer fold k are all
    written."""
    means = {}
    for rank in ranks:
        files = [out / f"inner_r{rep}_f{k}_rank{rank}_i{j}.json" for j in range(n_inner)]
        if all(f.is_file() for f in files):
            means[rank] = float(np.mean([json.loads(f.read_text())["score"] for f in files]))
    return means


def report(args) -> None:
    """Pooled Spearman of the LLM's outer predictions beside priors and run 1 fitted on the same folds."""
    from memo.crossval import build_predictor, cross_val_predict
    from memo.features import load_available
    from memo.metrics import spearman
    from memo.project import Project
    from memo.splits import grouped_kfold

    project = Project.open(Path(args.project) / "memo.toml")
    X, y = load_xy(args)
    out = Path(args.out)
    rows, sweeps = [], {}
    for rep in range(args.repeats):
        folds = grouped_kfold(X.groups, n_splits=args.folds, seed=args.seed + rep)
        preds = {}
        for rank in sorted({args.rank, *[int(r) for r in args.ranks.split(",") if r]}):
            files = [out / f"outer_r{rep}_f{k}_rank{rank}.csv" for k in range(len(folds))]
            if all(f.is_file() for f in files):
                preds[f"llm (LoRA r={rank})"] = pd.concat([pd.read_csv(f, index_col=0) for f in files])
        swept = sweeps[rep] = sweep_table(args, out, rep, folds, X, y)
        if len(swept) == len(folds):  # nested: per outer fold the rank its inner folds chose
            preds[f"llm (rank chosen on inner folds: {','.join(map(str, swept['chosen']))})"] = pd.concat(
                [
                    pd.read_csv(out / f"outer_r{rep}_f{k}_rank{r}.csv", index_col=0)
                    for k, r in zip(swept.index, swept["chosen"])
                ]
            )
        for name, params in [
            ("run 1: ridge (cues)", {"streams": ["cues"]}),
            ("duration", {}),
            ("text_ridge", {}),
        ]:
            pred_name = "ridge" if name.startswith("run 1") else name
            Xp, _ = load_available(project, "dev", list(params.get("streams", [])) or ["metadata.absolute"])
            Xp = Xp.take([Xp.ids.index(i) for i in X.ids])
            preds[name] = cross_val_predict(
                lambda: build_predictor(project, pred_name, "cpu", params), Xp, y, folds
            )
        fusion = preds.get(f"llm (LoRA r={args.rank})")
        # what run 3 (choose = true) would make of run 1 and this fusion, on the same folds
        if fusion is not None:
            from memo.metrics import blend_predictions
            from memo.submission.blends import chosen_out_of_fold

            run1 = preds["run 1: ridge (cues)"].loc[y.index, TARGETS]
            fus = fusion.loc[y.index, TARGETS]
            cands = {"rank average": blend_predictions([run1, fus]), "run 1": run1, "run 2": fus}
            preds["rank average of run 1 and the fusion"] = cands["rank average"]
            preds["run 3: chosen per fold on the other folds (nested)"] = chosen_out_of_fold(
                cands, y[TARGETS], folds
            )
        for name, p in preds.items():
            rows.append(
                {
                    "repeat": rep,
                    "model": name,
                    "fold": "pooled",
                    **{
                        t: round(spearman(y[t].to_numpy(float), p.loc[y.index, t].to_numpy(float)), 3)
                        for t in TARGETS
                    },
                }
            )
        done = [k for k in range(len(folds)) if (out / f"outer_r{rep}_f{k}_rank{args.rank}.csv").is_file()]
        # partial: the finished folds alone, beside the others on those folds
        if done and len(done) < len(folds):
            llm = pd.concat(
                [pd.read_csv(out / f"outer_r{rep}_f{k}_rank{args.rank}.csv", index_col=0) for k in done]
            )
            for name, p in [(f"llm (LoRA r={args.rank}), folds {done} only", llm), *preds.items()]:
                for k in done:
                    te = [X.ids[i] for i in folds[k][1]]
                    rows.append(
                        {
                            "repeat": rep,
                            "model": name,
                            "fold": k,
                            **{
                                t: round(
                                    spearman(y.loc[te, t].to_numpy(float), p.loc[te, t].to_numpy(float)), 3
                                )
                                for t in TARGETS
                            },
                        }
                    )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    table.to_csv(out / "report.csv", index=False)
    for rep, swept in sweeps.items():
        if len(swept):
            print(
                f"\nLoRA rank on inner folds, repeat {rep} (inner: mean Spearman of the two targets, "
                f"mean +- sd over {args.inner} inner folds;"
                " outer: the fold's held-out brands, memorability_score / brand_memorability)"
            )
            print(swept.to_string())
            swept.to_csv(out / f"rank_sweep_r{rep}.csv")


def sweep_table(args, out: Path, rep: int, folds, X, y) -> pd.DataFrame:
    """One row per outer fold whose ranks are all swept: inner mean +- sd per rank, the chosen rank, outer
    scores."""
    from memo.metrics import spearman

    ranks = [int(r) for r in args.ranks.split(",") if r]
    rows = {}
    for k, (_, te) in enumerate(folds):
        if len(inner_means(out, rep, k, ranks, args.inner)) < len(ranks):
            continue
        row = {}
        for rank in ranks:
            scores = [
                json.loads((out / f"inner_r{rep}_f{k}_rank{rank}_i{j}.json").read_text())["score"]
                for j in range(args.inner)
            ]
            row[f"inner r={rank}"] = f"{np.mean(scores):.3f} +- {np.std(scores):.3f}"
        means = inner_means(out, rep, k, ranks, args.inner)
        row["chosen"] = max(ranks, key=means.get)  # the rule `run` fits on the outer fold
        ids = [X.ids[i] for i in te]
        for rank in sorted({args.rank, row["chosen"]}):
            f = out / f"outer_r{rep}_f{k}_rank{rank}.csv"
            if f.is_file():
                p = pd.read_csv(f, index_col=0)
                row[f"outer r={rank}"] = " / ".join(
                    f"{spearman(y.loc[ids, t].to_numpy(float), p.loc[ids, t].to_numpy(float)):.3f}"
                    for t in TARGETS
                )
        rows[k] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("outer fold")


def probe(args) -> None:
    """Not the fusion: the frozen backbone's mean last hidden state over each prompt (no soft tokens, no
    LoRA), then memo's ridge (penalty on inner brand-grouped folds) on the same outer folds."""
    import torch

    from memo.baselines.linear import RidgeRanker
    from memo.crossval import cross_val_predict
    from memo.llm_fusion.model import build_prompt_ids, prompt_body
    from memo.llm_fusion.modules import load_backbone
    from memo.metrics import spearman
    from memo.splits import grouped_kfold
    from memo.store import Stream

    X, y = load_xy(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    f = out / "probe_hidden.npy"
    if not f.is_file():
        decoder, tok = load_backbone(args.backbone)
        decoder.eval()
        fields = ["title", "description", "transcript", "captions"]  # the [llm] prompt_fields default
        ids = [
            build_prompt_ids(tok, prompt_body(X.table.iloc[i], fields, 60), [], 1, "", 512)
            for i in range(len(X))
        ]
        t, rows = time.perf_counter(), []
        with torch.no_grad():
            for b in range(0, len(ids), 8):
                chunk = ids[b : b + 8]
                L = max(map(len, chunk))
                inp = torch.tensor([[0] * (L - len(c)) + c for c in chunk])  # left padding
                mask = torch.tensor([[0] * (L - len(c)) + [1] * len(c) for c in chunk])
                # positions over real tokens, as FusionModel counts them
                pos = (mask.cumsum(1) - 1).clamp(min=0)
                # (B, L, H)
                h = decoder(input_ids=inp, attention_mask=mask, position_ids=pos).last_hidden_state
                rows.append(((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy())  # (B, H)
        H = np.concatenate(rows).astype(np.float32)
        print(
            f"probe: {len(ids)} prompts, {sum(map(len, ids))} tokens, forward only in "
            f"{time.perf_counter() - t:.0f}s",
            flush=True,
        )
        np.save(f.with_suffix(".tmp.npy"), H)
        os.replace(f.with_suffix(".tmp.npy"), f)
    H = np.load(f)
    X.streams = {"gemma.mean": Stream(H[:, None, :], np.ones((len(X), 1), bool))}
    for rep in range(args.repeats):
        folds = grouped_kfold(X.groups, n_splits=args.folds, seed=args.seed + rep)
        oof = cross_val_predict(lambda: RidgeRanker(streams=["gemma.mean"]), X, y, folds)
        print(
            f"probe repeat {rep}: "
            + ", ".join(f"{t} {spearman(y[t].to_numpy(float), oof[t].to_numpy(float)):.3f}" for t in TARGETS)
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["pack", "run", "report", "probe"])
    ap.add_argument("--project", default="")
    ap.add_argument("--bundle", default="")
    ap.add_argument("--out", default="/tmp/memo-llm-videm")
    ap.add_argument("--backbone", default="gemma3-270m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rank", type=int, default=16, help="the default LoRA rank ([llm] lora_r)")
    ap.add_argument("--ranks", default="4,16,64", help="ranks compared on inner folds")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="[project] seed: repeat i uses grouped_kfold seed + i, as memo evaluate",
    )
    ap.add_argument(
        "--run",
        default="",
        help="with --project: fit [runs.RUN] as memo submit does (its streams, rationales, [llm] params)",
    )
    ap.add_argument(
        "--only",
        default="",
        help="run: only these outer folds (e.g. 0 or 3,4), for the reported CV and the rank sweep",
    )
    ap.add_argument(
        "--no-sweep", action="store_true", help="run: the reported CV at --rank only, no rank sweep"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.part == "pack":
        X, y = load_xy(args)
        write_bundle(args.bundle, X, y)
        print(f"{args.bundle}: {len(X)} videos, streams {sorted(X.streams)}")
    elif args.part == "run":
        run(args)
    elif args.part == "probe":
        probe(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
