"""Rationale writer throughput: generated tokens/s, batched against one prompt at a time, same prompts, same run.

    python benchmarks/bench_rationales.py                       # CPU, realistic small Gemma-3 (random weights)
    python benchmarks/bench_rationales.py --model google/gemma-3-1b-it --device cuda --batch 16 32

The "realistic small model" is a Gemma-3 of the real architecture (GQA, sliding + global layers,
tied embeddings, Gemma's chat template) at a small width, built offline by memo.samplekit.tiny_models with
overrides (default: hidden 640, 6 layers, 4 query heads, 1 KV head, head_dim 160, MLP 2048, and
Gemma-3's real vocabulary of 262144 rows: ~198M parameters, 168M of them the tied embedding and
LM head, as in gemma-3-270m); its weights are random. The tokenizer stays the test kit's small
one, so generated ids past it decode to nothing; token counts are exact either way. Both ways generate exactly --tokens tokens per prompt
(min_new_tokens = max_new_tokens), so tokens/s compare like for like. The prompts are real
rationale prompts (default template, humor) of the sample dataset's ads. The greedy texts of
both ways are compared too: left padding must not change them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build_prompts(n: int, root: Path) -> list[list[dict]]:
    from memo.data import read_dataset
    from memo.samplekit.dataset import write_sample_dataset
    from memo.rationales.aspects import ASPECTS
    from memo.config import RationaleConfig
    from memo.rationales.generate import prompt_ad
    from memo.rationales.prompts import load_template

    ds = read_dataset(write_sample_dataset(root / "videm", seconds=1.0, size=32, fps=4))
    rows = [r for s in ds.splits.values() for _, r in s.table.iterrows()]
    tpl, cfg = load_template("default"), RationaleConfig()
    aspects = ["humor", "emotion", "brand", "narrative"]
    return [tpl.messages(ASPECTS.get(aspects[i % len(aspects)]), prompt_ad(rows[i % len(rows)], cfg)) for i in range(n)]


def widen_vocab(src: Path, out: Path, rows: int) -> Path:
    """The same model with `rows` embedding rows (tied LM head): the real vocabulary's cost, the small tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src)
    if rows > model.config.vocab_size:
        model.resize_token_embeddings(rows, mean_resizing=False)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model id or folder (default: a realistic small random Gemma-3 built here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[16], help="batch sizes to measure against batch 1")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32, help="generated tokens per prompt (forced)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=640)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=262144, help="embedding rows (Gemma-3's real 262144; ids past the tiny tokenizer decode to '')")
    args = ap.parse_args()

    import torch

    from memo.rationales.writer import Writer

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_rationales_"))
    model = args.model
    if not model:
        from memo.samplekit.tiny_models import tiny_gemma3

        small = tiny_gemma3(tmp / "gemma3-small", hidden_size=args.hidden, intermediate_size=2048, num_hidden_layers=args.layers,
                            num_attention_heads=4, num_key_value_heads=1, head_dim=160, query_pre_attn_scalar=160, sliding_window=512)
        model = str(widen_vocab(small, tmp / "gemma3-small-vocab", args.vocab))
    prompts = build_prompts(args.prompts, tmp)
    w = Writer(model, device=args.device).load()
    n_params = sum(p.numel() for p in w._model.parameters())
    prompt_tokens = [len(w.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]) for p in prompts]
    print(f"model {model} ({n_params / 1e6:.1f}M parameters, random weights: {not args.model}); device {args.device}, "
          f"torch threads {args.threads}; {len(prompts)} prompts of {min(prompt_tokens)}-{max(prompt_tokens)} tokens, "
          f"{args.tokens} generated tokens each")

    w.generate(prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up (allocator, kernels)

    def measure(bs: int):
        t0 = time.perf_counter()
        gens = w.generate(prompts, max_new_tokens=args.tokens, min_new_tokens=args.tokens, batch_size=bs)
        dt = time.perf_counter() - t0
        return gens, sum(g.tokens for g in gens), dt

    single, tok1, dt1 = measure(1)
    print(f"batch  1: {tok1} tokens in {dt1:.2f}s = {tok1 / dt1:.1f} tokens/s")
    for bs in args.batch:
        gens, tok, dt = measure(bs)
        same = sum(a.text == b.text for a, b in zip(gens, single))
        print(f"batch {bs:2d}: {tok} tokens in {dt:.2f}s = {tok / dt:.1f} tokens/s; {tok / dt / (tok1 / dt1):.2f}x batch 1; "
              f"greedy texts identical to batch 1: {same}/{len(gens)}")


if __name__ == "__main__":
    main()
