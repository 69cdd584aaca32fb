"""The synthetic videos' media: frames whose colour, brightness, motion and cuts follow the visual component,
a jingle whose loudness and pitch follow the audio component, and the MP4 writer (PyAV, H.264 + AAC).

numpy only at import; PyAV is imported when a file is written.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from memo.samplekit.synthetic import sigmoid

__all__ = ["AUDIO_RATE", "draw_frames", "draw_sound", "has_encoder", "write_mp4"]

AUDIO_RATE = 16_000  # Hz, mono; what VGGish/PANNs-style audio models resample to anyway


def draw_frames(rng, v: float, n: int, size: int):
    """(n, size, size, 3) uint8 RGB frames whose colour, brightness, motion and cuts rise with v."""
    import colorsys

    s = float(sigmoid(1.5 * v))
    sat, val = 0.05 + 0.9 * s, 0.25 + 0.6 * s
    n_cuts = min(int(round(4 * s * s)), max(n - 1, 0))
    cuts = np.sort(rng.choice(np.arange(1, n), size=n_cuts, replace=False)) if n_cuts else np.array([], int)
    shot_of_frame = np.searchsorted(cuts, np.arange(n), side="right")  # (n,) shot index per frame

    hue = rng.random()
    yy, xx = np.mgrid[0:size, 0:size]
    shade = (0.85 + 0.3 * yy / max(size - 1, 1))[..., None]  # vertical gradient: some structure
    box = max(size // 4, 2)
    speed = s * size / 10.0  # pixels per frame
    out = np.empty((n, size, size, 3), np.uint8)
    for shot in range(n_cuts + 1):
        if shot:
            hue = (hue + 0.2 + 0.4 * rng.random()) % 1.0  # a cut jumps to a clearly different hue
        bg = np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255
        fg = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, sat, min(1.0, val + 0.3 * s))) * 255
        pos = rng.random(2) * (size - box)
        angle = rng.random() * 2 * math.pi
        vel = speed * np.array([math.cos(angle), math.sin(angle)])
        for k, i in enumerate(np.flatnonzero(shot_of_frame == shot)):
            img = bg[None, None, :] * shade
            # bounce the square inside the frame
            p = pos + vel * k
            span = size - box
            p = np.abs((p + span) % (2 * span) - span) if span > 0 else np.zeros(2)
            y0, x0 = int(p[0]), int(p[1])
            mix = s  # the square's contrast fades out with v: low v is a flat still picture
            img[y0 : y0 + box, x0 : x0 + box] = (1 - mix) * img[y0 : y0 + box, x0 : x0 + box] + mix * fg
            img = img + rng.normal(0.0, 3.0, img.shape)  # sensor-like noise so frames are not flat
            out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def draw_sound(rng, a: float, n_samples: int, rate: int = AUDIO_RATE):
    """(n_samples,) float32 mono: a jingle whose loudness and pitch rise with a, over quiet noise."""
    s = float(sigmoid(1.5 * a))
    n_notes = 2 + int(round(6 * s))
    base = 220.0 * 2 ** (1.5 * s)
    amp = 0.45 * s**1.5
    scale = np.array([0, 2, 4, 7, 9, 12])  # major pentatonic: jingle-like, never dissonant
    note_len = max(n_samples // n_notes, 1)
    note_idx = np.minimum(np.arange(n_samples) // note_len, n_notes - 1)
    freqs = base * 2 ** (scale[rng.integers(len(scale), size=n_notes)] / 12)
    phase = 2 * np.pi * np.cumsum(freqs[note_idx]) / rate  # continuous phase across notes
    within = (np.arange(n_samples) % note_len) / note_len
    envelope = np.minimum(within / 0.05, 1.0) * np.exp(-3.0 * within)  # quick attack, decay
    x = amp * envelope * (np.sin(phase) + 0.3 * np.sin(2 * phase)) / 1.3
    x = x + 0.01 * rng.standard_normal(n_samples)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def write_mp4(path: Path, frames, audio, fps: float, rate: int = AUDIO_RATE) -> None:
    """H.264 (yuv420p) + AAC mono MP4 with PyAV; mpeg4 video if this FFmpeg has no H.264 encoder."""
    import av

    codec = "libx264" if has_encoder("libx264") else "mpeg4"
    with av.open(str(path), "w") as box:
        vs = box.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.codec_context.thread_count = 1  # one thread: identical bytes on every machine
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "20"}
        aus = box.add_stream("aac", rate=rate, layout="mono")
        for img in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in vs.encode():
            box.mux(packet)
        step = 1024  # AAC frame size
        for start in range(0, len(audio), step):
            frame = av.AudioFrame.from_ndarray(
                audio[None, start : start + step], format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            for packet in aus.encode(frame):
                box.mux(packet)
        for packet in aus.encode():
            box.mux(packet)


@functools.cache
def has_encoder(name: str) -> bool:
    """Whether PyAV's FFmpeg can encode with `name` (e.g. "libx264"); asked once per process."""
    import av

    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        return False
