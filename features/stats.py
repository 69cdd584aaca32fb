"""`stats`: cheap, interpretable video statistics: stream `stats` (1, K) with named columns.

MindMem's analysis (and the memorability literature before it) found pacing, colour, brightness,
motion and sound level to matter. Each statistic is computed from small frames decoded at
[features] stats_fps (at most 600 frames: long videos are sampled more sparsely) and from the
mono sound track:

    duration_s         length of the video
    cuts_per_minute    hard cuts: colour-histogram (4x4x4 RGB) change > 0.5 between sampled frames
    brightness         mean luma (Rec. 601) in [0, 1]
    colourfulness      Hasler & Suesstrunk (2003) M, divided by 100
    saturation         mean HSV saturation in [0, 1]
    complexity         mean luma gradient magnitude (edge density; ITU-T P.910 "spatial information")
    luma_entropy       entropy of the 32-bin luma histogram, bits
    motion             mean absolute luma change between sampled frames, cuts excluded
                       (P.910 "temporal information")
    loudness_db        RMS level of the sound track, dBFS (-90 when there is none)
    silence_ratio      share of 50 ms blocks under -40 dBFS (1 when there is no sound track)
    has_audio          1 when the file has a sound track
    words_per_minute   transcript words / duration (0 without a transcript)
    has_transcript     1 when the video has a non-empty transcript
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from memo.features.base import EXTRACTORS, Extractor, Outcome, bar, media_of, prefetch, short, versions
from memo.features.media import MediaError, read_audio, read_frames

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.store import StoreTable

NAMES = [
    "duration_s",
    "cuts_per_minute",
    "brightness",
    "colourfulness",
    "saturation",
    "complexity",
    "luma_entropy",
    "motion",
    "loudness_db",
    "silence_ratio",
    "has_audio",
    "words_per_minute",
    "has_transcript",
]
CUT_THRESHOLD = 0.5
MAX_STATS_FRAMES = 600
SIZE = (64, 36)  # decoded frame size (w, h): enough for global statistics, cheap to convert


def visual_stats(frames: list[np.ndarray]) -> dict[str, float]:
    """Statistics of a list of (H, W, 3) uint8 RGB frames in time order."""
    x = np.stack(frames).astype(np.float32) / 255.0  # (T, H, W, 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b  # (T, H, W)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2) + 0.3 * np.sqrt(
        rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2
    )  # (T,), on a 0..1 scale (Hasler & Suesstrunk's M / 255)
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    gy, gx = np.gradient(luma, axis=(1, 2))
    hist = np.stack([np.histogram(frame, bins=32, range=(0, 1))[0] for frame in luma]).astype(np.float64)
    p = hist / hist.sum(axis=1, keepdims=True)
    entropy = -(p * np.log2(np.where(p > 0, p, 1))).sum(axis=1)
    # cuts: change of the coarse colour histogram between consecutive sampled frames
    q = np.minimum((x * 4).astype(np.int64), 3)
    codes = q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]  # (T, H, W) in 0..63
    ch = np.stack([np.bincount(c.ravel(), minlength=64) for c in codes]).astype(np.float64)
    ch /= ch.sum(axis=1, keepdims=True)
    change = 0.5 * np.abs(np.diff(ch, axis=0)).sum(axis=1) if len(ch) > 1 else np.zeros(0)
    cut = change > CUT_THRESHOLD
    diffs = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2)) if len(luma) > 1 else np.zeros(0)
    return {
        "cuts": float(cut.sum()),
        "brightness": float(luma.mean()),
        "colourfulness": float(colourful.mean() * 255 / 100),
        "saturation": float(sat.mean()),
        "complexity": float(np.sqrt(gx**2 + gy**2).mean()),
        "luma_entropy": float(entropy.mean()),
        "motion": float(diffs[~cut].mean()) if (~cut).any() else 0.0,
    }


def audio_stats(audio: np.ndarray | None, rate: int) -> dict[str, float]:
    if audio is None or len(audio) == 0:
        return {"loudness_db": -90.0, "silence_ratio": 1.0, "has_audio": 0.0}
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    block = max(1, rate // 20)  # 50 ms
    n = len(audio) // block
    if n:
        b = np.sqrt(np.mean(audio[: n * block].reshape(n, block).astype(np.float64) ** 2, axis=1))
        silence = float((20 * np.log10(np.maximum(b, 1e-9)) < -40).mean())
    else:
        silence = 1.0
    return {
        "loudness_db": float(max(-90.0, 20 * np.log10(max(rms, 1e-9)))),
        "silence_ratio": silence,
        "has_audio": 1.0,
    }


@EXTRACTORS.register("stats")
class StatsExtractor(Extractor):
    name = "stats"

    def key(self) -> dict[str, Any]:
        return {
            "names": NAMES,
            "fps": self.cfg.stats_fps,
            "size": list(SIZE),
            "cut_threshold": CUT_THRESHOLD,
            "rate": self.cfg.audio_sample_rate,
            "version": 1,
        }

    def table(self) -> StoreTable:
        return self.store.table("stats", self.key())

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        return {"stats": (self.table(), "values")}

    def compute(self, split: Split, video_id: str) -> np.ndarray:
        """(K,) statistics of one video, in the order of NAMES."""
        vp, _ = media_of(split, video_id)
        if not vp:
            raise MediaError("no video file")
        import av

        with av.open(vp) as box:
            if not box.streams.video:
                raise MediaError("no video stream")
            vs = box.streams.video[0]
            duration = float(vs.duration * vs.time_base) if vs.duration else (box.duration or 0) / 1e6
        if duration <= 0:
            raise MediaError("zero-length video")
        step = max(1.0 / self.cfg.stats_fps, duration / MAX_STATS_FRAMES)
        times = list(np.arange(step / 2, duration, step))
        frames = read_frames(vp, times=times, size=SIZE)
        v = visual_stats(frames.images)
        rate = self.cfg.audio_sample_rate
        try:
            audio = read_audio(vp, rate)
        except MediaError:
            audio = None  # no sound track is a statistic (has_audio = 0), not a failure
        a = audio_stats(audio, rate)
        text = split.table.loc[video_id].get("transcript") if "transcript" in split.table else None
        text = text if isinstance(text, str) else ""
        words = len(text.split())
        row = {
            "duration_s": duration,
            "cuts_per_minute": v.pop("cuts") * 60.0 / duration,
            **v,
            **a,
            "words_per_minute": words * 60.0 / duration,
            "has_transcript": float(bool(text.strip())),
        }
        return np.array([row[n] for n in NAMES], np.float32)

    def run(self, split: Split, outcome: Outcome, progress: bool = True) -> None:
        table = self.table()
        todo = table.missing(split.ids)
        outcome.cached += len(split.ids) - len(todo)
        failed: dict[str, str] = {}
        with bar(len(todo), f"stats {split.name}", progress) as pb:
            for i, got in prefetch(lambda v: self.compute(split, v), todo, self.cfg.workers):
                if isinstance(got, Exception):
                    failed[i] = str(got) if isinstance(got, MediaError) else short(got)
                else:
                    table.put(i, {"values": got})
                    outcome.computed += 1
                pb.update(1)
        table.record_failures(failed)
        outcome.failed.update({f"{split.name}/{i}": r for i, r in failed.items()})
        if todo or not table.read_manifest():
            table.write_manifest(
                model="memo video statistics",
                revision="1",
                parameters=table.config,
                names=NAMES,
                dims={"values": len(NAMES)},
                versions=versions("av"),
            )
