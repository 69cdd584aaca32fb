"""The LLM stages on a small CPU, old and new settings side by side in one process (issue #32).

    python benchmarks/bench_cpu_llm.py precision
    python benchmarks/bench_cpu_llm.py padding --project memo.toml [--run 2] [--split dev]
    python benchmarks/bench_cpu_llm.py cv --project memo.toml --old-memo PATH [--run 2]

precision: what `[models] precision = "auto"` picks on this CPU (memo.models.cpu_has_bf16) and why: the
issue's matrix product (1024 x 640 by 640 x 2048, one thread) in fp32, in bf16 and under
torch.autocast, the median of 5 after 2 warm-ups.

padding: the run's LLM prompts for a split, tokenised as LLMFusion tokenises them (texts, the rationales
the log holds, soft-token markers; cut to [llm] max_length), then the share of padded tokens in
- training batches ([llm] batch_size, 3 epochs): random order (transformers' RandomSampler, the old
  way), transformers' LengthGroupedSampler, memo's LengthBuckets (the new way);
- prediction batches ([llm] eval_batch_size): the split's order (old) and sorted by length (new).

cv: `memo evaluate --run 2` (run 2's five CV fits of the LoRA fusion and their predictions) with the
older memo given by --old-memo and then with this one, each in a fresh copy of the project (features and
rationales kept, the run's cached CV removed): wall time, Trainer's train runtime summed over the
fits, and the run's CV figures. Make the older memo from a worktree of its commit in a virtual
environment of its own:

    git worktree add /tmp/memo-old 862fdc4 && python -m venv --system-site-packages /tmp/venv-old
    /tmp/venv-old/bin/pip install --no-deps -e /tmp/memo-old
    python benchmarks/bench_cpu_llm.py cv --project memo.toml --old-memo /tmp/venv-old/bin/memo

Start it with nothing else running: beside another job these 2 cores run 3-5x slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace


def precision() -> dict:
    import torch

    from memo.models import cpu_has_bf16, use_bf16

    torch.set_num_threads(1)
    a, b = torch.randn(1024, 640), torch.randn(640, 2048)

    def ms(fn, reps: int = 5) -> float:
        for _ in range(2):
            fn()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    a16, b16 = a.bfloat16(), b.bfloat16()

    def autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return a @ b

    fp32, bf16 = ms(lambda: a @ b), ms(lambda: a16 @ b16, reps=2)
    return {
        "cpu_has_bf16": cpu_has_bf16(),
        "auto_picks": "bf16" if use_bf16("auto", "cpu") else "fp32",
        "fp32_ms": round(fp32, 1),
        "bf16_ms": round(bf16, 1),
        "autocast_ms": round(ms(autocast, reps=2), 1),
        "bf16_speedup": round(fp32 / bf16, 3),
    }


def _run_inputs(project_file: str, run: str, compute: bool = True, split: str | None = None):
    """(project, plan, X, y, predictor) for a run's LLM on a split (default: the labelled one). compute:
    the features and rationales the run lacks are made as `memo submit` makes them; else the split's
    features as the store has them (prompts then quote the rationales the log holds)."""
    from pathlib import Path

    from memo.features.load import load_available
    from memo.project import Project
    from memo.submission.plan import make_predictor, resolve_run, run_settings
    from memo.submission.runs import _features, labelled_rows

    project = Project.open(Path(project_file))
    plan = resolve_run(project, run)
    if plan.run.predictor != "llm":
        raise SystemExit(f"run {run} is a {plan.run.predictor} run; give an llm run (--run).")
    split = split or project.dataset.train_split
    if compute:
        X, _ = _features(project, plan, "auto", test=False)
    else:
        X, _ = load_available(run_settings(project, plan), split, list(plan.streams))
    y = None
    if split == project.dataset.train_split:
        X, y = labelled_rows(project, plan, X)
    return project, plan, X, y, make_predictor(project, plan)


def _prompt_lengths(p, X) -> list[int]:
    """LLMFusion's prompt lengths for X without building the model: its tokenizer and marker only."""
    from transformers import AutoTokenizer

    from memo.llm_fusion.modules import soft_marker_id
    from memo.models import resolve_model
    from memo.streams import select

    p.tokenizer_ = AutoTokenizer.from_pretrained(resolve_model(p.backbone_name))
    p.model_ = SimpleNamespace(spec={"marker_id": soft_marker_id(p.tokenizer_)})
    available = [s for s, st in X.streams.items() if st.dim > 0 and st.present.any()]
    p.streams_ = select(p.streams, sorted(available), strict=False)
    return [len(ids) for ids in p._prompts(X)]


