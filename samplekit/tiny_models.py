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
the small built-in corpus (tiny_corpus). The weights are random, so outputs carry no knowledge; only shapes,
dtypes, special tokens and the plumbing are meaningful.

Every builder has the form `tiny_xxx(path, *, seed=0, ..., **overrides) -> Path`, where `overrides`
go into the model config (e.g. `hidden_size=64`). A builder is idempotent: the folder is built in a
temporary sibling folder, a marker file is written last, and the folder is moved into place; a
later call with the same arguments finds the marker and reuses the folder. Heavy libraries are
imported inside the functions so `import memo.samplekit.tiny_models` costs nothing.

This module is the kit's front door (memo.models resolves `tiny:<kind>` here); each architecture lives
in a module of its own: tiny_vision (ViT, timm ViT), tiny_sentence (E5), tiny_gemma (Gemma-3, text and
multimodal), tiny_sound (AST, wav2vec2), built by tiny_build and tokenised with tiny_corpus.
"""

from __future__ import annotations

from pathlib import Path

from memo.samplekit.tiny_build import KIT_VERSION, MARKER, is_built
from memo.samplekit.tiny_corpus import CORPUS
from memo.samplekit.tiny_gemma import GEMMA3_CHAT_TEMPLATE, tiny_gemma3
from memo.samplekit.tiny_sentence import tiny_e5
from memo.samplekit.tiny_sound import tiny_audio, tiny_audio_encoder
from memo.samplekit.tiny_vision import tiny_timm_vit, tiny_vit

__all__ = [
    "CORPUS",
    "GEMMA3_CHAT_TEMPLATE",
    "KIT_VERSION",
    "MARKER",
    "tiny_vit",
    "tiny_timm_vit",
    "tiny_e5",
    "tiny_gemma3",
    "tiny_audio_encoder",
    "tiny_audio",
    "tiny_models",
    "is_built",
]


def tiny_models(root: str | Path) -> dict[str, Path]:
    """Build (or reuse) every tiny model under `root`: {"vit", "e5", "gemma3", "audio"} -> folder."""
    root = Path(root)
    return {
        "vit": tiny_vit(root / "vit"),
        "e5": tiny_e5(root / "e5"),
        "gemma3": tiny_gemma3(root / "gemma3"),
        "audio": tiny_audio_encoder(root / "audio"),
    }
