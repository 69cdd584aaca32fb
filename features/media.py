"""Decoding with PyAV: frames at chosen times, the sound track as mono float samples.

Every function raises MediaError with a one-line reason for media it cannot use (unreadable
file, no video or audio stream, zero length, nothing decodable); extractors record that reason
per video and go on. A corrupt frame in the middle is skipped, not fatal: the caller gets the
frames that did decode and a count of the ones that did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class MediaError(Exception):
    """A video's media cannot be used; the message is the reason recorded for it."""


@dataclass
class Frames:
    images: list[np.ndarray]  # each (H, W, 3) uint8 RGB
    times: list[float]  # seconds
    duration: float  # seconds (0 when unknown, e.g. a frame folder)
    capped: bool = False  # the video was long: fewer frames than asked for its length
    bad: int = 0  # frames that would not decode


def frame_times(
    duration: float, n: int = 8, every: float = 0.0, max_frames: int = 32
) -> tuple[list[float], bool]:
    """Times (s) to sample: n uniformly spaced (centres of n equal parts) or one every `every` s, capped."""
    if every > 0:
        k = max(1, int(duration // every))
        times = [(j + 0.5) * every for j in range(k)]
    else:
        k = max(1, n)
        times = [(j + 0.5) * duration / k for j in range(k)]
    if len(times) > max_frames:  # a long video: spread max_frames over its whole length instead
        return [(j + 0.5) * duration / max_frames for j in range(max_frames)], True
    return times, False


def _open(path: str | Path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open {Path(path).name}: {e}") from e


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def read_frames(
    path: str | Path,
    times: list[float] | None = None,
    n: int = 8,
    every: float = 0.0,
    max_frames: int = 32,
    size: tuple[int, int] | None = None,
    fmt: str = "rgb24",
) -> Frames:
    """Frames of a video file at `times` (or sampled with n/every/max_frames) as (H, W, C) uint8.

    Decodes forward and keeps, for each time, the first frame at or after it; it seeks when the
    next time is more than 4 s ahead, so a long video does not cost a full decode.
    `size=(w, h)` lets FFmpeg downscale while converting (cheap; used by the statistics).
    """
    import av

    with _open(path) as box:
        if not box.streams.video:
            raise MediaError("no video stream")
        vs = box.streams.video[0]
        vs.thread_type = "AUTO"
        duration = _duration(box, vs)
        capped = False
        if times is None:
            if duration <= 0:
                raise MediaError("zero-length video")
            times, capped = frame_times(duration, n, every, max_frames)
        images, got, bad = [], [], 0
        k = 0
        tb = float(vs.time_base)
        try:
            frames = box.decode(vs)
            while k < len(times):
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.error.FFmpegError:  # a corrupt packet: skip it, keep going
                    bad += 1
                    if bad > 50:
                        break
                    continue
                t = float(frame.pts * tb) if frame.pts is not None else (got[-1] if got else 0.0)
                if t + 1e-6 < times[k] and times[k] - t > 4.0:
                    box.seek(int(times[k] / tb), stream=vs, backward=True)
                    frames = box.decode(vs)
                    continue
                while k < len(times) and t + 1e-6 >= times[k] - 0.5 / max(float(vs.average_rate or 25), 1):
                    kw = {"format": fmt}
                    if size:
                        kw.update(width=size[0], height=size[1])
                    images.append(frame.to_ndarray(**kw))
                    got.append(t)
                    k += 1
        except av.error.FFmpegError as e:
            if not images:
                raise MediaError(f"cannot decode video: {e}") from e
            bad += 1
    if not images:
        raise MediaError("no decodable frames" + (f" ({bad} corrupt)" if bad else ""))
    return Frames(images, got, duration, capped, bad)


def read_frame_folder(
    folder: str | Path, n: int = 8, max_frames: int = 32, size: tuple[int, int] | None = None
) -> Frames:
    """Frames from an extracted-frames folder (<split>/frames/<id>/*.jpg), n spread uniformly over the sorted
    files.

    `size=(w, h)` scales each image (bilinear), like FFmpeg does for video files.
    """
    from PIL import Image

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"frame folder {Path(folder).name} holds no images")
    k = min(max(1, n), max_frames, len(files))
    pick = [files[int((j + 0.5) * len(files) / k)] for j in range(k)]
    images, bad = [], 0
    for p in pick:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                images.append(np.asarray(im.resize(size, Image.BILINEAR) if size else im))
        except OSError:
            bad += 1
    if not images:
        raise MediaError(f"no readable image in frame folder {Path(folder).name}")
    return Frames(images, [float(j) for j in range(len(images))], 0.0, False, bad)


def read_audio(path: str | Path, rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """The first audio stream, mixed to mono and resampled to `rate`: (S,) float32 in [-1, 1]."""
    import av

    with _open(path) as box:
        if not box.streams.audio:
            raise MediaError("no audio track")
        st = box.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, n = [], 0
        limit = int(max_seconds * rate) if max_seconds else None
        try:
            for frame in box.decode(st):
                for out in resampler.resample(frame):
                    a = out.to_ndarray().reshape(-1)
                    chunks.append(a)
                    n += a.shape[0]
                if limit and n >= limit:
                    break
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not chunks:
                raise MediaError(f"cannot decode audio: {e}") from e
    if not chunks:
        raise MediaError("empty audio track")
    audio = np.concatenate(chunks).astype(np.float32)
    return audio[:limit] if limit else audio
