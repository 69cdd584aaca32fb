"""The synthetic data sets: the organisers' layout, real decodable media, a recoverable signal,
determinism."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

av = pytest.importorskip("av")
from scipy.stats import spearmanr  # noqa: E402

from memo.errors import MemoError  # noqa: E402
from memo.samplekit.mediaeval2021 import write_sample_mediaeval2021  # noqa: E402
from memo.samplekit.texts import HIGH_WORDS, LOW_WORDS  # noqa: E402
from memo.samplekit.videm import write_sample_dataset  # noqa: E402

# Hard-coded from the organisers' devset_videolist_GT.csv, on purpose (never read ../shared here).
REAL_DEV_COLUMNS = (
    "id,url,channelName,channelUrl,categoryId,categoryName,title,description,thumbnailUrl,tags,"
    "durationString,durationSeconds,viewsCount,likesCount,dislikesCount,favouritesCount,commentsCount,"
    "engagementsCount,"
    "engagementRate,video_id,nb_annotations,memorability_score,brand_memorability"
).split(",")
REAL_TEST_COLUMNS = REAL_DEV_COLUMNS[:-3]
FPS, SECONDS, SIZE = 8, 2.0, 64


@pytest.fixture(scope="module")
def videm(tmp_path_factory) -> Path:
    return write_sample_dataset(tmp_path_factory.mktemp("videm"), seed=0)


@pytest.fixture(scope="module")
def tables(videm):
    dev = pd.read_csv(videm / "devset" / "devset_videolist_GT.csv", dtype={"id": str})
    test = pd.read_csv(videm / "testset" / "testset_videolist_.csv", dtype={"id": str})
    return dev, test


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames as (n, h, w) luma, mono audio samples, audio sample rate)."""
    with av.open(str(path)) as box:
        frames = np.stack([f.to_ndarray(format="gray") for f in box.decode(video=0)])
    with av.open(str(path)) as box:
        rate = box.streams.audio[0].rate
        audio = np.concatenate([f.to_ndarray().ravel() for f in box.decode(audio=0)])
    return frames, audio, rate


@pytest.fixture(scope="module")
def media(videm, tables):
    """Decoded media of every video, keyed by id."""
    dev, test = tables
    out = {}
    for folder, df in (("devset", dev), ("testset", test)):
        for vid in df["id"]:
            out[vid] = _decode(videm / folder / "videos" / f"{vid}.mp4")
    return out


def test_tables_have_the_organisers_columns(videm, tables):
    dev, test = tables
    assert list(dev.columns) == REAL_DEV_COLUMNS
    assert list(test.columns) == REAL_TEST_COLUMNS
    assert len(dev) == 8 * 6 and len(test) == 3 * 5
    gt = pd.read_csv(videm / "testset_GT.csv", dtype={"id": str})
    assert list(gt.columns) == ["id", "memorability_score", "brand_memorability"]
    assert sorted(gt["id"]) == sorted(test["id"])
    assert (videm / "README.txt").read_text().lower().count("synthetic") >= 1


def test_ids_brands_and_metadata(tables):
    dev, test = tables
    ids = pd.concat([dev["id"], test["id"]])
    assert ids.is_unique and ids.str.lower().is_unique
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", i) for i in ids)
    vids = pd.concat([dev["video_id"], test["video_id"]])
    assert vids.is_unique and set(vids) == set(range(1, len(vids) + 1))
    assert not set(dev["channelName"]) & set(test["channelName"])
    assert dev["channelName"].nunique() == 8 and test["channelName"].nunique() == 3
    for df in (dev, test):
        assert (df["url"] == "https://www.youtube.com/watch?v=" + df["id"]).all()
        assert (df["durationString"] == "00:00:02").all() and (df["durationSeconds"] == 2).all()
        counts = df[["likesCount", "dislikesCount", "favouritesCount", "commentsCount"]].sum(axis=1)
        assert (df["engagementsCount"] == counts).all()
        assert np.allclose(df["engagementRate"], df["engagementsCount"] / df["viewsCount"])
        assert (df["viewsCount"] > 0).all()
    # tags: comma-separated in one field, some rows empty, as in the real file
    assert dev["tags"].isna().any() and dev["tags"].dropna().str.contains(",").any()


