"""Tiny, randomly initialised models of the real architectures, built offline, for tests and demos.

Why this exists: memo's stages load their models with the public Hugging Face APIs
(`AutoModel.from_pretrained(path)`, `SentenceTransformer(path)`, `AutoTokenizer.from_pretrained(path)`,
`AutoImageProcessor`, `AutoFeatureExtractor`, chat templates, `generate`). Mocking those calls would
test the mocks. Instead every builder here makes a few-hundred-kilobyte model of the *real*
architecture (ViT, BERT/E5 sentence encoder, Gemma-3 causal LM, AudioSet AST), saves it to a folder
the way a real checkpoint is laid out, and returns the folder. Tests and the `tiny:*` model aliases
(memo.models) then go through exactly the loading and inference code a real checkpoint takes.

Nothing here touches the network: configs are built with `XxxConfig(...)`, weights with the model
constructor under a fixed seed, and tokenizers are trained locally with the `tokenizers` library on
the small built-in corpus below. The weights are random, so outputs carry no knowledge; only shapes,
dtypes, special tokens and the plumbing are meaningful.

Every builder has the form `tiny_xxx(path, *, seed=0, ..., **overrides) -> Path`, where `overrides`
go into the model config (e.g. `hidden_size=64`). A builder is idempotent: the folder is built in a
temporary sibling folder, a marker file is written last, and the folder is moved into place; a
later call with the same arguments finds the marker and reuses the folder. Heavy libraries are
imported inside the functions so `import memo.samplekit.tiny_models` costs nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when a builder changes what it writes: folders with an older marker are rebuilt.
KIT_VERSION = 1
MARKER = ".memo_testkit.json"

__all__ = [
    "CORPUS",
    "GEMMA3_CHAT_TEMPLATE",
    "tiny_vit",
    "tiny_timm_vit",
    "tiny_e5",
    "tiny_gemma3",
    "tiny_audio_encoder",
    "tiny_audio",
    "tiny_models",
    "is_built",
]

# --------------------------------------------------------------------------------------------
# Built-in corpus: the tokenizers are trained on it. It covers the words memo's prompts and
# rationales use (ads, brands, humour, emotion, banks, finance, memorability, ratings, digits), so
# tokenised prompts are realistic sequences of whole-word pieces rather than strings of characters.
# --------------------------------------------------------------------------------------------
CORPUS: tuple[str, ...] = (
    "This video ad shows a young family laughing together in a bright kitchen.",
    "The brand logo appears at the end of the commercial with a short slogan.",
    "A funny advertisement for a bank uses a talking dog to explain savings accounts.",
    "Viewers remembered the humor, the catchy jingle and the colourful characters.",
    "The insurance company tells an emotional story about a father and his daughter.",
    "Memorability is the probability that a viewer recognises the ad again days later.",
    "Short term memorability is measured minutes after watching; long term after one or two days.",
    "Rate how memorable this ad is on a scale from 0 to 10. Rating: 7/10",
    "Rating: 3/10. The ad is generic, slow and forgettable, with no clear brand.",
    "Rating: 9/10. A surprising twist, strong emotion and a famous actor make it stick.",
    "Score: 0.85 out of 1.00; the model predicts a high recognition rate.",
    "The numbers are 0 1 2 3 4 5 6 7 8 9 10 100 2024 and 30 seconds.",
    "Explain why the video is or is not memorable in two or three sentences.",
    "The narrator speaks in a calm, warm voice while soft piano music plays.",
    "Loud electronic music, fast cuts and bright neon colours fill the screen.",
    "A car drives along a coastal road at sunset; the camera follows from above.",
    "The soft drink brand shows friends at the beach sharing cold bottles.",
    "A sports shoe commercial features an athlete running through a rainy city at night.",
    "The phone ad highlights the camera, the battery and the new design.",
    "Fast food restaurant ad: a burger, fries and a milkshake on a red table.",
    "The airline promises cheap flights, friendly staff and comfortable seats.",
    "A cosmetics brand presents a new lipstick with close ups of smiling faces.",
    "The beer commercial is set in a crowded bar during a football match.",
    "Financial services, credit cards, loans, mortgages and investment funds are advertised.",
    "Personal finance, banks, banking fees, interest, stocks, bonds and the economy.",
    "The bank offers low interest rates, online banking and a mobile app.",
    "Money, budget, payment, account, deposit, pension and retirement planning.",
    "The message is trust, security and stability for your savings.",
    "Humor works when the joke is simple, unexpected and linked to the product.",
    "Emotion: joy, sadness, surprise, fear, anger, disgust, nostalgia, pride and love.",
    "Happy people dance in the street; the mood is cheerful and energetic.",
    "A sad scene shows an old man alone at home before his grandson calls.",
    "The story is touching, sincere and a little bit nostalgic.",
    "The ad is boring, confusing and too long; the product is hard to identify.",
    "Celebrities, animals, babies and cartoon characters attract attention.",
    "The visual scene contains a woman, a man, a child, a cat and a blue sky.",
    "Objects in the frame: table, chair, window, laptop, coffee cup, bicycle, tree.",
    "Indoor office, outdoor park, mountain, forest, river, ocean, snow and desert.",
    "The caption describes what happens in each shot of the video clip.",
    "Audio features: speech, music, silence, laughter, applause, singing and noise.",
    "Visual features: colour, brightness, motion, faces, text on screen and objects.",
    "The text encoder turns captions and titles into sentence embeddings.",
    "Predict the memorability score of the video from its frames, audio and text.",
    "Spearman correlation between predicted and ground truth scores is the metric.",
    "The dataset has training, development and test splits with annotations.",
    "Each participant watched a sequence of videos and pressed a key on repeats.",
    "Brand recall, brand recognition, awareness, purchase intention and attitude.",
    "Marketing campaign, target audience, television, online video, social media.",
    "The first seconds matter: an early brand reveal helps people remember.",
    "A strong logo, a clear product shot and a memorable tagline improve recall.",
    "Unique, original, creative and distinctive ads are easier to remember.",
    "Repetition of the brand name and the jingle increases memory.",
    "The question: how memorable is this advertisement? Answer with a number.",
    "The answer is a rating between 1 and 10 followed by a short reason.",
    "User: describe the ad. Model: the ad shows a bank and a smiling couple.",
    "System: you are an expert in advertising and human memory.",
    "Good, bad, great, poor, excellent, average, weak, strong, high, low.",
    "Very, quite, rather, not, never, always, often, sometimes, usually.",
    "It was a cold winter morning and the children played in the snow.",
    "She opened the door, looked outside and smiled at the postman.",
    "They bought a new house near the school and the supermarket.",
    "He works at a large bank in the financial district of London.",
    "Prices rose, the market fell and investors worried about inflation.",
    "The charity ad asks for donations to help families in need.",
    "A gaming console ad shows teenagers cheering in front of a big screen.",
    "The streaming service promotes new movies, series and documentaries.",
    "A supermarket offers fresh fruit, vegetables, bread, cheese and wine.",
    "The travel agency shows hotels, islands, palm trees and swimming pools.",
    "Chocolate, candy, ice cream, cereal, yogurt and orange juice.",
    "Electric cars, batteries, charging stations and clean energy.",
    "Telecom operator, internet speed, contract, price and coverage.",
    "Clothing, fashion, jeans, shirts, dresses, jackets and shoes.",
)


def _corpus_lines(repeat: int = 3) -> list[str]:
    """The corpus with lower-case and single-digit variants, repeated so frequent words merge."""
    lines = list(CORPUS) + [s.lower() for s in CORPUS]
    lines += [f"Rating: {i}/10" for i in range(11)] + [f"Score: 0.{i}{9 - i}" for i in range(10)]
    return lines * repeat


# --------------------------------------------------------------------------------------------
# Build-once machinery: build in a temp sibling, write the marker last, move into place.
# --------------------------------------------------------------------------------------------
def _params_key(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    # json round trip so tuples/lists and numbers compare the same way they are stored.
    return json.loads(
        json.dumps({"kind": kind, "kit_version": KIT_VERSION, "params": params}, sort_keys=True, default=str)
    )


def is_built(path: str | Path, kind: str | None = None) -> bool:
    """True when `path` holds a complete testkit model (optionally of this kind)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("kit_version") == KIT_VERSION and (kind is None or info.get("kind") == kind)


