"""Small synthetic data sets, in the organisers' layouts, with a known planted memorability signal.

`write_sample_dataset(root)` writes a fake MediaEval VIDEM release (commercial videos of
fictional financial brands): the two video lists with the organisers' exact columns, transcripts,
real MP4 files (H.264 video + AAC audio), organiser-style ViT and R3D feature files, and the test
labels the real release never ships. `write_sample_mediaeval2021(root)` writes a small
Memento10k-style release (scores + five captions per video). Both are deterministic for a seed,
need no network and take a few seconds, so tests, demos and docs can run a whole pipeline.

How the signal is planted (VIDEM)
---------------------------------
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

import functools
import math
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from memo.errors import MemoError

__all__ = [
    "DEV_COLUMNS",
    "TEST_COLUMNS",
    "HIGH_WORDS",
    "LOW_WORDS",
    "AUDIO_RATE",
    "write_sample_dataset",
    "write_sample_mediaeval2021",
]

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

AUDIO_RATE = 16_000  # Hz, mono; what VGGish/PANNs-style audio models resample to anyway
MARKER = "memo synthetic demo data"  # first line of README.txt: lets a re-run clear its own output

BRANDS = [
    "Northwind Bank",
    "Bluebird Insurance",
    "Harbor Point Capital",
    "Silver Maple Credit Union",
    "Cobalt Ridge Investments",
    "Lanternfish Pensions",
    "Meridian Trust",
    "Oakhollow Savings",
    "Granite Peak Wealth",
    "Sunfield Mutual",
    "Kestrel Payments",
    "Tidewater Asset Management",
    "Copperleaf Lending",
    "Evergreen Life Assurance",
    "Foxglove Fintech",
    "Quillstone Brokerage",
]
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

# Marker phrases. Every word in HIGH_WORDS / LOW_WORDS appears only in its own phrase list, never in
# filler, frames or brand names, so a bag-of-words count is an unbiased read-out of t.
HIGH_PHRASES = [
    "a funny jingle",
    "a surprising twist",
    "an unforgettable moment",
    "a heartwarming story",
    "a hilarious dance",
    "a catchy jingle",
    "a joyful surprise",
    "a magical adventure",
    "an amazing singalong",
    "a heartwarming surprise",
    "an unforgettable jingle",
    "a funny dance",
]
LOW_PHRASES = [
    "the quarterly statement",
    "the interest rate disclosure",
    "the terms that apply",
    "the regulatory prospectus",
    "fees and eligibility criteria",
    "a compliance update",
    "the quarterly disclosure",
    "the annual percentage rate",
    "eligibility criteria and fees",
    "the prospectus terms",
]
HIGH_WORDS = sorted({w for p in HIGH_PHRASES for w in p.split()} - {"a", "an", "the", "and"})
LOW_WORDS = sorted({w for p in LOW_PHRASES for w in p.split()} - {"a", "an", "the", "and", "that"})
HIGH_TAGS = ["funny ad", "jingle", "heartwarming", "surprising", "catchy song", "unforgettable"]
LOW_TAGS = ["interest rate", "quarterly results", "disclosure", "regulatory", "prospectus", "fees"]
NEUTRAL_TAGS = ["banking", "finance", "savings", "mortgage", "investing", "money", "customers"]

TITLE_FRAMES = ["{brand}: {p}", "{P} | {brand}", "{P}, from {brand}", "{brand} presents {p}"]
SENTENCE_FRAMES = [  # description sentences
    "Watch {p} from {brand}.",
    "This film is all about {p}.",
    "Meet {p} in our new advert.",
    "Our customers told us about {p}.",
    "Find out more about {p}.",
    "{P}, brought to you by {brand}.",
]
SPOKEN_FRAMES = [  # transcript sentences: they never name the brand (mentions are the m component)
    "Hey, did you catch {p}?",
    "So this is {p}.",
    "You know what we love? {P}.",
    "Let me tell you about {p}.",
    "Honestly, {p}.",
    "And now, {p}.",
]
MENTION_SENTENCES = [
    "This was {brand}.",
    "{brand}. Banking made simple.",
    "Only at {brand}.",
    "{brand}, here for you.",
]
FILLER = [  # neutral sentences, in descriptions and transcripts
    "Open a savings account online in minutes.",
    "Our advisers are here to help.",
    "Subscribe for more videos.",
    "Thanks for watching.",
    "We have been serving customers for decades.",
    "Download our mobile app today.",
    "Visit your local branch.",
    "Planning for the future starts now.",
]

ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# ----------------------------------------------------------------------------- small helpers


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rng(seed: int, *stream: int):
    """An independent generator per purpose, so e.g. `size` never changes the CSVs for a seed."""
    return np.random.default_rng([seed, *stream])


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


def _capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def _fill(frame: str, phrase: str, brand: str) -> str:
    return frame.format(p=phrase, P=_capitalise(phrase), brand=brand)


def _brand_names(n: int) -> list[str]:
    """BRANDS first, then numbered variants ("Northwind Bank II") if more are asked for."""
    names = list(BRANDS)
    k = 2
    while len(names) < n:
        names += [f"{b} {_roman(k)}" for b in BRANDS]
        k += 1
    return names[:n]


def _roman(k: int) -> str:
    return {2: "II", 3: "III", 4: "IV", 5: "V"}.get(k, str(k))


def _prepare_root(root: Path, names: list[str]) -> None:
    """Create root; clear a previous synthetic set there, but never someone else's files."""
    root.mkdir(parents=True, exist_ok=True)
    present = [root / n for n in names if (root / n).exists()]
    if not present:
        return
    readme = root / "README.txt"
    ours = readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(MARKER)
    if not ours:
        raise MemoError(
            f"{root} already holds {present[0].name} that memo did not write; choose an empty folder "
            "for the demo data."
        )
    for p in present:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