def test_scores_are_hit_rates(tables):
    dev, _ = tables
    assert dev["nb_annotations"].between(14, 20).all()
    for col in ("memorability_score", "brand_memorability"):
        assert dev[col].between(0, 1).all()
        hits = dev[col] * dev["nb_annotations"]
        assert np.allclose(hits, hits.round(), atol=1e-6)
    assert 0.55 < dev["memorability_score"].mean() < 0.9
    assert dev["memorability_score"].mean() > dev["brand_memorability"].mean()


def test_transcripts_and_features(videm, tables):
    dev, test = tables
    empty = 0
    for folder, df in (("devset", dev), ("testset", test)):
        for vid in df["id"]:
            text = (videm / folder / f"{folder}-stt" / f"{vid}.txt").read_text(encoding="utf-8")
            empty += text == ""
            vit = np.load(videm / folder / "features" / "ViT" / f"{vid}.npy")
            r3d = np.load(videm / folder / "features" / "R3D" / f"{vid}.npy")
            assert vit.shape == (3, 768) and vit.dtype == np.float32 and np.isfinite(vit).all()
            assert r3d.shape == (512,) and r3d.dtype == np.float32 and (r3d >= 0).all()
    assert 1 <= empty <= 2


def test_every_mp4_decodes_with_video_and_audio(videm, tables, media):
    dev, test = tables
    for folder, df in (("devset", dev), ("testset", test)):
        for vid in df["id"]:
            path = videm / folder / "videos" / f"{vid}.mp4"
            with av.open(str(path)) as box:
                vs = box.streams.video[0]
                assert vs.codec_context.name in ("h264", "mpeg4")
                assert (vs.codec_context.width, vs.codec_context.height) == (SIZE, SIZE)
                assert len(box.streams.audio) == 1 and box.streams.audio[0].codec_context.name == "aac"
            frames, audio, rate = media[vid]
            assert abs(len(frames) - FPS * SECONDS) <= 1
            assert frames.shape[1:] == (SIZE, SIZE)
            assert abs(len(audio) / rate - SECONDS) < 0.2 and np.abs(audio).max() > 0


def _text_score(videm: Path, folder: str, row) -> int:
    transcript = (videm / folder / f"{folder}-stt" / f"{row.id}.txt").read_text(encoding="utf-8")
    tokens = re.findall(r"[a-z]+", f"{row.title} {row.description} {transcript}".lower())
    return sum(t in HIGH_WORDS for t in tokens) - sum(t in LOW_WORDS for t in tokens)


def test_planted_signal_is_recoverable(videm, tables, media):
    dev, _ = tables
    y = dev["memorability_score"]
    text = [_text_score(videm, "devset", r) for r in dev.itertuples()]
    brightness = [media[v][0].mean() for v in dev["id"]]
    motion = [np.abs(np.diff(media[v][0].astype(float), axis=0)).mean() for v in dev["id"]]
    loudness = [np.sqrt(np.mean(media[v][1] ** 2)) for v in dev["id"]]
    assert spearmanr(text, y)[0] > 0.3
    assert spearmanr(brightness, y)[0] > 0.15
    assert spearmanr(motion, y)[0] > 0.15
    assert spearmanr(loudness, y)[0] > 0.15
    mentions = [
        (videm / "devset" / "devset-stt" / f"{r.id}.txt").read_text(encoding="utf-8").count(r.channelName)
        for r in dev.itertuples()
    ]
    assert spearmanr(mentions, dev["brand_memorability"])[0] > 0.3
    # marker words never leak from brand names or filler: low-only texts exist and score negative
    assert min(text) < 0 < max(text)


def test_signal_holds_on_the_test_split(videm, tables, media):
    _, test = tables
    gt = test.merge(pd.read_csv(videm / "testset_GT.csv", dtype={"id": str}), on="id")
    text = np.array([_text_score(videm, "testset", r) for r in gt.itertuples()], float)
    loud = np.array([np.sqrt(np.mean(media[v][1] ** 2)) for v in gt["id"]])
    bright = np.array([media[v][0].mean() for v in gt["id"]])
    combo = sum((x - x.mean()) / x.std() for x in (text, loud, bright))
    assert spearmanr(combo, gt["memorability_score"])[0] > 0.3


