"""memo features: extraction with tiny models on the sample dataset, the store's promises, bad media,
loading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
torch = pytest.importorskip("torch")

from memo.errors import MemoError, ModelNotFound  # noqa: E402
from memo.features import (  # noqa: E402
    EXTRACTORS,
    load_features,
    put_named_stream,
    put_text_stream,
    run_features,
)
from memo.features.text import TextEncoder  # noqa: E402
from memo.project import Project, init_project  # noqa: E402
from memo.samplekit.videm import write_sample_dataset  # noqa: E402

ALL = ["vit", "e5", "audio", "stats", "organiser"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The three tiny models this stage needs (not the Gemma one conftest's fixture also builds)."""
    from memo.samplekit.tiny_models import tiny_audio_encoder, tiny_e5, tiny_vit

    root = tmp_path_factory.mktemp("models")
    return {
        "vit": tiny_vit(root / "vit"),
        "e5": tiny_e5(root / "e5"),
        "audio": tiny_audio_encoder(root / "audio"),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # 3 dev brands x 3 videos + 2 test brands x 2 videos: small enough for a loaded 2-core machine
    return write_sample_dataset(
        tmp_path_factory.mktemp("videm"), n_brands_dev=3, videos_per_brand=3, n_brands_test=2, seed=0
    )


def make_project(folder: Path, data: Path, tiny_models, **features) -> Project:
    """A memo.toml in `folder` for `data` with the tiny models, [features] overrides written to the file."""
    init_project(folder, data, offline=True, force=True)
    project = Project.open(folder / "memo.toml")
    m = project.config.models
    m.vit, m.e5, m.audio, m.device = (
        str(tiny_models["vit"]),
        str(tiny_models["e5"]),
        str(tiny_models["audio"]),
        "cpu",
    )
    for k, v in features.items():
        setattr(project.config.features, k, v)
    return Project.open(project.save())


@pytest.fixture(scope="module")
def done(tmp_path_factory, data, tiny_models):
    """A project on which every extractor has run once."""
    project = make_project(tmp_path_factory.mktemp("proj"), data, tiny_models)
    first = run_features(project, ALL, progress=False)
    return project, first


def test_registry_lists_every_extractor():
    assert set(ALL) <= set(EXTRACTORS.names())
    with pytest.raises(MemoError, match="unknown feature extractor 'vti'.*vit"):
        EXTRACTORS.get("vti")


def test_extract_everything_then_nothing_twice(done):
    project, first = done
    n_videos = sum(len(s.ids) for s in project.dataset.splits.values())
    for name in ("vit", "audio", "stats", "organiser"):
        assert first[name].computed > 0 and not first[name].failed, (name, first[name])
    assert first["vit"].computed == n_videos
    second = run_features(project, ALL, progress=False)
    assert all(o.computed == 0 for o in second.values()), {k: o.computed for k, o in second.items()}
    assert second["vit"].cached == n_videos

    X = load_features(project, "dev", None)
    n = len(project.dataset.splits["dev"].ids)
    assert X.ids == project.dataset.splits["dev"].ids and len(X.groups) == n
    assert X.streams["vit"].values.shape == (n, 8, 32) and X.streams["vit"].mask.all()
    assert X.streams["audio"].values.shape[::2] == (n, 32) and X.streams["audio"].present.all()
    assert X.streams["e5.title"].values.shape == (n, 1, 32)
    np.testing.assert_allclose(np.linalg.norm(X.streams["e5.title"].values[:, 0], axis=1), 1.0, rtol=1e-4)
    assert X.streams["organiser.ViT"].values.shape == (n, 3, 768)
    assert X.streams["organiser.R3D"].values.shape == (n, 1, 512)
    assert X.streams["stats"].names[0] == "duration_s" and X.streams["stats"].values.shape == (n, 1, 13)
    # manifests say what made the arrays
    man = project.store.table("vit", EXTRACTORS.get("vit")(project).key()).read_manifest()
    assert man["dims"] == {"frames": 32} and man["count"] == len(project.dataset.splits["dev"].ids) + len(
        project.dataset.splits["test"].ids
    )
    assert "torch" in man["versions"] and man["tiny_random"] is False  # a folder, not a tiny: alias


def test_metadata_is_named_transformed_and_never_the_brand(done):
    project, _ = done
    sp = project.dataset.splits["dev"]
    vid = sp.ids[0]
    saved = sp.table.loc[vid, "views"]
    sp.table.loc[vid, "views"] = np.nan
    try:
        m = load_features(project, "dev", ["metadata.absolute"]).streams["metadata.absolute"]
    finally:
        sp.table.loc[vid, "views"] = saved
    names = m.names
    assert "log1p_views" in names and "missing_log1p_views" in names
    assert not any(k in n for n in names for k in ("group", "channel", "annotation", "memorab"))
    row = dict(zip(names, m.values[0, 0]))
    assert row["missing_log1p_views"] == 1.0 and np.isfinite(row["log1p_views"])
    assert np.isfinite(m.values).all() and m.mask.all()
    other = dict(zip(names, m.values[1, 0]))
    assert other["missing_log1p_views"] == 0.0
    assert other["log1p_views"] == pytest.approx(np.log1p(sp.table.loc[sp.ids[1], "views"]), rel=1e-5)


def test_load_errors_say_what_to_run(done, data, tiny_models, tmp_path):
    project, _ = done
    with pytest.raises(MemoError, match="unknown feature stream 'e5.nope'"):
        load_features(project, "dev", ["e5.nope"])
    with pytest.raises(MemoError, match="unknown split"):
        load_features(project, "train", ["metadata"])
    fresh = make_project(tmp_path, data, tiny_models)
    with pytest.raises(MemoError, match=r"run `memo features --extractors audio`"):
        load_features(fresh, "dev", ["audio"])
    # nothing run yet: the table streams only
    assert list(load_features(fresh, "dev", None).streams) == ["metadata.absolute", "metadata.brand", "cues"]
    with pytest.raises(
        MemoError,
        match=r"unknown feature stream 'vit\.x'.*under e5, organiser, rationale|unknown feature stream "
        r"'vit\.x'; the streams here are",
    ):
        load_features(fresh, "dev", ["vit.x"])


def test_store_key_follows_config_and_text_changes(done, tmp_path):
    project, _ = done
    ext = EXTRACTORS.get("vit")(project)
    before = ext.table()
    project.config.features.frames = 4
    try:
        after = EXTRACTORS.get("vit")(project).table()
        assert after.key != before.key and after.missing(project.dataset.splits["dev"].ids)
        project.config.models.vit = str(tmp_path / "no-such-folder")
        with pytest.raises(ModelNotFound, match="does not exist"):
            EXTRACTORS.get("vit")(project).table()
    finally:
        project.config.features.frames = 8
        project.config.models.vit = str(Path(before.config["model"]))
    # a changed text: only that text is embedded again, and stale arrays are never served
    sp = project.dataset.splits["dev"]
    vid, old = sp.ids[0], sp.table.loc[sp.ids[0], "title"]
    sp.table.loc[vid, "title"] = old + " with a brand new jingle"
    try:
        with pytest.raises(MemoError, match="texts changed"):
            load_features(project, "dev", ["e5.title"])
        out = run_features(project, ["e5"], splits=["dev"], progress=False)
        assert out["e5"].computed == 1
        assert load_features(project, "dev", ["e5.title"]).streams["e5.title"].mask.all()
    finally:
        sp.table.loc[vid, "title"] = old
        run_features(project, ["e5"], splits=["dev"], progress=False)


def test_long_transcript_is_windowed_not_truncated(tiny_models):
    enc = TextEncoder(str(tiny_models["e5"]), device="cpu", max_tokens=24)
    long = " ".join(f"the bank ad number {k} has a funny jingle and a smiling family." for k in range(12))
    wins = enc.windows(long)
    assert len(wins) > 3
    assert (
        all(w in long for w, _ in wins) and wins[0][0].startswith("the bank") and long.endswith(wins[-1][0])
    )
    assert sum(n for _, n in wins) == len(enc._st.tokenizer(long, add_special_tokens=False)["input_ids"])
    full = enc.encode([long])[0]
    assert enc.last_windows == [len(wins)]
    parts = enc.encode([w for w, _ in wins])  # each window alone (each fits, so no further split)
    pooled = (parts * np.array([n for _, n in wins], np.float32)[:, None]).sum(0)
    np.testing.assert_allclose(full, pooled / np.linalg.norm(pooled), atol=1e-5)
    first_only = enc.encode([wins[0][0]])[0]
    assert np.abs(full - first_only).max() > 1e-3  # the tail of the text counts


def _write_clip(path: Path, value: int, audio: bool, seconds: float = 2.0, fps: int = 8) -> None:
    """A flat grey clip of luma `value`, with or without a sound track."""
    from memo.samplekit.media import has_encoder

    codec = "libx264" if has_encoder("libx264") else "mpeg4"
    with av.open(str(path), "w") as box:
        vs = box.add_stream(codec, rate=Fraction(fps))
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("aac", rate=16000, layout="mono") if audio else None
        img = np.full((64, 64, 3), value, np.uint8)
        for _ in range(int(seconds * fps)):
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(p)
        for p in vs.encode():
            box.mux(p)
        if aus is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            snd = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for a in range(0, len(snd) - 1024, 1024):
                fr = av.AudioFrame.from_ndarray(snd[None, a : a + 1024], format="flt", layout="mono")
                fr.rate = 16000
                for p in aus.encode(fr):
                    box.mux(p)
            for p in aus.encode():
                box.mux(p)


def test_bad_media_is_logged_masked_and_the_run_goes_on(data, tiny_models, tmp_path, said):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    videos = sorted((copy / "devset" / "videos").glob("*.mp4"))
    corrupt, empty, bright, dark = videos[:4]
    corrupt.write_bytes(b"\x00not a video" * 100)
    empty.write_bytes(b"")
    _write_clip(bright, 230, audio=False)
    _write_clip(dark, 25, audio=True)
    project = make_project(tmp_path / "p", copy, tiny_models)
    out = run_features(project, ["vit", "audio", "stats"], splits=["dev"], progress=False)
    for name in ("vit", "audio", "stats"):
        assert {f"dev/{corrupt.stem}", f"dev/{empty.stem}"} <= set(out[name].failed), (name, out[name].failed)
    assert "no audio track" in out["audio"].failed[f"dev/{bright.stem}"]
    assert any("failed dev/" in s for s in said())
    X = load_features(project, "dev", ["vit", "audio", "stats"])
    pos = {i: k for k, i in enumerate(X.ids)}
    for s in ("vit", "audio", "stats"):
        assert not X.streams[s].present[pos[corrupt.stem]] and not X.streams[s].present[pos[empty.stem]]
        assert X.streams[s].present.sum() >= len(X.ids) - 3
    stats = dict(zip(X.streams["stats"].names, X.streams["stats"].values[:, 0].T))
    assert stats["brightness"][pos[bright.stem]] > 0.8 > 0.2 > stats["brightness"][pos[dark.stem]]
    assert stats["has_audio"][pos[bright.stem]] == 0 and stats["silence_ratio"][pos[bright.stem]] == 1
    assert stats["has_audio"][pos[dark.stem]] == 1 and stats["loudness_db"][pos[dark.stem]] > -20
    assert stats["colourfulness"][pos[bright.stem]] < 0.05 and stats["cuts_per_minute"][pos[bright.stem]] == 0
    # the failures are on disk too, and a rerun tries them again without recomputing the good ones
    fails = EXTRACTORS.get("vit")(project).table().failures()
    assert corrupt.stem in fails
    again = run_features(project, ["vit"], splits=["dev"], progress=False)
    assert again["vit"].computed == 0 and len(again["vit"].failed) == 2


CHILD = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(1)
    from memo.store import StoreTable
    put = StoreTable.put
    def slow_put(self, *a, **k):  # slow the writes down so the parent can kill us mid-run
        put(self, *a, **k)
        time.sleep(0.3)
    StoreTable.put = slow_put
    from memo.features import run_features
    from memo.project import Project
    run_features(Project.open(sys.argv[1]), ["vit"], batch_size=1, progress=False)
    """
)


def test_resume_after_sigkill_gives_the_same_arrays(data, tiny_models, tmp_path):
    killed = make_project(tmp_path / "killed", data, tiny_models)
    table = EXTRACTORS.get("vit")(killed).table()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "killed" / "memo.toml")],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None and len(list(table.arrays_dir.glob("*.npz"))) < 3:
        time.sleep(0.05)
    assert child.poll() is None, "the child finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    ids = [i for s in killed.dataset.splits.values() for i in s.ids]
    left = table.missing(ids)
    assert 0 < len(left) < len(ids)
    # a temp file as a kill during a write leaves it: never read, never counted
    (table.arrays_dir / f".{left[0]}.npz.abc.tmp").write_bytes(b"half written")
    assert table.missing(ids) == left

    resumed = run_features(killed, ["vit"], batch_size=1, progress=False)
    assert resumed["vit"].computed == len(left) and resumed["vit"].cached == len(ids) - len(left)
    clean = make_project(tmp_path / "clean", data, tiny_models)
    run_features(clean, ["vit"], batch_size=1, progress=False)
    for split in ("dev", "test"):
        a = load_features(killed, split, ["vit"])
        b = load_features(clean, split, ["vit"])
        for s in ("vit",):
            assert (a.streams[s].mask == b.streams[s].mask).all()
            np.testing.assert_allclose(a.streams[s].values, b.streams[s].values, rtol=1e-5, atol=1e-6)


def test_offline_missing_model_is_one_clear_error(done, monkeypatch):
    project, _ = done
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    saved = project.config.models.e5
    project.config.models.e5 = "intfloat/e5-not-downloaded-anywhere"
    # a new field: must encode
    monkeypatch.setattr(project.config.features, "text_fields", ["title", "summary"])
    try:
        with pytest.raises(ModelNotFound) as err:
            run_features(project, ["e5"], splits=["dev"], progress=False)
    finally:
        project.config.models.e5 = saved
    msg = str(err.value)
    assert "intfloat/e5-not-downloaded-anywhere" in msg and "HF_HUB_OFFLINE" in msg and "hf download" in msg
    assert "\n" not in msg


def test_other_stages_write_text_and_rating_streams(done):
    project, _ = done
    dev = project.dataset.splits["dev"].ids
    n = put_text_stream(
        project, "rationale.humor", {dev[0]: "A talking dog makes it funny.", dev[1]: ""}, progress=False
    )
    assert n == 2
    assert (
        put_text_stream(project, "rationale.humor", {dev[0]: "A talking dog makes it funny."}, progress=False)
        == 0
    )
    put_named_stream(
        project,
        "ratings",
        {dev[0]: [7, 3, 5, 6, 4]},
        names=[f"rating_{a}" for a in project.config.rationale.aspects],
    )
    X = load_features(project, "dev", ["rationale.humor", "ratings"])
    h, r = X.streams["rationale.humor"], X.streams["ratings"]
    assert h.present.tolist() == [True] + [False] * (len(dev) - 1)  # an empty rationale is masked
    assert r.names[0] == "rating_humor" and r.values[0, 0, 0] == 7 and r.present.sum() == 1
    with pytest.raises(MemoError, match="belongs to an extractor"):
        put_text_stream(project, "e5.title", {dev[0]: "x"}, progress=False)
    # a changed rationale config is another table: its rationales were never written
    project.config.rationale.few_shot += 1
    try:
        with pytest.raises(MemoError, match="run `memo rationale`"):
            load_features(project, "dev", ["rationale.humor"])
    finally:
        project.config.rationale.few_shot -= 1


def test_processes_split_ids_and_share_the_store(data, tiny_models, tmp_path, monkeypatch):
    project = make_project(tmp_path, data, tiny_models)
    ids = [i for s in project.dataset.splits.values() for i in s.ids]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        out = run_features(project, ["stats"], progress=False)
        assert 0 < out["stats"].computed < len(ids)
    table = EXTRACTORS.get("stats")(project).table()
    assert table.missing(ids) == []


def test_captions_are_embedded_one_by_one_and_averaged(tiny_models, tmp_path):
    from memo.samplekit.mediaeval2021 import write_sample_mediaeval2021

    data = write_sample_mediaeval2021(tmp_path / "m21", n_train=4, n_dev=0, n_test=0, seed=0)
    project = make_project(tmp_path / "proj", data, tiny_models, extractors=["e5"])
    run_features(project, ["e5"], progress=False)
    sp = project.dataset.splits["train"]
    got = load_features(project, "train", ["e5.captions"]).streams["e5.captions"].values[:, 0]  # (N, D)
    enc = TextEncoder(str(tiny_models["e5"]), device="cpu")
    for row, vid in enumerate(sp.ids):
        lines = sp.table.loc[vid, "captions"].split("\n")
        assert len(lines) == 5
        mean = enc.encode(lines).mean(0)
        np.testing.assert_allclose(got[row], mean / np.linalg.norm(mean), atol=1e-5)
    # "joined" is another store table (nothing cached is served for it) and embeds the whole text once
    project.config.features.caption_pooling = "joined"
    joined = Project.open(project.save())
    with pytest.raises(MemoError, match="not in the store"):
        load_features(joined, "train", ["e5.captions"])
    run_features(joined, ["e5"], progress=False)
    one = load_features(joined, "train", ["e5.captions"]).streams["e5.captions"].values[0, 0]
    np.testing.assert_allclose(one, enc.encode([sp.table.loc[sp.ids[0], "captions"]])[0], atol=1e-5)
    joined.config.features.caption_pooling = "max"
    with pytest.raises(MemoError, match="caption_pooling = 'max' is not one of mean, joined"):
        load_features(joined, "train", ["e5.captions"])


def test_a_timm_vision_model_encodes_frames_as_timm_itself_does(tmp_path):
    """`timm/<name>` models go through transformers' TimmWrapper: the vectors are timm's own pooled
    features."""
    pytest.importorskip(
        "timm",
        reason="timm needs torchvision, which pulls a CUDA torch from PyPI; "
        "this runs where timm is installed (the GPU machine)",
    )
    import timm
    import torch

    from memo.features.vit import FrameEncoder
    from memo.samplekit.tiny_models import tiny_timm_vit

    folder = tiny_timm_vit(tmp_path / "timm-vit")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8) for _ in range(5)]
    cls = FrameEncoder(str(folder), "cpu", pooling="cls", micro_batch=2)
    mean = FrameEncoder(str(folder), "cpu", pooling="mean")
    a, b = cls.encode(images), mean.encode(images)
    assert a.shape == b.shape == (5, 192) and cls.dim == 192
    assert not np.allclose(a, b)

    # the same network built by timm alone, fed the processor's pixels, gives the same vectors
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, depth=2)
    net.load_state_dict(cls.net.timm_model.state_dict())
    with torch.inference_mode():
        px = cls.processor(images=images, return_tensors="pt")["pixel_values"]
        assert px.shape == (5, 3, 32, 32)
        np.testing.assert_allclose(a, net.eval()(px).numpy(), atol=1e-5)
        tokens = net.forward_features(px)  # (5, 1 + 4, 192)
        np.testing.assert_allclose(b, tokens[:, net.num_prefix_tokens :].mean(1).numpy(), atol=1e-5)


def test_a_timm_model_without_timm_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util
    import json

    from memo.features.vit import FrameEncoder

    if importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed here; the sentence is for machines without it")
    folder = tmp_path / "timm-model"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "timm_wrapper",
                "architecture": "vit_tiny_patch16_224",
                "pretrained_cfg": {"input_size": [3, 32, 32]},
            }
        )
    )
    with pytest.raises(MemoError, match=r"timm is not installed; run pip install 'memo\[timm\]'"):
        FrameEncoder(str(folder), "cpu")
