"""Rationale writer throughput: generated tokens/s, batched against one prompt at a time, same prompts, same
run.

    python benchmarks/bench_rationales.py  # CPU, realistic small Gemma-3 (random weights)
    python benchmarks/bench_rationales.py --model google/gemma-3-1b-it --device cuda --batch 16 32
    python benchmarks/bench_rationales.py --model gemma3-270m --data ../shared/data/videm --prompts 12 \
        --batch 4 12 --threads 1 2 --stop-tokens 96          # the real base 270M on VIDEM ads, CPU

With --data (a VIDEM folder) the prompts are the first --prompts dev ads of the real data (default
template, aspects in turn). --threads takes several counts: each is measured in turn (torch
threads), batch 1 and every --batch. --stop-tokens N adds the natural run a base model gets in
`memo rationale`: up to N new tokens, once with its default stop (a blank line) and once without,
at the largest --batch and the first --threads: texts/s and tokens written, the stop's saving.

The "realistic small model" is a Gemma-3 of the real architecture (GQA, sliding + global layers,
tied embeddings, Gemma's chat template) at a small width, built offline by memo.samplekit.tiny_models with
overrides (default: hidden 640, 6 layers, 4 query heads, 1 KV head, head_dim 160, MLP 2048, and
Gemma-3's real vocabulary of 262144 rows: ~198M parameters, 168M of them the tied embedding and
LM head, as in gemma-3-270m); its weights are random. The tokenizer stays the test kit's small
one, so generated ids past it decode to nothing; token counts are exact either way. Both ways generate exactly
--tokens tokens per prompt
(min_new_tokens = max_new_tokens), so tokens/s compare like for like. The prompts are real
rationale prompts (default template, humor) of the sample dataset's ads. The greedy texts of
both ways are compared too: left padding must not change them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build_prompts(n: int, root: Path, data: str = "") -> list[list[dict]]:
    from memo.config import RationaleConfig
    from memo.layouts import read_dataset
    from memo.rationales.aspects import ASPECTS
    from memo.rationales.jobs import prompt_ad
    from memo.rationales.prompts import load_template
    from memo.samplekit.videm import write_sample_dataset

    ds = (
        read_dataset(Path(data))
        if data
        else read_dataset(write_sample_dataset(root / "videm", seconds=1.0, size=32, fps=4))
    )
    splits = [ds.labelled()] if data else list(ds.splits.values())
    rows = [r for s in splits for _, r in s.table.iterrows()]
    tpl, cfg = load_template("default"), RationaleConfig()
    aspects = ["humor", "emotion", "brand", "narrative"]
    return [
        tpl.messages(ASPECTS.get(aspects[i % len(aspects)]), prompt_ad(rows[i % len(rows)], cfg))
        for i in range(n)
    ]


def widen_vocab(src: Path, out: Path, rows: int) -> Path:
    """The same model with `rows` embedding rows (tied LM head): the real vocabulary's cost, the small
    tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src)
    if rows > model.config.vocab_size:
        model.resize_token_embeddings(rows, mean_resizing=False)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        default="",
        help="model id or folder (default: a realistic small random Gemma-3 built here)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--batch", type=int, nargs="+", default=[16], help="batch sizes to measure against batch 1"
    )
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32, help="generated tokens per prompt (forced)")
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[2], help="torch thread counts, each measured in turn"
    )
    ap.add_argument(
        "--data", default="", help="a VIDEM folder: real ads' prompts (default: the sample dataset)"
    )
    ap.add_argument(
        "--stop-tokens",
        type=int,
        default=0,
        help="also measure the natural run (up to N tokens) with and without the stop",
    )
    ap.add_argument("--hidden", type=int, default=640)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument(
        "--vocab",
        type=int,
        default=262144,
        help="embedding rows (Gemma-3's real 262144; ids past the tiny tokenizer decode to '')",
    )
    args = ap.parse_args()

    import torch

    from memo.rationales.writer import Writer

    torch.set_num_threads(args.threads[0])
    tmp = Path(tempfile.mkdtemp(prefix="bench_rationales_"))
    model = args.model
    if not model:
        from memo.samplekit.tiny_models import tiny_gemma3

        small = tiny_gemma3(
            tmp / "gemma3-small",
            hidden_size=args.hidden,
            intermediate_size=2048,
            num_hidden_layers=args.layers,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=160,
            query_pre_attn_scalar=160,
            sliding_window=512,
        )
        model = str(widen_vocab(small, tmp / "gemma3-small-vocab", args.vocab))
    prompts = build_prompts(args.prompts, tmp, args.data)
    w = Writer(model, device=args.device).load()
    n_params = sum(p.numel() for p in w._model.parameters())
    prompt_tokens = [w.prompt_tokens(p) for p in prompts]
    print(
        f"model {model} ({n_params / 1e6:.1f}M parameters, random weights: {not args.model}, chat "
        f"template: {w.chat}); "
        f"device {args.device}; {len(prompts)} prompts of {min(prompt_tokens)}-{max(prompt_tokens)} tokens "
        f"({'VIDEM dev ads' if args.data else 'sample ads'}), {args.tokens} generated tokens each "
        "(forced, no stop)"
    )

    w.generate(prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up (allocator, kernels)

    def measure(bs: int, tokens: int, forced: bool = True, stop=None):
        t0 = time.perf_counter()
        gens = w.generate(
            prompts,
            max_new_tokens=tokens,
            min_new_tokens=tokens if forced else None,
            batch_size=bs,
            stop=[] if forced else stop,
        )
        dt = time.perf_counter() - t0
        return gens, sum(g.tokens for g in gens), dt

    for threads in args.threads:
        torch.set_num_threads(threads)
        single, tok1, dt1 = measure(1, args.tokens)
        print(
            f"threads {threads} batch  1: {tok1} tokens in {dt1:.2f}s = {tok1 / dt1:.2f} tokens/s, "
            f"{len(prompts) / dt1:.3f} texts/s",
            flush=True,
        )
        for bs in args.batch:
            gens, tok, dt = measure(bs, args.tokens)
            same = sum(a.text == b.text for a, b in zip(gens, single))
            print(
                f"threads {threads} batch {bs:2d}: {tok} tokens in {dt:.2f}s = {tok / dt:.2f} "
                f"tokens/s, {len(prompts) / dt:.3f} texts/s; "
                f"{tok / dt / (tok1 / dt1):.2f}x batch 1; greedy texts identical to batch 1: "
                f"{same}/{len(gens)}",
                flush=True,
            )
    if args.stop_tokens:
        bs = max(args.batch)
        torch.set_num_threads(args.threads[0])
        for label, stop in (("default stop " + repr(w.stops()), None), ("no stop", [])):
            gens, tok, dt = measure(bs, args.stop_tokens, forced=False, stop=stop)
            print(
                f"natural run, batch {bs}, threads {args.threads[0]}, up to {args.stop_tokens} tokens, "
                f"{label}: {tok} tokens "
                f"({tok / len(gens):.1f} per text) in {dt:.2f}s = {len(gens) / dt:.3f} texts/s; first "
                f"text: {gens[0].text[:160]!r}",
                flush=True,
            )


if __name__ == "__main__":
    main()