def test_same_seed_same_data_and_other_seed_differs(tmp_path):
    kw = dict(n_brands_dev=2, videos_per_brand=2, n_brands_test=1, seconds=1.0, size=32, fps=4)
    a = write_sample_dataset(tmp_path / "a", seed=3, **kw)
    b = write_sample_dataset(tmp_path / "b", seed=3, **kw)
    c = write_sample_dataset(tmp_path / "c", seed=4, **kw)
    for rel in ("devset/devset_videolist_GT.csv", "testset/testset_videolist_.csv", "testset_GT.csv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert (a / "devset/devset_videolist_GT.csv").read_bytes() != (
        c / "devset/devset_videolist_GT.csv"
    ).read_bytes()
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        if rel.suffix == ".mp4":
            fa, aa, _ = _decode(a / rel)
            fb, ab, _ = _decode(b / rel)
            assert np.array_equal(fa, fb) and np.array_equal(aa, ab)
            assert abs(len(fa) - 4) <= 1 and fa.shape[1:] == (32, 32)
        elif rel.suffix in (".npy", ".txt"):
            assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_rewrite_clears_own_output_but_refuses_foreign_folders(tmp_path):
    kw = dict(n_brands_dev=2, videos_per_brand=2, n_brands_test=1, seconds=1.0, size=32, fps=4)
    root = write_sample_dataset(tmp_path / "d", seed=1, **kw)
    write_sample_dataset(root, seed=2, **kw)  # a re-run replaces the old set, leaving no stale videos
    ids = set(pd.read_csv(root / "devset" / "devset_videolist_GT.csv", dtype={"id": str})["id"])
    assert {p.stem for p in (root / "devset" / "videos").iterdir()} == ids
    foreign = tmp_path / "real"
    (foreign / "devset").mkdir(parents=True)
    (foreign / "devset" / "devset_videolist_GT.csv").write_text("id\n")
    with pytest.raises(MemoError):
        write_sample_dataset(foreign, **kw)
    assert (foreign / "devset" / "devset_videolist_GT.csv").read_text() == "id\n"


def test_mediaeval2021_layout_and_signal(tmp_path):
    root = write_sample_mediaeval2021(tmp_path / "m21", n_train=60, n_dev=20, n_test=20, seed=0)
    score_cols = (
        "video_id,video_url,annotations_short_term,scores_raw_short_term,"
        "scores_normalized_short_term,decay_alpha"
    )
    caption_cols = "video_id,description_0,description_1,description_2,description_3,description_4"
    ids = []
    for folder, prefix, n in (
        ("training_set", "train", 60),
        ("dev_set", "dev", 20),
        ("test_set", "test", 20),
    ):
        raw = (root / folder / f"{prefix}_text_descriptions.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, as some real files have
        caps = pd.read_csv(root / folder / f"{prefix}_text_descriptions.csv", encoding="utf-8-sig")
        assert ",".join(caps.columns) == caption_cols and len(caps) == n and caps.notna().all().all()
        ids += caps["video_id"].tolist()
        scores_path = root / folder / f"{prefix}_scores.csv"
        assert scores_path.is_file() == (prefix != "test")
        if prefix != "test":
            scores = pd.read_csv(scores_path)
            assert ",".join(scores.columns) == score_cols and len(scores) == n
            assert scores["video_id"].tolist() == caps["video_id"].tolist()
            for c in ("scores_raw_short_term", "scores_normalized_short_term"):
                assert scores[c].between(0, 1).all()
    assert len(set(ids)) == 100
    train = pd.read_csv(root / "training_set" / "train_scores.csv").merge(
        pd.read_csv(root / "training_set" / "train_text_descriptions.csv", encoding="utf-8-sig"),
        on="video_id",
    )
    people = train.filter(like="description_").apply(
        lambda r: sum(bool(re.search(r"\b(woman|man|child|dog|cat|clown|girl|baby)\b", s)) for s in r), axis=1
    )
    assert spearmanr(people, train["scores_normalized_short_term"])[0] > 0.3
    gt = pd.read_csv(root / "test_set_GT.csv")
    assert len(gt) == 20 and gt["scores_normalized_short_term"].between(0, 1).all()


def test_import_is_light():
    code = (
        "import sys, memo.samplekit.videm, memo.samplekit.mediaeval2021; "
        "print(any(m in sys.modules for m in ('av', 'torch')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