def padding(project_file: str, run: str, split: str | None) -> dict:
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from memo.llm_fusion.train import LengthBuckets, padded_share

    _, _, X, _, p = _run_inputs(project_file, run, compute=False, split=split)
    lengths = _prompt_lengths(p, X)
    n, bs = len(lengths), p.batch_size

    def cut(order: list[int], size: int) -> list[list[int]]:
        return [order[i : i + size] for i in range(0, len(order), size)]

    random_batches, grouped, buckets = [], [], []
    sampler = LengthBuckets(lengths, bs, seed=0)
    for epoch in range(3):
        g = torch.Generator().manual_seed(epoch)
        random_batches += cut(torch.randperm(n, generator=g).tolist(), bs)
        grouped += cut(list(LengthGroupedSampler(bs, lengths=lengths, generator=g)), bs)
        sampler.set_epoch(epoch)
        buckets += sampler.batches()
    ebs = p.eval_batch_size
    return {
        "videos": n,
        "prompt_tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
        "train_padded_share": {
            "random (old)": round(padded_share(lengths, random_batches), 4),
            "LengthGroupedSampler": round(padded_share(lengths, grouped), 4),
            "LengthBuckets (new)": round(padded_share(lengths, buckets), 4),
        },
        "predict_padded_share": {
            "split order (old)": round(padded_share(lengths, cut(list(range(n)), ebs)), 4),
            "sorted (new)": round(
                padded_share(lengths, cut(sorted(range(n), key=lengths.__getitem__), ebs)), 4
            ),
        },
    }


def cv(project_file: str, run: str, old_memo: str) -> dict:
    """`memo evaluate --run RUN` (the run's grouped CV, no full fit) with an older memo and with this one,
    one after the other, each in its own copy of the project without the run's cached results."""
    import re
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    src = Path(project_file).resolve().parent
    out = {}
    for way, memo_cmd in (("old", [old_memo]), ("new", [sys.executable, "-m", "memo"])):
        work = Path(tempfile.mkdtemp(prefix=f"bench-cpu-llm-{way}-")) / src.name
        shutil.copytree(src, work, symlinks=True)
        shutil.rmtree(work / ".memo" / "runs" / run, ignore_errors=True)
        t = time.perf_counter()
        res = subprocess.run(
            [*memo_cmd, "evaluate", "--run", run], cwd=work, capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - t
        text = res.stdout + res.stderr
        runtimes = [float(x) for x in re.findall(r"train runtime ([0-9.]+)", text)]
        rows = re.findall(rf"^(?:run {run}\s+)?\s*(\S+)\s+(-?[0-9.]+)\s", res.stdout, re.M)[:2]
        out[way] = {
            "seconds": round(seconds, 1),
            "training_seconds": round(sum(runtimes), 1),
            "fits": len(runtimes),
            f"run {run} expected Spearman": {t: float(v) for t, v in rows},
        }
        print(way, json.dumps(out[way]), flush=True)
        shutil.rmtree(work.parent, ignore_errors=True)
    out["old/new"] = round(out["old"]["seconds"] / out["new"]["seconds"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["precision", "padding", "cv"])
    ap.add_argument("--project", default="memo.toml")
    ap.add_argument("--run", default="2")
    ap.add_argument("--split", default=None, help="padding: the split whose prompts are measured")
    ap.add_argument("--old-memo", default="", help="cv: the `memo` executable of the older version")
    a = ap.parse_args()
    if a.what == "precision":
        res = precision()
    elif a.what == "padding":
        res = padding(a.project, a.run, a.split)
    else:
        if not a.old_memo:
            raise SystemExit("cv needs --old-memo PATH, the memo command of the version to compare with.")
        res = cv(a.project, a.run, a.old_memo)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