def _build_once(path: str | Path, kind: str, params: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Run `build(tmp_folder)` unless `path` already holds this exact model; return `path`.

    The folder is built next to the target and renamed into place, so a crashed build never
    leaves a half-written folder that looks valid, and two processes building the same folder at
    once (pytest-xdist, two `memo` commands) both end up with a complete one.
    """
    path = Path(path).expanduser().absolute()
    key = _params_key(kind, params)
    if _marker_matches(path, key):
        return path
    if path.exists() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise FileExistsError(
            f"{path} exists and is not a memo.samplekit.tiny_models folder; refusing to overwrite it."
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the final folder should follow the umask
    stale = None
    try:
        with _quiet_transformers():
            build(tmp)
        (tmp / MARKER).write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")  # written last
        if _marker_matches(path, key):
            return path  # another process finished the same build meanwhile: keep theirs
        if path.exists() and any(path.iterdir()):
            # An older or differently configured testkit build: move it aside, then swap in ours.
            stale = Path(tempfile.mkdtemp(prefix=f".{path.name}.stale-", dir=path.parent))
            os.replace(path, stale / "old")
        try:
            os.replace(tmp, path)  # onto a missing or empty folder (pytest's tmp_path): atomic
        except OSError:
            if not _marker_matches(path, key):  # lost a race to an identical build: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    return path


def _marker_matches(path: Path, key: dict[str, Any]) -> bool:
    try:
        return json.loads((path / MARKER).read_text()) == key
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch inside a forked RNG state, so building a model never perturbs the caller's RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' info logs and progress bars while building; restore them after."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------------------------
# 1. ViT image encoder
# --------------------------------------------------------------------------------------------
def tiny_vit(path: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """A `ViTModel` + `ViTImageProcessor` in one folder.

    Defaults: 32x32 images, 8x8 patches -> 16 patches + CLS, so `last_hidden_state` is (B, 17, 32).
    The processor resizes any image to the config's image_size, as the real one does for 224.
    """
    params = dict(seed=seed, **overrides)

    def build(out: Path) -> None:
        from transformers import ViTConfig, ViTImageProcessor, ViTModel

        cfg = dict(
            image_size=32,
            patch_size=8,
            num_channels=3,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
        cfg.update(overrides)
        config = ViTConfig(**cfg)
        with _seeded(seed):
            model = ViTModel(config, add_pooling_layer=True).eval()
        model.save_pretrained(out)
        # Same preprocessing as google/vit-base-patch16-224: resize, rescale 1/255, normalise 0.5/0.5.
        size = config.image_size
        processor = ViTImageProcessor(
            size={"height": size, "width": size},
            do_resize=True,
            do_rescale=True,
            do_normalize=True,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        )
        processor.save_pretrained(out)

    return _build_once(path, "vit", params, build)


def tiny_timm_vit(
    path: str | Path, *, seed: int = 0, architecture: str = "vit_tiny_patch16_224", **model_args: Any
) -> Path:
    """A timm ViT as `timm/<name>` checkpoints are saved (TimmWrapper; needs timm): 32x32, 16x16 patches ->
    (B, 5, 192)."""
    args = dict(img_size=32, depth=2)
    args.update(model_args)

    def build(out: Path) -> None:
        from transformers import TimmWrapperConfig, TimmWrapperModel

        size = args["img_size"]
        config = TimmWrapperConfig(
            architecture=architecture,
            model_args=args,
            pretrained_cfg={
                "input_size": [3, size, size],
                "mean": [0.5] * 3,
                "std": [0.5] * 3,
                "crop_pct": 1.0,
                "interpolation": "bicubic",
            },
        )
        with _seeded(seed):
            TimmWrapperModel(config).eval().save_pretrained(out)

    return _build_once(path, "timm_vit", dict(seed=seed, architecture=architecture, **args), build)


# --------------------------------------------------------------------------------------------
# 2. E5 sentence encoder (BERT + mean pooling + L2 normalise, as intfloat/e5-* checkpoints)
# --------------------------------------------------------------------------------------------
def _train_wordpiece_vocab(vocab_size: int) -> dict[str, int]:
    """A lower-cased BERT WordPiece vocabulary trained on CORPUS; BERT's special tokens first."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(_corpus_lines(), trainer)
    vocab = tok.get_vocab()
    # Re-number by id: the special tokens get ids 0..4 ([PAD]=0, as in BERT), then the learned pieces.
    return {t: i for i, t in enumerate(sorted(vocab, key=vocab.__getitem__))}


def tiny_e5(
    path: str | Path, *, seed: int = 0, vocab_size: int = 1500, max_seq_length: int = 128, **overrides: Any
) -> Path:
    """A sentence-transformers folder: Transformer(BertModel) -> Pooling(mean) -> Normalize.

    `SentenceTransformer(str(path), device="cpu").encode(texts)` gives unit-norm vectors of
    dimension hidden_size (32 by default). As with E5, callers prefix "query: " / "passage: ";
    the saved prompts `query` and `passage` do that for `encode(..., prompt_name=...)`.
    """
    params = dict(seed=seed, vocab_size=vocab_size, max_seq_length=max_seq_length, **overrides)

    def build(out: Path) -> None:
        from sentence_transformers import SentenceTransformer, models
        from transformers import BertConfig, BertModel, BertTokenizerFast

        vocab = _train_wordpiece_vocab(vocab_size)
        # BertTokenizerFast rebuilds BERT's own pipeline (normaliser, pre-tokeniser, [CLS] $A [SEP])
        # around the vocabulary, so it behaves like bert-base-uncased's tokenizer.
        tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)
        cfg = dict(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            type_vocab_size=2,
            pad_token_id=vocab["[PAD]"],
        )
        cfg.update(overrides)
        config = BertConfig(**cfg)
        if config.max_position_embeddings < max_seq_length:
            raise ValueError("max_seq_length exceeds max_position_embeddings")
        with _seeded(seed):
            bert = BertModel(config, add_pooling_layer=False).eval()
        # sentence-transformers loads its Transformer module from a folder, so stage the HF model.
        with tempfile.TemporaryDirectory() as stage:
            bert.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
            word = models.Transformer(stage, max_seq_length=max_seq_length)
            pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
            st = SentenceTransformer(
                modules=[word, pool, models.Normalize()],
                device="cpu",
                prompts={"query": "query: ", "passage": "passage: "},
            )
            st.save(str(out))

    return _build_once(path, "e5", params, build)


