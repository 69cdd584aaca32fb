"""`vit`: video frames through a vision transformer, one vector per frame: stream `vit` (T, D).

Frames come from the video file (PyAV; n uniformly spaced, or one every k seconds, long videos
capped at max_frames), else from a `frames/<id>/` folder, else, for a video with no media at
all, from the organisers' ViT features when their width matches the model's (the organisers' ViT
is the 768-d ImageNet-21k ViT-B/16 family, our default); the array `from_organiser` records it.

The model is any `AutoModel` vision checkpoint or folder with an image processor (default
google/vit-base-patch16-224-in21k); a CLIP-style checkpoint uses its vision tower; a timm model
(`timm/<name>` hub ids, or a folder saved from one) goes through transformers' TimmWrapper when
timm is installed (`pip install 'memo[timm]'`). Per frame we keep the CLS token or the mean patch
token ([features] vit_pooling); for a timm model "cls" is the model's own pooling (the CLS token
of a ViT, the global average of a CNN). Frames of several videos go
through the model together, while threads decode the next videos.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np

from memo.errors import ConfigError
from memo.features.base import EXTRACTORS, Extractor, Outcome, bar, media_of, prefetch, short
from memo.features.media import Frames, MediaError, read_frame_folder, read_frames

if TYPE_CHECKING:
    import torch

    from memo.data import Dataset, Split
    from memo.store import StoreTable


class FrameEncoder:
    """images (list of (H, W, 3) uint8) -> (N, D) float32, CLS or mean patch token of the last layer."""

    def __init__(self, model: str, device: str = "cpu", pooling: str = "cls", micro_batch: int = 64):
        if pooling not in ("cls", "mean"):
            raise ConfigError(f"[features] vit_pooling = {pooling!r} is not one of cls, mean.")
        import torch
        from transformers import AutoImageProcessor, AutoModel
        from transformers.utils import logging as hf_logging

        from memo.models import load_error, resolve_model

        hf_logging.disable_progress_bar()
        path = resolve_model(model)
        try:
            self.processor = AutoImageProcessor.from_pretrained(path)
            net = AutoModel.from_pretrained(path)
        except Exception as e:  # offline, misspelt, not a vision checkpoint, a timm model without timm
            if "timm" in str(e).lower() and importlib.util.find_spec("timm") is None:
                raise ConfigError(
                    f"The vit model {model!r} is a timm model and timm is not installed; run pip "
                    "install 'memo[timm]'."
                ) from e
            raise load_error(model, e) from e
        net = getattr(net, "vision_model", net)  # CLIP/SigLIP: the vision tower
        self.timm = getattr(net, "timm_model", None)  # transformers' TimmWrapperModel holds the timm module
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.net = net.to(device=device, dtype=self.dtype).eval()
        self.device = device
        self.pooling = pooling
        self.micro_batch = micro_batch
        self.dim = int(getattr(net.config, "hidden_size", 0) or getattr(self.timm, "num_features", 0))

        # The fast path: when the processor just resizes to a fixed size and normalises (ViT,
        # DeiT, BEiT, CLIP-style without crop), frames are scaled to that size by FFmpeg while
        # decoding and normalised here as one tensor. The PIL processor costs more than a
        # small ViT's forward pass on CPU; its bilinear resize is the only difference.
        p = self.processor
        size = getattr(p, "size", None)
        # dict or SizeDict
        get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
        fixed = size is not None and get("height") and get("width")
        self.input_size = (
            (int(get("width")), int(get("height")))
            if fixed and not getattr(p, "do_center_crop", False)
            else None
        )
        self.mean = torch.tensor(getattr(p, "image_mean", None) or [0.0, 0.0, 0.0]).view(1, 3, 1, 1)
        self.std = torch.tensor(getattr(p, "image_std", None) or [1.0, 1.0, 1.0]).view(1, 3, 1, 1)
        self.scale = float(getattr(p, "rescale_factor", 1 / 255)) if getattr(p, "do_rescale", True) else 1.0
        self.normalize = bool(getattr(p, "do_normalize", True))

    def pixels(self, images: list[np.ndarray]):
        """(B, 3, H, W) model input on the model's device and dtype: the fast path for frames already at
        input_size, else the processor.

        The fast path sends the uint8 frames to the device and scales them there: a quarter of the bytes of
        float pixels, and on a GPU no float work on the host (which capped bf16 ViT-B/16 at a sixth of its
        forward speed on an H200, docs/features.md).
        """
        import torch

        if self.input_size is not None and all(im.shape[1::-1] == self.input_size for im in images):
            x = torch.from_numpy(np.stack(images)).to(self.device)  # (B, H, W, 3) uint8
            x = x.permute(0, 3, 1, 2).float() * self.scale  # (B, 3, H, W)
            if self.normalize:
                x = (x - self.mean.to(x.device)) / self.std.to(x.device)
            return x.to(self.dtype)
        return self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device, self.dtype)

    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, D): frames through the model in micro-batches; CLS or mean patch token of the last layer."""
        import torch

        out = []
        with torch.inference_mode():
            for a in range(0, len(images), self.micro_batch):
                px = self.pixels(images[a : a + self.micro_batch])
                out.append(self.pool(self.net(pixel_values=px)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def pool(self, out) -> torch.Tensor:
        """(B, D) from the model's output: CLS or mean patch token (transformers), or a timm model's own
        pooling."""
        h = out.last_hidden_state  # (B, 1 + P, D); a timm CNN gives (B, D, h, w)
        if self.timm is None:
            return h[:, 0] if self.pooling == "cls" else h[:, 1:].mean(dim=1)
        if self.pooling == "cls":
            return out.pooler_output  # timm's forward_head without a classifier: CLS token or global average
        if h.ndim == 4:
            return h.mean(dim=(2, 3))
        return h[:, getattr(self.timm, "num_prefix_tokens", 1) :].mean(dim=1)  # skip CLS and register tokens


@EXTRACTORS.register("vit")
class ViTExtractor(Extractor):
    name = "vit"

    def key(self) -> dict[str, Any]:
        from memo.models import model_revision

        m = self.project.config.models.vit
        c = self.cfg
        return {
            "model": m,
            "revision": model_revision(m),
            "frames": c.frames,
            "frame_every": c.frame_every,
            "max_frames": c.max_frames,
            "pooling": c.vit_pooling,
        }

    def table(self) -> StoreTable:
        return self.store.table("vit", self.key())

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        return {"vit": (self.table(), "frames")}

    def decode(self, split: Split, video_id: str, size: tuple[int, int] | None = None) -> Frames | np.ndarray:
        """Frames of one video (scaled to `size` by FFmpeg when given), or the organisers' ViT rows when it
        has no media."""
        vp, fd = media_of(split, video_id)
        c = self.cfg
        if vp:
            return read_frames(vp, n=c.frames, every=c.frame_every, max_frames=c.max_frames, size=size)
        if fd:
            return read_frame_folder(fd, n=c.frames, max_frames=c.max_frames, size=size)
        org = split.feature_files.get("ViT", {}).get(video_id)
        if org is not None:
            return np.load(org).astype(np.float32).reshape(-1, np.load(org).shape[-1])
        raise MediaError("no video file, frame folder or organiser ViT features")

    def run(self, split: Split, outcome: Outcome, progress: bool = True, workers: int | None = None) -> None:
        table = self.table()
        todo = table.missing(split.ids)
        outcome.cached += len(split.ids) - len(todo)
        # the model is loaded before decoding starts (to learn its input size) unless nothing is to do
        enc = (
            FrameEncoder(self.project.config.models.vit, self.device(), self.cfg.vit_pooling)
            if todo
            else None
        )
        size = enc.input_size if enc is not None else None
        failed: dict[str, str] = {}
        pending: list[tuple[str, Frames]] = []

        def flush() -> None:
            images = [im for _, f in pending for im in f.images]
            vecs = enc.encode(images)  # (sum T_i, D)
            a = 0
            for i, f in pending:
                table.put(i, {"frames": vecs[a : a + len(f.images)]})
                a += len(f.images)
            outcome.computed += len(pending)
            pb.update(len(pending))
            pending.clear()

        with bar(len(todo), f"vit {split.name}", progress) as pb:
            for i, got in prefetch(
                lambda v: self.decode(split, v, size), todo, self.cfg.workers if workers is None else workers
            ):
                if isinstance(got, Exception):
                    failed[i] = short(got) if not isinstance(got, MediaError) else str(got)
                    pb.update(1)
                    continue
                if isinstance(got, np.ndarray):  # organiser ViT rows for a video without media
                    if got.shape[-1] != enc.dim:
                        failed[i] = (
                            f"no media, and the organiser ViT width {got.shape[-1]} differs from the "
                            f"model's {enc.dim}"
                        )
                    else:
                        table.put(i, {"frames": got, "from_organiser": np.ones(1)})
                        outcome.computed += 1
                        outcome.note("videos without media took the organiser ViT features")
                    pb.update(1)
                    continue
                outcome.note(f"long videos capped at {self.cfg.max_frames} frames", int(got.capped))
                outcome.note("corrupt frames skipped", got.bad)
                pending.append((i, got))
                if len(pending) >= self.batch_size:
                    flush()
            if pending:
                flush()
        self.finish_model_table(table, split, outcome, failed, self.project.config.models.vit, "frames", enc)