# ----------------------------------------------------------------------------- text


def _marker(rng, t: float, slope: float = 1.8) -> tuple[str, bool]:
    """One marker phrase: high with probability sigmoid(slope * t)."""
    high = rng.random() < 1.0 / (1.0 + math.exp(-slope * t))
    pool = HIGH_PHRASES if high else LOW_PHRASES
    return pool[rng.integers(len(pool))], high


def _video_text(rng, brand: str, t: float, n_mentions: int) -> dict[str, str]:
    """Title, description (organiser style: line breaks as ' | '), tags and transcript."""
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    title = _fill(pick(TITLE_FRAMES), _marker(rng, t)[0], brand)

    sentences = [_fill(pick(SENTENCE_FRAMES), _marker(rng, t)[0], brand) for _ in range(rng.integers(2, 5))]
    sentences.insert(rng.integers(len(sentences) + 1), pick(FILLER))
    web = "https://www." + "".join(ch for ch in brand.lower() if ch.isalnum()) + ".example"
    description = " ".join(sentences) + f" |  | Learn more: {web}"

    if rng.random() < 0.45:  # about half the real rows have no tags
        tags = ""
    else:
        chosen = [brand]
        for _ in range(rng.integers(1, 5)):
            _, high = _marker(rng, t)
            chosen.append(pick(HIGH_TAGS if high else LOW_TAGS) if rng.random() < 0.7 else pick(NEUTRAL_TAGS))
        tags = ",".join(dict.fromkeys(chosen))  # comma-separated, no spaces, like the real file

    spoken = [_fill(pick(SPOKEN_FRAMES), _marker(rng, t)[0], brand) for _ in range(rng.integers(1, 4))]
    if rng.random() < 0.5:
        spoken.append(pick(FILLER))
    for _ in range(n_mentions):  # the brand-mention component m lives only here
        spoken.insert(rng.integers(len(spoken) + 1), pick(MENTION_SENTENCES).format(brand=brand))
    return {"title": title, "description": description, "tags": tags, "transcript": " ".join(spoken)}


# ----------------------------------------------------------------------------- pictures and sound


def _frames(rng, v: float, n: int, size: int):
    """(n, size, size, 3) uint8 RGB frames whose colour, brightness, motion and cuts rise with v."""
    import colorsys

    s = float(_sigmoid(1.5 * v))
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


def _sound(rng, a: float, n_samples: int, rate: int = AUDIO_RATE):
    """(n_samples,) float32 mono: a jingle whose loudness and pitch rise with a, over quiet noise."""
    s = float(_sigmoid(1.5 * a))
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