# --------------------------------------------------------------------------------------------
# 3. Gemma-3 causal LM
# --------------------------------------------------------------------------------------------
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
    tok.train_from_iterator(_corpus_lines(), trainer)
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
        with _seeded(seed):
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

    return _build_once(path, "gemma3", params, build)


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


# --------------------------------------------------------------------------------------------
# 4. Audio encoder
# --------------------------------------------------------------------------------------------
def tiny_audio_encoder(path: str | Path, *, seed: int = 0, arch: str = "ast", **overrides: Any) -> Path:
    """An audio encoder + its feature extractor, loadable with AutoModel / AutoFeatureExtractor.

    arch="ast" (default): the Audio Spectrogram Transformer, as MIT/ast-finetuned-audioset. The
    feature extractor turns 16 kHz audio into log-mel fbanks (10 ms hop) padded/cut to max_length
    frames; the defaults (32 mel bins, 128 frames = 1.28 s, 16x16 patches, stride 16) give
    `last_hidden_state` (B, 2 + 2*8, 32) = (B, 18, 32): 2 frequency x 8 time patches plus the
    CLS and distillation tokens. T is fixed by max_length, not by the clip length, as in real AST.

    arch="wav2vec2": `Wav2Vec2Model` + `Wav2Vec2FeatureExtractor` on raw 16 kHz samples; T grows
    with the clip (~49 frames per second, 20 ms stride) and the extractor returns an attention mask.
    """
    if arch not in ("ast", "wav2vec2"):
        raise ValueError(f"arch must be 'ast' or 'wav2vec2', not {arch!r}")
    params = dict(seed=seed, arch=arch, **overrides)

    def build(out: Path) -> None:
        if arch == "ast":
            from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

            cfg = dict(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                patch_size=16,
                frequency_stride=16,
                time_stride=16,
                num_mel_bins=32,
                max_length=128,
            )
            cfg.update(overrides)
            config = ASTConfig(**cfg)
            with _seeded(seed):
                model = ASTModel(config)
            # The extractor's mel bins and frame count must match the config's patch grid.
            extractor = ASTFeatureExtractor(
                num_mel_bins=config.num_mel_bins,
                max_length=config.max_length,
                sampling_rate=16000,
                do_normalize=True,
            )
        else:
            from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

            cfg = dict(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                # wav2vec2's 7-layer conv front end (total stride 320 = 20 ms), only 32 channels wide.
                conv_dim=(32,) * 7,
                conv_stride=(5, 2, 2, 2, 2, 2, 2),
                conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=4,
                feat_extract_norm="layer",
                do_stable_layer_norm=True,
                vocab_size=32,
            )
            cfg.update(overrides)
            config = Wav2Vec2Config(**cfg)
            with _seeded(seed):
                model = Wav2Vec2Model(config)
            extractor = Wav2Vec2FeatureExtractor(
                feature_size=1,
                sampling_rate=16000,
                padding_value=0.0,
                do_normalize=True,
                return_attention_mask=True,
            )
        model.eval().save_pretrained(out)
        extractor.save_pretrained(out)

    return _build_once(path, "audio", params, build)


# memo.models resolves the alias `tiny:audio` to `testkit.tiny_audio`.
tiny_audio = tiny_audio_encoder


# --------------------------------------------------------------------------------------------
# 5. All of them
# --------------------------------------------------------------------------------------------
def tiny_models(root: str | Path) -> dict[str, Path]:
    """Build (or reuse) every tiny model under `root`: {"vit", "e5", "gemma3", "audio"} -> folder."""
    root = Path(root)
    return {
        "vit": tiny_vit(root / "vit"),
        "e5": tiny_e5(root / "e5"),
        "gemma3": tiny_gemma3(root / "gemma3"),
        "audio": tiny_audio_encoder(root / "audio"),
    }
