"""The synthetic MediaEval VIDEM release, in the organisers' layout, with a known planted memorability signal.

`write_sample_dataset(root)` writes a fake VIDEM release (commercial videos of fictional financial
brands): the two video lists with the organisers' exact columns, transcripts, real MP4 files (H.264
video + AAC audio), organiser-style ViT and R3D feature files, and the test labels the real release
never ships. It is deterministic for a seed, needs no network and takes a few seconds, so tests,
demos and docs can run a whole pipeline. The words come from memo.samplekit.texts, the pictures and
sound from memo.samplekit.media.

How the signal is planted
-------------------------
Every video gets four independent latent components, each N(0, 1):

    t  text     -> the vocabulary of title, description, tags and transcript
    v  visual   -> colour saturation, brightness, a moving object, shot cuts
    a  audio    -> loudness and pitch of a jingle (high) versus quiet noise (low)
    m  mention  -> how often the transcript names the brand (0..3 times)

plus one brand effect per brand (b, shared by all videos of a brand, so brand-grouped CV sees it
as noise). Then

    z      = (0.65 t + 0.55 v + 0.50 a + b) / norm                        ~ N(0, 1)
    z_b    = (0.35 t + 0.30 v + 0.30 a + 0.85 m + b_brand) / norm          ~ N(0, 1)
    p      = sigmoid(1.1 + 1.1 z   + N(0, 0.3))     mean about 0.74, as the real dev set
    p_b    = sigmoid(0.2 + 1.1 z_b + N(0, 0.3))     mean about 0.55
    memorability_score = Binomial(n, p) / n,  brand_memorability = Binomial(n, p_b) / n,
    n = nb_annotations in 14..20 (hit rates, like the organisers' 24-72 h recognition scores).

How each component shows up in the data:

* text: every marker slot (title, 2-4 description sentences, 1-3 transcript sentences, tags) draws
  a "high" phrase ("a funny jingle", "a heartwarming story", ...) with probability
  sigmoid(1.8 t), else a "low" phrase ("the quarterly statement", "the terms that apply", ...). Neutral
  filler never uses a marker word, so counting HIGH_WORDS minus LOW_WORDS recovers t.
* pictures: with s = sigmoid(1.5 v): saturation 0.05 + 0.9 s, brightness (HSV value)
  0.25 + 0.6 s, a contrasting square that moves s * size/10 pixels per frame, and round(4 s^2)
  hard cuts to a new hue. Low v is a dim, flat grey, almost still picture.
* sound (16 kHz mono AAC): with s = sigmoid(1.5 a): a jingle of 2 + round(6 s) pentatonic notes,
  base pitch 220 * 2^(1.5 s) Hz, peak amplitude 0.45 s^1.5, over quiet noise (amplitude 0.01).
* organiser features: ViT rows (3, 768) = brand style + N(0, 1) noise + 0.25 v along a fixed
  random direction; R3D (512,) = relu(0.4 + 0.5 N(0, 1) + 0.1 (v u + a u')): weak on purpose (a ridge
  on 48 dev videos reaches a Spearman of about 0.15 (ViT) and 0.25 (R3D) under brand-grouped CV,
  varying a lot with the seed).
* metadata: viewsCount = exp(7.5 + 0.35 z + brand popularity + N(0, 1.1)): weakly related.

Measured over seeds 0-11 at the default size (48 dev videos): Spearman with memorability_score of
the HIGH_WORDS - LOW_WORDS count 0.47 (0.07-0.65), mean decoded luma 0.31, frame-difference motion 0.38,
audio RMS 0.39; a ridge on those plus log views reaches 0.57 under brand-grouped CV on dev and 0.67
on the test brands. The transcript's brand-mention count vs brand_memorability: about 0.6.

The test split's labels are written to `testset_GT.csv` at the root so a run file can be
scored; the real organisers' release has no such file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.samplekit.media import AUDIO_RATE, draw_frames, draw_sound, has_encoder, write_mp4
from memo.samplekit.synthetic import MARKER, prepare_root, seeded_rng, sigmoid
from memo.samplekit.texts import HIGH_PHRASES, LOW_PHRASES, brand_names, video_text

__all__ = ["DEV_COLUMNS", "TEST_COLUMNS", "write_sample_dataset"]

# The organisers' exact column order (devset_videolist_GT.csv); the test list drops the targets.
DEV_COLUMNS = [
    "id",
    "url",
    "channelName",
    "channelUrl",
    "categoryId",
    "categoryName",
    "title",
    "description",
    "thumbnailUrl",
    "tags",
    "durationString",
    "durationSeconds",
    "viewsCount",
    "likesCount",
    "dislikesCount",
    "favouritesCount",
    "commentsCount",
    "engagementsCount",
    "engagementRate",
    "video_id",
    "nb_annotations",
    "memorability_score",
    "brand_memorability",
]
TEST_COLUMNS = DEV_COLUMNS[: DEV_COLUMNS.index("video_id") + 1]

CATEGORIES = [  # (categoryId, categoryName) as YouTube numbers them; weights roughly as the real dev set
    (25, "News & Politics"),
    (27, "Education"),
    (22, "People & Blogs"),
    (28, "Science & Technology"),
    (24, "Entertainment"),
    (26, "Howto & Style"),
    (29, "Nonprofits & Activism"),
]
CATEGORY_WEIGHTS = [0.45, 0.2, 0.12, 0.08, 0.08, 0.04, 0.03]

ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _youtube_ids(rng, n: int) -> list[str]:
    """n unique 11-char YouTube-like ids; unique even case-insensitively (macOS file systems)."""
    out, seen = [], set()
    while len(out) < n:
        first = ID_CHARS[rng.integers(62)]  # no leading '-' so `ls -- ` is never needed
        s = first + "".join(ID_CHARS[i] for i in rng.integers(64, size=10))
        if s.lower() not in seen:
            seen.add(s.lower())
            out.append(s)
    return out


def write_sample_dataset(
    root: str | Path,
    n_brands_dev: int = 8,
    videos_per_brand: int = 6,
    n_brands_test: int = 3,
    seed: int = 0,
    seconds: float = 2.0,
    size: int = 64,
    fps: int = 8,
) -> Path:
    """Write a synthetic VIDEM release under `root` and return `root` (see the module docstring).

    Dev has `n_brands_dev * videos_per_brand` videos; each test brand has `videos_per_brand - 1`
    (at least 2). Same seed, same CSVs, transcripts, features and decoded pixels.
    """
    if n_brands_dev < 1 or n_brands_test < 0 or videos_per_brand < 1:
        raise MemoError(
            "write_sample_dataset needs n_brands_dev >= 1, n_brands_test >= 0 and videos_per_brand >= 1."
        )
    if seconds <= 0 or size < 16 or size % 2 or fps <= 0:
        raise MemoError(
            "write_sample_dataset needs seconds > 0, fps > 0 and an even size >= 16 (yuv420p, H.264)."
        )
    root = Path(root).expanduser()
    prepare_root(root, ["devset", "testset", "testset_GT.csv", "README.txt"])

    brands, videos = _draw_videos(seed, n_brands_dev, videos_per_brand, n_brands_test)
    texts = _videm_texts(seed, videos)
    n_frames = _write_videm_media(root, seed, brands, videos, texts, seconds, size, fps)
    table = _videolist(videos, texts, seconds)
    dev, test = table[videos["split"] == "dev"], table[videos["split"] == "test"]
    dev.to_csv(root / "devset" / "devset_videolist_GT.csv", index=False)
    test[TEST_COLUMNS].to_csv(root / "testset" / "testset_videolist_.csv", index=False)
    test[["id", "memorability_score", "brand_memorability"]].to_csv(root / "testset_GT.csv", index=False)
    (root / "README.txt").write_text(
        _videm_readme(seed, len(dev), len(test), n_frames, size, fps, seconds), encoding="utf-8"
    )
    return root


def _draw_videos(
    seed: int, n_brands_dev: int, videos_per_brand: int, n_brands_test: int
) -> tuple[list[str], pd.DataFrame]:
    """Every brand (dev brands first) and one row per video, dev and test interleaved: the video-list columns
    drawn from seed stream 0 (ids, channel, category, counts, targets) and the hidden ones the texts and
    media follow: split, the latent components t, v, a, and the number of brand mentions.

    All come from one generator in a fixed order: reordering these lines changes the data set of a seed.
    """
    # ---- who is in which split: brands never cross splits
    rng = seeded_rng(seed, 0)
    brands = [str(b) for b in rng.permutation(brand_names(n_brands_dev + n_brands_test))]
    per_test = max(videos_per_brand - 1, 2)
    rows = [(b, "dev") for b in brands[:n_brands_dev] for _ in range(videos_per_brand)]
    rows += [(b, "test") for b in brands[n_brands_dev:] for _ in range(per_test)]
    rng.shuffle(rows)  # interleave brands, as nothing should rely on row order
    n = len(rows)
    brand = np.array([r[0] for r in rows])
    ids = _youtube_ids(rng, n)
    video_id = rng.permutation(n) + 1  # 1..N, unique across dev + test

    # ---- latent components (see module docstring)
    brand_fx = {b: rng.normal(0, 0.35) for b in brands}  # brand effect on memorability
    brand_rec = {b: rng.normal(0, 0.5) for b in brands}  # brand effect on brand recognition
    brand_pop = {b: rng.normal(0, 0.8) for b in brands}  # brand popularity (views)
    brand_cat = {b: int(rng.choice(len(CATEGORIES), p=CATEGORY_WEIGHTS)) for b in brands}
    channel = {b: "UC" + "".join(ID_CHARS[i] for i in rng.integers(64, size=22)) for b in brands}
    t, v, a, m = rng.standard_normal((4, n))
    b_mem = np.array([brand_fx[x] for x in brand])
    b_rec = np.array([brand_rec[x] for x in brand])
    z = (0.65 * t + 0.55 * v + 0.50 * a + b_mem) / math.sqrt(0.65**2 + 0.55**2 + 0.5**2 + 0.35**2)
    zb = (0.35 * t + 0.30 * v + 0.30 * a + 0.85 * m + b_rec) / math.sqrt(
        0.35**2 + 0.3**2 + 0.3**2 + 0.85**2 + 0.5**2
    )
    nb = rng.integers(14, 21, size=n)
    p_mem = sigmoid(1.1 + 1.1 * z + rng.normal(0, 0.3, n))
    p_brand = sigmoid(0.2 + 1.1 * zb + rng.normal(0, 0.3, n))
    mem = np.round(rng.binomial(nb, p_mem) / nb, 9)
    brand_mem = np.round(rng.binomial(nb, p_brand) / nb, 9)

    # ---- metadata: views weakly follow z; engagement = sum of counts
    views = np.exp(7.5 + 0.35 * z + np.array([brand_pop[x] for x in brand]) + rng.normal(0, 1.1, n))
    views = np.maximum(views, 20).astype(np.int64)
    likes = rng.poisson(views * 0.004 * np.exp(0.3 * z))
    dislikes = rng.poisson(views * 0.0005)
    favourites = np.zeros(n, np.int64)
    comments = rng.poisson(views * 0.0006)
    return brands, pd.DataFrame(
        {
            "id": ids,
            "channelName": brand,
            "channelUrl": [f"https://www.youtube.com/channel/{channel[b]}" for b in brand],
            "categoryId": [CATEGORIES[brand_cat[b]][0] for b in brand],
            "categoryName": [CATEGORIES[brand_cat[b]][1] for b in brand],
            "viewsCount": views,
            "likesCount": likes,
            "dislikesCount": dislikes,
            "favouritesCount": favourites,
            "commentsCount": comments,
            "engagementsCount": likes + dislikes + favourites + comments,
            "video_id": video_id,
            "nb_annotations": nb,
            "memorability_score": mem,
            "brand_memorability": brand_mem,
            "split": [r[1] for r in rows],
            "t": t,
            "v": v,
            "a": a,
            "n_mentions": np.clip(np.round(1 + m), 0, 3).astype(int),
        }
    )


def _videm_texts(seed: int, videos: pd.DataFrame) -> list[dict[str, str]]:
    """Title, description, tags and transcript of every video (seed stream 1)."""
    text_rng = seeded_rng(seed, 1)
    texts = [
        video_text(text_rng, b, t, int(k))
        for b, t, k in zip(videos["channelName"], videos["t"], videos["n_mentions"])
    ]
    # one or two empty transcripts, as in the real data (speech-to-text found no speech)
    for s_name in ("dev", "test"):
        members = np.flatnonzero(videos["split"] == s_name)
        if len(members) > 3:
            texts[int(text_rng.choice(members))]["transcript"] = ""
    return texts


def _videolist(videos: pd.DataFrame, texts: list[dict[str, str]], seconds: float) -> pd.DataFrame:
    """The organisers' video list of dev and test together, in DEV_COLUMNS order; durations match the MP4s."""
    dur = max(int(round(seconds)), 1)
    table = videos.assign(
        url=[f"https://www.youtube.com/watch?v={i}" for i in videos["id"]],
        title=[x["title"] for x in texts],
        description=[x["description"] for x in texts],
        thumbnailUrl=[f"https://i.ytimg.com/vi/{i}/maxresdefault.jpg" for i in videos["id"]],
        tags=[x["tags"] for x in texts],
        durationString=f"{dur // 3600:02d}:{dur % 3600 // 60:02d}:{dur % 60:02d}",
        durationSeconds=dur,
        engagementRate=videos["engagementsCount"] / videos["viewsCount"],
    )
    return table[DEV_COLUMNS]


