"""`audio`: the sound track through an audio transformer, one vector per window: stream `audio` (T, D).

The track is decoded with PyAV, mixed to mono and resampled ([features] audio_sample_rate), cut
into windows of audio_window seconds (at most max_audio_windows; a longer track is capped and the
run says so; a last piece shorter than 1 s is dropped unless it is all there is), and each window
is encoded by `AutoModel` with its `AutoFeatureExtractor`: an AudioSet AST (default
MIT/ast-finetuned-audioset-10-10-0.4593), a wav2vec2/HuBERT, or a Whisper encoder. A window's
vector is the model's pooler output when it has one (AST: mean of the CLS and distillation
tokens), else the mean of the last hidden states. Windows of equal length are batched across
videos, so padding never leaks into a mean. A video with no sound track is a recorded failure
(its mask is False), not a stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from memo.features.base import EXTRACTORS, Extractor, Outcome, bar, media_of, prefetch, short
from memo.features.media import MediaError, read_audio

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.store import StoreTable


class AudioEncoder:
    """windows (list of (S,) float32 at `rate`) -> (N, D)."""

    def __init__(self, model: str, device: str = "cpu", rate: int = 16000):
        import torch
        from transformers import AutoFeatureExtractor, AutoModel
        from transformers.utils import logging as hf_logging

        from memo.models import load_error, resolve_model

        hf_logging.disable_progress_bar()
        path = resolve_model(model)
        try:
            self.fe = AutoFeatureExtractor.from_pretrained(path)
            net = AutoModel.from_pretrained(path)
        except Exception as e:
            raise load_error(model, e) from e
        if getattr(net.config, "is_encoder_decoder", False) and hasattr(net, "get_encoder"):
            net = net.get_encoder()  # Whisper: the encoder only
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.net = net.to(device=device, dtype=self.dtype).eval()
        self.device = device
        self.rate = rate
        self.dim = int(net.config.hidden_size if hasattr(net.config, "hidden_size") else net.config.d_model)
        self.fe_rate = int(getattr(self.fe, "sampling_rate", rate))

    def encode(self, windows: list[np.ndarray]) -> np.ndarray:
        """All windows must have the same length (the caller groups them)."""
        import torch

        if self.fe_rate != self.rate:
            from memo.errors import ConfigError

            raise ConfigError(
                f"[features] audio_sample_rate = {self.rate} but the audio model expects "
                f"{self.fe_rate} Hz; set it to {self.fe_rate}."
            )
        inputs = self.fe(windows, sampling_rate=self.rate, return_tensors="pt")
        inputs = {
            k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
            if k in ("input_values", "input_features", "attention_mask")
        }
        if "attention_mask" in inputs and "input_features" in inputs:
            inputs.pop("attention_mask")  # Whisper's encoder takes none
        with torch.inference_mode():
            out = self.net(**inputs)
        pooled = getattr(out, "pooler_output", None)
        v = pooled if pooled is not None else out.last_hidden_state.mean(dim=1)  # (B, D)
        return v.float().cpu().numpy()


def cut_windows(
    audio: np.ndarray, rate: int, seconds: float, max_windows: int
) -> tuple[list[np.ndarray], bool]:
    """Consecutive windows of `seconds`; a short tail (< 1 s) is dropped unless it is the only window."""
    w = max(1, int(seconds * rate))
    pieces = [audio[a : a + w] for a in range(0, len(audio), w)]
    if len(pieces) > 1 and len(pieces[-1]) < rate:
        pieces = pieces[:-1]
    return pieces[:max_windows], len(pieces) > max_windows


@EXTRACTORS.register("audio")
class AudioExtractor(Extractor):
    name = "audio"

    def key(self) -> dict[str, Any]:
        from memo.models import model_revision

        m = self.project.config.models.audio
        c = self.cfg
        return {
            "model": m,
            "revision": model_revision(m),
            "rate": c.audio_sample_rate,
            "window": c.audio_window,
            "max_windows": c.max_audio_windows,
            "pooling": "pooler or mean",
        }

    def table(self) -> StoreTable:
        return self.store.table("audio", self.key())

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        return {"audio": (self.table(), "windows")}

    def decode(self, split: Split, video_id: str) -> tuple[list[np.ndarray], bool]:
        vp, _ = media_of(split, video_id)
        if not vp:
            raise MediaError("no video file")
        c = self.cfg
        audio = read_audio(vp, c.audio_sample_rate, max_seconds=c.audio_window * (c.max_audio_windows + 1))
        if len(audio) == 0:
            raise MediaError("empty audio track")
        return cut_windows(audio, c.audio_sample_rate, c.audio_window, c.max_audio_windows)

    def run(self, split: Split, outcome: Outcome, progress: bool = True) -> None:
        table = self.table()
        todo = table.missing(split.ids)
        outcome.cached += len(split.ids) - len(todo)
        enc: AudioEncoder | None = None
        failed: dict[str, str] = {}
        pending: list[tuple[str, list[np.ndarray]]] = []

        def flush() -> None:
            # group windows by length so a batch is never padded; then scatter back per video
            flat = [(k, j, w) for k, (_, ws) in enumerate(pending) for j, w in enumerate(ws)]
            vecs: dict[tuple[int, int], np.ndarray] = {}
            by_len: dict[int, list] = {}
            for k, j, w in flat:
                by_len.setdefault(len(w), []).append((k, j, w))
            for group in by_len.values():
                for a in range(0, len(group), 32):
                    part = group[a : a + 32]
                    for (k, j, _), v in zip(part, enc.encode([w for _, _, w in part])):
                        vecs[(k, j)] = v
            for k, (i, ws) in enumerate(pending):
                table.put(i, {"windows": np.stack([vecs[(k, j)] for j in range(len(ws))])})
            outcome.computed += len(pending)
            pb.update(len(pending))
            pending.clear()

        with bar(len(todo), f"audio {split.name}", progress) as pb:
            for i, got in prefetch(lambda v: self.decode(split, v), todo, self.cfg.workers):
                if isinstance(got, Exception):
                    failed[i] = str(got) if isinstance(got, MediaError) else short(got)
                    pb.update(1)
                    continue
                windows, capped = got
                outcome.note(f"long sound tracks capped at {self.cfg.max_audio_windows} windows", int(capped))
                if enc is None:
                    enc = AudioEncoder(
                        self.project.config.models.audio, self.device(), self.cfg.audio_sample_rate
                    )
                pending.append((i, windows))
                if len(pending) >= self.batch_size:
                    flush()
            if pending:
                flush()
        self.finish_model_table(
            table, split, outcome, failed, self.project.config.models.audio, "windows", enc
        )
