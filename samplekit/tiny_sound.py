"""Tiny audio encoders with their feature extractors: the Audio Spectrogram Transformer (as
MIT/ast-finetuned-audioset) or wav2vec2 on raw samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memo.samplekit.tiny_build import build_once, seeded

__all__ = ["tiny_audio_encoder", "tiny_audio"]


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
            with seeded(seed):
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
            with seeded(seed):
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

    return build_once(path, "audio", params, build)


# memo.models resolves the alias `tiny:audio` to `tiny_audio` (tiny_models re-exports it).
tiny_audio = tiny_audio_encoder
