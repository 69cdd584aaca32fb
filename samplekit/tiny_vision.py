"""Tiny image encoders: a transformers ViT with its image processor, and a timm ViT saved as TimmWrapper
(as `timm/<name>` checkpoints are)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memo.samplekit.tiny_build import build_once, seeded

__all__ = ["tiny_vit", "tiny_timm_vit"]


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
        with seeded(seed):
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

    return build_once(path, "vit", params, build)


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
        with seeded(seed):
            TimmWrapperModel(config).eval().save_pretrained(out)

    return build_once(path, "timm_vit", dict(seed=seed, architecture=architecture, **args), build)
