"""Throughput of `memo features` (vit, e5) against the naive way, in the same run, on the same inputs.

    python benchmarks/bench_features.py                  # 8 videos, 40 texts, memory at 8 and 24 videos
    python benchmarks/bench_features.py --videos 24 --texts 240   # more inputs, on a quiet machine

Models: memo.samplekit.tiny_models's tiny architectures scaled to realistic sizes, random weights (speed does
not depend on the weights): a ViT at 224x224 with 16x16 patches and ViT-Small width (384, 6
heads, 6 of its 12 layers), and an E5-small-sized BERT sentence encoder (384 wide, 6 layers,
512 tokens). Inputs: the synthetic VIDEM sample dataset written at 320x320, 10 fps, 4 s per video;
texts are the real VIDEM dev titles, descriptions and tags when ../shared/data/videm exists
(else the sample dataset's texts).

naive vit: per video decode 8 full-size frames, then each frame alone through the image
           processor and the model (batch 1), decode and encode in turn.
memo vit:  ViTExtractor.run: frames scaled by FFmpeg while decoding, decoding in 2 threads
           ahead of the model, frames of 16 videos per forward pass, writes to the store.
naive e5:  each text alone through SentenceTransformer.encode (prefix added, batch 1).
memo e5:   TextEncoder.encode over all texts (length-sorted batches of 32, windows for long texts).

Peak memory: the memo vit run is repeated in fresh processes on N and 3N videos; flat means
the peak resident set does not grow with N (decoding is bounded by the prefetch depth).
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

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videm"
VIT = dict(
    image_size=224,
    patch_size=16,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=6,
    intermediate_size=1536,
)
E5 = dict(
    hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536, max_seq_length=512
)


def build(root: Path, n_videos: int):
    """Sample dataset with ~n_videos dev videos, the scaled models, and a project using them."""
    from memo.project import Project, init_project, to_toml
    from memo.samplekit.tiny_models import tiny_e5, tiny_vit
    from memo.samplekit.videm import write_sample_dataset

    models = root.parent / "models"
    vit = tiny_vit(models / "vit-s16-224", **VIT)
    e5 = tiny_e5(models / "e5-small-size", **E5)
    data = write_sample_dataset(
        root / "data",
        n_brands_dev=max(1, n_videos // 4),
        videos_per_brand=4,
        n_brands_test=1,
        seed=0,
        seconds=4.0,
        size=320,
        fps=10,
    )
    init_project(root, data, offline=True, force=True)
    p = Project.open(root / "memo.toml")
    p.config.models.vit, p.config.models.e5, p.config.models.device = str(vit), str(e5), "cpu"
    (root / "memo.toml").write_text(to_toml(p.config.to_dict()))
    return Project.open(root / "memo.toml")


def bench_vit(project) -> dict:
    import torch

    from memo.features.base import Outcome
    from memo.features.media import read_frames
    from memo.features.vit import FrameEncoder, ViTExtractor

    split = project.dataset.splits["dev"]
    ids = split.ids
    c = project.config.features
    enc = FrameEncoder(project.config.models.vit, "cpu")
    # naive: decode one video, then each frame alone through processor and model
    t0 = time.perf_counter()
    naive = {}
    with torch.inference_mode():
        for i in ids:
            frames = read_frames(split.table.loc[i, "video_path"], n=c.frames, max_frames=c.max_frames).images
            rows = []
            for f in frames:
                px = enc.processor(images=[f], return_tensors="pt")["pixel_values"]
                rows.append(enc.net(pixel_values=px).last_hidden_state[:, 0].numpy())
            naive[i] = np.concatenate(rows)
    t_naive = time.perf_counter() - t0
    # memo: the extractor into its store (fresh)
    ext = ViTExtractor(project, device="cpu", batch_size=16)
    t0 = time.perf_counter()
    ext.run(split, Outcome("vit"), progress=False)
    t_memo = time.perf_counter() - t0
    table = ext.table()
    cos = []
    for i in ids:
        a, b = naive[i], table.get(i)["frames"]
        cos.append(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
    n_frames = sum(len(v) for v in naive.values())
    return {
        "videos": len(ids),
        "frames": n_frames,
        "naive_s": t_naive,
        "memo_s": t_memo,
        "naive_frames_per_s": n_frames / t_naive,
        "memo_frames_per_s": n_frames / t_memo,
        "speedup": t_naive / t_memo,
        "min_cosine_naive_vs_memo": float(min(cos)),
    }


def texts_for(project, n: int) -> list[str]:
    import pandas as pd

    if (SHARED / "devset" / "devset_videolist_GT.csv").is_file():
        df = pd.read_csv(SHARED / "devset" / "devset_videolist_GT.csv")
        pool = [str(t) for c in ("title", "description", "tags") for t in df[c].dropna() if str(t).strip()]
        source = "real VIDEM dev titles, descriptions, tags"
    else:
        t = project.dataset.splits["dev"].table
        pool = [
            str(x)
            for c in ("title", "description", "tags", "transcript")
            if c in t
            for x in t[c]
            if str(x).strip()
        ]
        source = "sample dataset texts"
    rng = np.random.default_rng(0)
    return [pool[k] for k in rng.choice(len(pool), size=min(n, len(pool)), replace=False)], source


def bench_e5(project, n: int) -> dict:
    import torch

    from memo.features.text import TextEncoder

    texts, source = texts_for(project, n)
    enc = TextEncoder(project.config.models.e5, device="cpu", batch_size=32).load()
    prompt = enc._prompt()
    enc.encode(texts[:2])  # warm-up, both paths share it
    t0 = time.perf_counter()
    with torch.inference_mode():
        naive = np.concatenate(
            [
                enc._st.encode(
                    [t], prompt=prompt, batch_size=1, normalize_embeddings=True, show_progress_bar=False
                )
                for t in texts
            ]
        )
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = enc.encode(texts)
    t_memo = time.perf_counter() - t0
    tok = enc._st.tokenizer
    lengths = [len(tok(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts]
    short = [k for k, L in enumerate(lengths) if L < 500]  # same input to the model: compare those
    cos = (naive[short] * fast[short]).sum(1)
    return {
        "texts": len(texts),
        "source": source,
        "median_tokens": float(np.median(lengths)),
        "max_tokens": int(max(lengths)),
        "windowed_texts": int(sum(1 for w in enc.last_windows if w > 1)),
        "naive_s": t_naive,
        "memo_s": t_memo,
        "naive_texts_per_s": len(texts) / t_naive,
        "memo_texts_per_s": len(texts) / t_memo,
        "speedup": t_naive / t_memo,
        "min_cosine_naive_vs_memo_unwindowed": float(cos.min()),
    }


def peak_memory(root: Path, n_videos: int) -> tuple[float, float, int]:
    """Peak RSS (MiB) of a fresh process that runs the memo vit extractor on n_videos videos.

    The dataset is written here first, so the child's peak is the extractor's alone.
    """
    build(root, n_videos)
    code = (
        "import json, resource, pathlib\n"
        "from memo.project import Project\nfrom memo.features.base import Outcome\nfrom "
        "memo.features.vit import ViTExtractor\n"
        "p = Project.open(pathlib.Path({root!r}) / 'memo.toml'); split = p.dataset.splits['dev']\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "ViTExtractor(p, device='cpu', batch_size=16).run(split, Outcome('vit'), progress=False)\n"
        "print(json.dumps([before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "len(split.ids)]))\n"
    ).replace("{root!r}", repr(str(root)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--no-memory", action="store_true", help="skip the two-size peak memory runs")
    ap.add_argument("--memory-only", action="store_true", help="only the two-size peak memory runs")
    args = ap.parse_args()
    import torch

    print(
        f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, load average "
        f"{os.getloadavg()[0]:.1f} (shared machine)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if not args.memory_only:
            project = build(Path(tmp) / "run", args.videos)
            vit = bench_vit(project)
            print("vit", json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in vit.items()}))
            e5 = bench_e5(project, args.texts)
            print("e5 ", json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in e5.items()}))
        if not args.no_memory:
            for n in (args.videos, 3 * args.videos):
                before, peak, got = peak_memory(Path(tmp) / f"mem{n}", n)
                print(
                    f"memory vit on {got} videos: peak RSS {peak:.0f} MiB (at the start of the "
                    f"process: {before:.0f} MiB)"
                )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
