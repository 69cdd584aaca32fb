"""The tiny Gemma-3 causal LM: text-only (as google/gemma-3-1b-it) or multimodal with a SigLIP tower (as
google/gemma-3-4b-it), with a Gemma-style BPE tokenizer trained on the built-in corpus and Gemma 3's
chat template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memo.samplekit.tiny_build import build_once, seeded
from memo.samplekit.tiny_corpus import corpus_lines

__all__ = ["GEMMA3_CHAT_TEMPLATE", "tiny_gemma3"]

# Gemma 3's own chat template (from google/gemma-3-*-it), text parts only: a system message is
# not a turn of its own but is prepended to the first user turn; "assistant" is called "model";
# <bos> is part of the template, so `apply_chat_template(tokenize=True)` must not add another.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- else -%}"
    "{{ raise_exception('Invalid content type') }}"
    "{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# Ids 0..3 are Gemma's real ids (<pad>=0, <eos>=1, <bos>=2, <unk>=3); the turn and image markers
# follow (the real ones sit at 105/106 and 255999/256000/262144, which a tiny vocab cannot hold).
_GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
_GEMMA_TURN = ["<start_of_turn>", "<end_of_turn>"]
_GEMMA_IMAGE = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]


def _gemma_tokenizer(vocab_size: int):
    """A `GemmaTokenizer` whose BPE vocab and merges were trained on CORPUS.

    transformers' GemmaTokenizer builds Gemma's own pipeline around the vocab and merges: spaces
    become "▁", no pre-tokenisation, BPE with byte fallback (<0x00>..<0xFF> are in the vocab, so
    any text, accents and emoji included, round-trips with no <unk>), and <bos> is prepended. We
    train with Gemma's conventions so the merges fit that pipeline: "▁" starts a word, each digit
    is its own token (as in Gemma, so "7/10" is "7", "/", "1", "0") and "\n" is a token.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("▁", behavior="merged_with_next"),
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Punctuation(behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    alphabet = [chr(i) for i in range(33, 127)] + ["\n", "▁"]
    n_fixed = len(_GEMMA_SPECIALS) + len(_GEMMA_TURN) + len(_GEMMA_IMAGE) + 256
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size - n_fixed, len(alphabet) + 1),
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer)
    trained = json.loads(tok.to_str())["model"]

    vocab: dict[str, int] = {}
    for piece in _GEMMA_SPECIALS + _GEMMA_TURN + _GEMMA_IMAGE + [f"<0x{i:02X}>" for i in range(256)]:
        vocab[piece] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]

    return GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        additional_special_tokens=_GEMMA_TURN + _GEMMA_IMAGE,
        add_bos_token=True,
        add_eos_token=False,
        # Named image markers, as in every Gemma 3 tokenizer; Gemma3Processor reads them.
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
        image_token="<image_soft_token>",
        # Decoder-only LMs pad on the left for batched generation; 1024 = max_position_embeddings.
        padding_side="left",
        model_max_length=1024,
        chat_template=GEMMA3_CHAT_TEMPLATE,
    )


def tiny_gemma3(
    path: str | Path, *, seed: int = 0, vocab_size: int = 2048, multimodal: bool = False, **overrides: Any
) -> Path:
    """A `Gemma3ForCausalLM` (model_type "gemma3_text", like google/gemma-3-1b-it) + tokenizer.

    Loads with `AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)`;
    the tokenizer carries Gemma 3's chat template; generation_config stops on <eos> or <end_of_turn>
    and pads with <pad>, as the real -it checkpoints do (greedy by default, for reproducible tests).

    Architecture as Gemma 3 (tied input/output embeddings, GQA, a sliding-window layer followed by
    a global layer, local/global RoPE bases, query_pre_attn_scalar = head_dim), only tiny:
    hidden 64, 2 layers, 4 query heads, 1 KV head, head_dim 16, sliding window 32 tokens.

    `multimodal=True` builds `Gemma3ForConditionalGeneration` (tiny SigLIP vision tower, 32x32
    images, 4 image tokens) plus a `Gemma3Processor`, like google/gemma-3-4b-it.
    """
    params = dict(seed=seed, vocab_size=vocab_size, multimodal=multimodal, **overrides)

    def build(out: Path) -> None:
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig

        tokenizer = _gemma_tokenizer(vocab_size)
        ids = tokenizer.convert_tokens_to_ids
        eos_ids = [ids("<eos>"), ids("<end_of_turn>")]
        cfg = dict(
            # Like real Gemma 3 checkpoints (262208 rows for 262145 tokens in the 4B), the embedding
            # has more rows than the tokenizer has tokens: padded to a multiple of 64, so code that
            # assumes logits.shape[-1] == len(tokenizer) fails here as it would on the real model.
            vocab_size=-(-len(tokenizer) // 64) * 64,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            max_position_embeddings=1024,
            sliding_window=32,
            # Gemma 3's RoPE: base 10k on local (sliding) layers, 1M on global layers.
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            },
            tie_word_embeddings=True,
            bos_token_id=ids("<bos>"),
            eos_token_id=eos_ids,
            pad_token_id=ids("<pad>"),
        )
        cfg.update(overrides)
        # Real Gemma 3 has 5 sliding-window layers per global one; tiny models alternate them so
        # both kinds of layer are exercised (transformers' default would make 2 layers both local).
        cfg.setdefault(
            "layer_types",
            [
                "full_attention" if (i + 1) % 2 == 0 else "sliding_attention"
                for i in range(cfg["num_hidden_layers"])
            ],
        )
        text_config = Gemma3TextConfig(**cfg)
        with seeded(seed):
            if multimodal:
                model = _gemma3_multimodal(text_config, tokenizer, out)
            else:
                model = Gemma3ForCausalLM(text_config)
        model.eval()
        model.generation_config = GenerationConfig(
            bos_token_id=ids("<bos>"),
            eos_token_id=eos_ids,
            pad_token_id=ids("<pad>"),
            do_sample=False,
            max_new_tokens=32,
        )
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return build_once(path, "gemma3", params, build)


def _gemma3_multimodal(text_config, tokenizer, out: Path):
    """Gemma3ForConditionalGeneration with a tiny SigLIP tower; saves the processor into `out`."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        SiglipVisionConfig,
    )

    ids = tokenizer.convert_tokens_to_ids
    # 32x32 image, 8x8 patches -> 4x4 patch grid, average-pooled to 2x2 = 4 soft tokens per image.
    vision = SiglipVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        vision_use_head=False,
    )
    config = Gemma3Config(
        text_config=text_config,
        vision_config=vision,
        mm_tokens_per_image=4,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
        tie_word_embeddings=True,
    )
    model = Gemma3ForConditionalGeneration(config)
    image_processor = Gemma3ImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=4,
    )
    processor.save_pretrained(out)
    return model