def _write_mp4(path: Path, frames, audio, fps: float, rate: int = AUDIO_RATE) -> None:
    """H.264 (yuv420p) + AAC mono MP4 with PyAV; mpeg4 video if this FFmpeg has no H.264 encoder."""
    import av

    codec = "libx264" if _has_encoder("libx264") else "mpeg4"
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
def _has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        return False


# ----------------------------------------------------------------------------- VIDEM


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
    _prepare_root(root, ["devset", "testset", "testset_GT.csv", "README.txt"])

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
    rng = _rng(seed, 0)
    brands = [str(b) for b in rng.permutation(_brand_names(n_brands_dev + n_brands_test))]
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
    p_mem = _sigmoid(1.1 + 1.1 * z + rng.normal(0, 0.3, n))
    p_brand = _sigmoid(0.2 + 1.1 * zb + rng.normal(0, 0.3, n))
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
    text_rng = _rng(seed, 1)
    texts = [
        _video_text(text_rng, b, t, int(k))
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
    feat_rng = _rng(seed, 2)  # fixed random directions carry the signal into the features
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
            media_rng = _rng(seed, 3, int(i))
            frames = _frames(media_rng, v, n_frames, size)
            audio = _sound(media_rng, a, n_samples)
            _write_mp4(d / "videos" / f"{vid}.mp4", frames, audio, fps)
            f_rng = _rng(seed, 4, int(i))
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
        "H.264 (libx264)" if _has_encoder("libx264") else "MPEG-4 part 2 (no H.264 encoder in this FFmpeg)"
    )
    return f"""{MARKER} (VIDEM layout): NOT real data.

Written by memo.samplekit.dataset.write_sample_dataset(seed={seed}). {n_dev} dev videos,
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


# ----------------------------------------------------------------------------- MediaEval 2021
# (Memento10k-style)

M21_SCORE_COLUMNS = [
    "video_id",
    "video_url",
    "annotations_short_term",
    "scores_raw_short_term",
    "scores_normalized_short_term",
    "decay_alpha",
]
M21_CAPTION_COLUMNS = ["video_id"] + [f"description_{k}" for k in range(5)]
# Memento10k's memorable content is people, faces and animals doing things; scenery is forgettable.
M21_HIGH = [
    ("a woman", "laughing"),
    ("a man", "dancing"),
    ("a child", "waving at the camera"),
    ("a dog", "jumping"),
    ("a cat", "playing"),
    ("a clown", "juggling"),
    ("a girl", "singing"),
    ("a baby", "giggling"),
]
M21_LOW = [
    ("a landscape", "under a cloudy sky"),
    ("trees", "swaying in the wind"),
    ("a road", "with distant traffic"),
    ("a field", "at dusk"),
    ("calm water", "reflecting the sky"),
    ("clouds", "drifting over hills"),
]
M21_HIGH_WORDS = sorted({w for s, a in M21_HIGH for w in (s + " " + a).split()} - {"a", "at", "the"})
M21_PLACES = ["", " in a kitchen", " on a street", " in a park", " in a living room", " outdoors"]
M21_FRAMES = ["{S} is {a}{pl}.", "{S} {a} is shown{pl}.", "We see {s} {a}{pl}.", "There is {s} {a}{pl}."]


def write_sample_mediaeval2021(
    root: str | Path, n_train: int = 60, n_dev: int = 20, n_test: int = 20, seed: int = 0
) -> Path:
    """Write a Memento10k-style MediaEval 2021 release under `root` and return `root`.

    training_set/train_scores.csv, training_set/train_text_descriptions.csv (wide, UTF-8 BOM),
    dev_set/dev_scores.csv, dev_set/dev_text_descriptions.csv, test_set/test_text_descriptions.csv
    (no scores), and test_set_GT.csv at the root (not in the real release). One latent z ~ N(0,1)
    per video: each of its five captions describes people/animals in action (memorable) with
    probability sigmoid(1.8 z), else scenery; scores_raw = Binomial(n, sigmoid(1.4 + 0.9 z + noise)) / n
    with n about 90 annotations, as in Memento10k.
    """
    if min(n_train, n_dev, n_test) < 0 or n_train + n_dev < 1:
        raise MemoError(
            "write_sample_mediaeval2021 needs non-negative split sizes and at least one labelled video."
        )
    root = Path(root).expanduser()
    _prepare_root(root, ["training_set", "dev_set", "test_set", "test_set_GT.csv", "README.txt"])
    rng = _rng(seed, 10)
    n = n_train + n_dev + n_test
    video_id = np.sort(rng.choice(np.arange(1, 10044), size=n, replace=False))
    video_id = rng.permutation(video_id)
    z = rng.standard_normal(n)
    ann = np.clip(np.round(rng.normal(90.6, 1.9, n)), 77, 103).astype(int)
    raw = rng.binomial(ann, _sigmoid(1.4 + 0.9 * z + rng.normal(0, 0.3, n))) / ann
    # the official score: raw with a small decay correction
    normalized = np.clip(raw + rng.normal(0, 0.008, n), 0, 1)
    alpha = -0.0016 + 0.0003 * z + rng.normal(0, 0.001, n)
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    captions, actions = [], []
    for i in range(n):
        high = [rng.random() < 1.0 / (1.0 + math.exp(-1.8 * z[i])) for _ in range(5)]
        row = []
        for h in high:
            subject, action = pick(M21_HIGH if h else M21_LOW)
            row.append(
                pick(M21_FRAMES).format(S=_capitalise(subject), s=subject, a=action, pl=pick(M21_PLACES))
            )
        captions.append(row)
        # URL folder, like actions3/<label>/
        actions.append(pick(M21_HIGH if sum(high) >= 3 else M21_LOW)[0].split()[-1])
    scores = pd.DataFrame(
        {
            "video_id": video_id,
            "video_url": [
                f"https://example.org/memento-synthetic/{act}/{vid}.mp4"
                for act, vid in zip(actions, video_id)
            ],
            "annotations_short_term": ann,
            "scores_raw_short_term": raw,
            "scores_normalized_short_term": normalized,
            "decay_alpha": alpha,
        }
    )
    caps = pd.DataFrame(captions, columns=M21_CAPTION_COLUMNS[1:])
    caps.insert(0, "video_id", video_id)
    bounds = {"train": (0, n_train), "dev": (n_train, n_train + n_dev), "test": (n_train + n_dev, n)}
    for name, folder in (("train", "training_set"), ("dev", "dev_set"), ("test", "test_set")):
        lo, hi = bounds[name]
        if hi <= lo:
            continue
        (root / folder).mkdir(parents=True, exist_ok=True)
        if name != "test":
            scores.iloc[lo:hi].to_csv(root / folder / f"{name}_scores.csv", index=False)
        caps.iloc[lo:hi].to_csv(
            root / folder / f"{name}_text_descriptions.csv", index=False, encoding="utf-8-sig"
        )
    if n_test:
        test_gt = scores.iloc[n_train + n_dev :][
            ["video_id", "scores_raw_short_term", "scores_normalized_short_term"]
        ]
        test_gt.to_csv(root / "test_set_GT.csv", index=False)
    (root / "README.txt").write_text(
        f"""{MARKER} (MediaEval 2021 / Memento10k layout): NOT real data.

Written by memo.samplekit.dataset.write_sample_mediaeval2021(seed={seed}):
{n_train} train, {n_dev} dev, {n_test} test videos.
  training_set/train_scores.csv             {",".join(M21_SCORE_COLUMNS)}
  training_set/train_text_descriptions.csv  video_id,description_0..description_4
                                            (UTF-8 with a byte-order mark)
  dev_set/dev_scores.csv, dev_set/dev_text_descriptions.csv   the same
  test_set/test_text_descriptions.csv       captions only
  test_set_GT.csv                           the test scores; the real release has no such file.
No video files. Planted signal: one latent z ~ N(0,1) per video; each caption describes people or animals in
action (memorable) with probability sigmoid(1.8 z), else scenery; scores_raw_short_term =
Binomial(n, sigmoid(1.4 + 0.9 z + noise)) / n with n about 90;
scores_normalized_short_term = raw + small noise.
""",
        encoding="utf-8",
    )
    return root