def _write_videm_media(
    root: Path,
    seed: int,
    brands: list[str],
    videos: pd.DataFrame,
    texts: list[dict[str, str]],
    seconds: float,
    size: int,
    fps: int,
) -> int:
    """Each split's folders: per video a transcript, an MP4 and the organiser features. Returns the frames per
    video."""
    feat_rng = seeded_rng(seed, 2)  # fixed random directions carry the signal into the features
    vit_dir = feat_rng.standard_normal(768)
    r3d_dir_v, r3d_dir_a = feat_rng.standard_normal((2, 512))
    vit_style = {b: feat_rng.normal(0, 0.2, 768) for b in brands}  # brands have a look of their own
    n_frames = max(int(round(seconds * fps)), 1)
    n_samples = max(int(round(seconds * AUDIO_RATE)), 1)
    for s_name, folder in (("dev", "devset"), ("test", "testset")):
        d = root / folder
        for sub in (f"{folder}-stt", "videos", "features/ViT", "features/R3D"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(videos["split"] == s_name):
            vid, v, a = videos.at[i, "id"], videos.at[i, "v"], videos.at[i, "a"]
            (d / f"{folder}-stt" / f"{vid}.txt").write_text(texts[i]["transcript"], encoding="utf-8")
            media_rng = seeded_rng(seed, 3, int(i))
            frames = draw_frames(media_rng, v, n_frames, size)
            audio = draw_sound(media_rng, a, n_samples)
            write_mp4(d / "videos" / f"{vid}.mp4", frames, audio, fps)
            f_rng = seeded_rng(seed, 4, int(i))
            vit = vit_style[videos.at[i, "channelName"]] + f_rng.standard_normal(768) + 0.25 * v * vit_dir
            vit = vit[None, :] + 0.3 * f_rng.standard_normal((3, 768))  # three frames, similar rows
            r3d = np.maximum(
                0.0, 0.4 + 0.5 * f_rng.standard_normal(512) + 0.1 * (v * r3d_dir_v + a * r3d_dir_a)
            )
            np.save(d / "features" / "ViT" / f"{vid}.npy", vit.astype(np.float32))
            np.save(d / "features" / "R3D" / f"{vid}.npy", r3d.astype(np.float32))
    return n_frames


def _videm_readme(seed, n_dev, n_test, n_frames, size, fps, seconds) -> str:
    video_codec = (
        "H.264 (libx264)" if has_encoder("libx264") else "MPEG-4 part 2 (no H.264 encoder in this FFmpeg)"
    )
    return f"""{MARKER} (VIDEM layout): NOT real data.

Written by memo.samplekit.videm.write_sample_dataset(seed={seed}). {n_dev} dev videos,
{n_test} test videos of fictional financial brands; no brand is in both splits. Layout as the
MediaEval VIDEM organisers ship it:

  devset/devset_videolist_GT.csv        metadata + nb_annotations, memorability_score, brand_memorability
  devset/devset-stt/<id>.txt            transcripts (one is empty, as some real ones are)
  devset/videos/<id>.mp4                {video_codec} yuv420p {size}x{size} {fps} fps,
                                        {n_frames} frames ({seconds} s) + AAC mono {AUDIO_RATE} Hz
  devset/features/ViT/<id>.npy          float32 (3, 768), three frames
  devset/features/R3D/<id>.npy          float32 (512,)
  testset/testset_videolist_.csv        same columns without the three label columns
  testset/testset-stt/, videos/, features/   as for devset
  testset_GT.csv                        id,memorability_score,brand_memorability of the test split.
                                        The real organisers' release has no such file.

The planted signal: each video has independent latent components t (text), v (pictures), a (sound) and
m (brand mentions in the transcript), each N(0,1), and each brand an effect b.
  z   = norm(0.65 t + 0.55 v + 0.50 a + b)
  z_b = norm(0.35 t + 0.30 v + 0.30 a + 0.85 m + b')
  memorability_score = Binomial(n, sigmoid(1.1 + 1.1 z + noise)) / n
  brand_memorability = Binomial(n, sigmoid(0.2 + 1.1 z_b + noise)) / n
  n = nb_annotations in 14..20.
  text:     marker phrases in title, description, tags, transcript are "high"
            ({", ".join(HIGH_PHRASES[:4])}, ...) with probability sigmoid(1.8 t),
            else "low" ({", ".join(LOW_PHRASES[:4])}, ...).
  pictures: saturation, brightness, a moving square and the number of hard cuts rise with v
            (low v: dim flat grey still).
  sound:    a pentatonic jingle whose loudness, pitch and number of notes rise with a, over quiet noise.
  brand:    the transcript names the brand round(1 + m) times (0..3).
  features: ViT and R3D carry v (and R3D also a) weakly along fixed random directions, plus brand
            style and noise.
  metadata: viewsCount = exp(7.5 + 0.35 z + brand popularity + noise); likes, comments follow views.
A working pipeline should reach a clearly positive Spearman on held-out brands; label noise (binomial hit
rates with about 17 annotators) caps it well below 1.
"""
