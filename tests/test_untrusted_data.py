"""Untrusted ids, bad files and leaks: dataset files and ids never escape, execute or crash a stage.

Each test builds its own tiny data."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memo.data import is_safe_id
from memo.data_check import check_dataset, check_feature_files, check_videos
from memo.errors import MemoError
from memo.layouts import read_dataset
from memo.store import FeatureStore
from tests.test_data import VIDEM_COLUMNS, make_videm, videm_row, write_csv

# ----------------------------------------------------------------------------- video ids


@pytest.mark.parametrize(
    "bad", ["../../../../x", "/tmp/x", "a/b", ".hidden", "..", "", "a b", "x" * 129, "a\\b"]
)
def test_unsafe_ids_are_refused(bad):
    assert not is_safe_id(bad)


@pytest.mark.parametrize("good", ["vid00000021", "dQw4w9WgXcQ", "-abc_", "a.b", "7"])
def test_plain_ids_pass(good):
    assert is_safe_id(good)


def test_store_refuses_unsafe_ids_and_writes_nothing_outside(tmp_path):
    table = FeatureStore(tmp_path / "store").table("stats", {"a": 1})
    outside = tmp_path / "escaped"
    for bad in (f"../../../../{outside.name}", str(outside), "sub/dir"):
        with pytest.raises(MemoError, match="not a plain name"):
            table.put(bad, {"x": np.ones(3)})
        with pytest.raises(MemoError, match="not a plain name"):
            table.get(bad)
    assert not outside.with_suffix(".npz").exists() and not list(tmp_path.rglob("*.npz"))
    table.put("ok-1", {"x": np.ones(3)})
    assert table.get("ok-1")["x"].shape == (3,)


def test_data_check_reports_unsafe_ids_and_reads_no_file_outside(tmp_path):
    root = make_videm(tmp_path / "data")
    (root / "secret.txt").write_text("do not read me")  # testset/testset-stt/../../secret.txt
    test = [videm_row(i, "NewBrand") for i in range(20, 24)]
    test[0]["id"], test[1]["id"] = "../../secret", "sub/dir"
    write_csv(
        root / "testset" / "testset_videolist_.csv",
        [{k: r[k] for k in VIDEM_COLUMNS[:-3]} for r in test],
        VIDEM_COLUMNS[:-3],
    )
    ds = read_dataset(root)
    errors = [p.message for p in ds.errors]
    assert any("'../../secret'" in m and "not a plain name" in m for m in errors)
    assert any("'sub/dir'" in m and "not a plain name" in m for m in errors)
    assert ds.splits["test"].table.loc["../../secret", "transcript"] != "do not read me"
    assert not isinstance(ds.splits["test"].table.loc["../../secret", "transcript"], str)
    assert ds.splits["test"].table.loc["vid00000022", "transcript"] == "hello and welcome to the bank"


# ----------------------------------------------------------------------------- data check


def test_empty_test_split_is_a_defect(tmp_path):
    root = make_videm(tmp_path)
    write_csv(root / "testset" / "testset_videolist_.csv", [], VIDEM_COLUMNS[:-3])
    ds = read_dataset(root)
    assert any("test split lists no videos" in p.message for p in ds.errors)


def test_non_utf8_transcripts_are_decoded_and_noted(tmp_path):
    root = make_videm(tmp_path)
    (root / "testset" / "testset-stt" / "vid00000021.txt").write_bytes("café – crème".encode("cp1252"))
    (root / "testset" / "testset-stt" / "vid00000023.txt").write_bytes("naïve jingle".encode("utf-16"))
    ds = read_dataset(root)
    assert ds.splits["test"].table.loc["vid00000021", "transcript"] == "café – crème"
    assert ds.splits["test"].table.loc["vid00000023", "transcript"] == "naïve jingle"
    notes = [p for p in ds.problems if "not UTF-8" in p.message]
    assert len(notes) == 1 and not notes[0].error
    assert (
        "2 transcript(s)" in notes[0].message
        and "vid00000021 (cp1252), vid00000023 (utf-16)" in notes[0].message
    )
    assert ds.splits["test"].table.loc["vid00000022", "transcript"] == "hello and welcome to the bank"


def _tiny_mp4(path: Path) -> Path:
    from memo.samplekit.media import write_mp4

    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    write_mp4(path, frames, np.zeros(4096, np.float32), fps=6)
    return path


def test_data_check_opens_videos(tmp_path):
    root = make_videm(tmp_path)
    videos = root / "testset" / "videos"
    videos.mkdir()
    good = _tiny_mp4(videos / "vid00000020.mp4")
    data = good.read_bytes()
    (videos / "vid00000021.mp4").write_bytes(data[: len(data) // 3])  # truncated: a killed download
    (videos / "vid00000022.mp4").write_bytes(b"<html>not found</html>")
    ds = read_dataset(root)
    problems = [p.message for p in check_videos(ds.splits["test"])]
    assert len(problems) == 2, problems
    assert any("vid00000021.mp4" in m and "cannot be decoded" in m for m in problems)
    assert any("vid00000022.mp4" in m for m in problems)
    assert [p.message for p in check_dataset(ds) if "video file" in p.message] == problems


# ----------------------------------------------------------------------------- CSV layout


def test_csv_other_target_is_never_a_feature(tmp_path):
    path = tmp_path / "ads.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "group", "duration", "memorability_score", "brand_memorability"])
        for i in range(8):
            w.writerow([f"v{i}", f"ad {i}", f"b{i % 3}", 10 + i, 0.5 + i / 100, 0.3 + i / 100])
    ds = read_dataset(path, targets=["memorability_score"])
    dev = ds.splits["dev"]
    assert dev.target_columns == ["memorability_score"]
    assert dev.numeric_columns == ["duration"]
    assert "brand_memorability" not in dev.table


# ----------------------------------------------------------------------------- organiser features


def _organiser_project(tmp_path, widths):
    """A project on a small VIDEM folder whose test split ships ViT organiser files of the given widths."""
    from memo.project import Project, init_project

    root = make_videm(
        tmp_path / "data", test_rows=[videm_row(i, "NewBrand") for i in range(20, 20 + len(widths))]
    )
    ids = [f"vid{i:08d}" for i in range(20, 20 + len(widths))]
    for i, w in zip(ids, widths):
        np.save(root / "testset" / "features" / "ViT" / f"{i}.npy", np.ones((3, w), np.float32))
    init_project(tmp_path, root, offline=True)
    return Project.open(tmp_path / "memo.toml"), ids


def test_organiser_odd_shape_is_the_one_rejected(tmp_path):
    from memo.features.base import Outcome
    from memo.features.organiser import OrganiserExtractor

    project, ids = _organiser_project(tmp_path, [5, 8, 8, 8])  # the first file read is the odd one
    ext = OrganiserExtractor(project)
    out = Outcome("organiser")
    ext.run(project.dataset.splits["test"], out, progress=False)
    assert (
        list(out.failed) == [f"test/{ids[0]}/ViT"]
        and "width 5, the other ViT files have 8" in out.failed[f"test/{ids[0]}/ViT"]
    )
    table = ext.table("ViT")
    assert table.missing(ids) == [ids[0]]
    assert table.read_manifest()["dims"] == {"features": 8}
    assert table.get(ids[0]) is None and table.get(ids[1])["features"].shape == (3, 8)
    # the data check agrees about which file is odd
    assert [p.message for p in check_feature_files(project.dataset.splits["test"])][0].count(ids[0]) == 1


# ----------------------------------------------------------------------------- store: temp files and locks


def test_lock_refuses_a_second_writer_and_cleans_stale_temp(tmp_path):
    table = FeatureStore(tmp_path).table("vit", {"m": 1})
    table.put("a", {"x": np.ones(2)})
    stale = table.arrays_dir / ".b.npz.abc.tmp"
    stale.write_bytes(b"half")
    code = (
        "import sys, time; from memo.store import FeatureStore\n"
        f"t = FeatureStore({str(tmp_path)!r}).table('vit', {{'m': 1}})\n"
        "with t.lock():\n    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not stale.exists()  # the holder removed what a killed writer left
        stale.write_bytes(b"half")
        with pytest.raises(MemoError, match="another memo process is computing vit features"):
            with table.lock():
                pass
        assert stale.exists()  # a refused opener touches nothing
    finally:
        holder.kill()
        holder.wait()
    with table.lock():  # released when its holder died
        assert not stale.exists()
    assert table.get("a")["x"].shape == (2,)


def test_extractor_run_holds_the_table_lock(tmp_path):
    from memo.features.base import Outcome
    from memo.features.organiser import OrganiserExtractor

    project, ids = _organiser_project(tmp_path, [8, 8])
    ext = OrganiserExtractor(project)
    with ext.table("ViT").lock():
        with pytest.raises(MemoError, match="another memo process"):
            ext.run(project.dataset.splits["test"], Outcome("organiser"), progress=False)
    ext.run(project.dataset.splits["test"], Outcome("organiser"), progress=False)
    assert ext.table("ViT").missing(ids) == []


# ----------------------------------------------------------------------------- submit and data check agree


def test_submit_stops_on_bad_feature_files_unless_told_to_skip(tmp_path):
    from memo.samplekit.videm import write_sample_dataset
    from memo.submission import submit_runs
    from tests.test_submission import make_project

    data = write_sample_dataset(
        tmp_path / "data", n_brands_dev=4, videos_per_brand=3, n_brands_test=2, seconds=1.0, size=32, fps=4
    )
    ids = read_dataset(data).splits["test"].ids
    feats = data / "testset" / "features" / "Odd"
    feats.mkdir(parents=True)
    for i in ids:
        np.save(feats / f"{i}.npy", np.ones((3, 8 if i != ids[1] else 5), np.float32))
    project = make_project(tmp_path / "p", data)
    with pytest.raises(
        MemoError,
        match=f"feature Odd of video '{ids[1]}'.*memo submit stops on bad files.*skip_bad_files = true",
    ):
        submit_runs(project, ["1"])
    assert not (tmp_path / "p" / "run_files").exists()
    project.config.submission.skip_bad_files = True
    (path,) = submit_runs(project, ["1"])
    assert path.is_file()


# ----------------------------------------------------------------------------- --set


@pytest.mark.parametrize(
    "item, sentence",
    [
        ("foo.bar=1", "--set foo.bar: foo is not a known key; known keys: project, models"),
        (
            "runs.9.predictor=gbt",
            "--set runs.9.predictor: runs.9 is not in memo.toml (defined: 1, 2, 3, 4); add a [runs.9] table",
        ),
        ("gbt.n_trials.deep=1", "--set gbt.n_trials.deep: gbt.n_trials is a single value, not a table"),
        ("runs.1=3", "--set runs.1: runs.1 is a table; set one of its keys"),
    ],
)
def test_bad_set_is_one_sentence_from_the_cli(tmp_path, item, sentence):
    from memo.project import init_project
    from tests.test_core import run_memo

    init_project(tmp_path, make_videm(tmp_path / "data"), offline=True)
    r = run_memo("features", "--set", item, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert sentence in r.stderr


def test_set_still_reaches_run_params_and_keys():
    from memo.config import Config, RunConfig, set_option

    cfg = Config(runs={"1": RunConfig()})
    set_option(cfg, "runs.1.params.alpha", 3.0)
    set_option(cfg, "runs.1.predictor", "mindmem")
    set_option(cfg, "gbt.n_trials", 7)
    assert (
        cfg.runs["1"].params == {"alpha": 3.0}
        and cfg.runs["1"].predictor == "mindmem"
        and cfg.gbt.n_trials == 7
    )


# ----------------------------------------------------------------------------- few-shot labels


def test_new_projects_show_no_labels_in_few_shot_prompts(tmp_path):
    """A fold-j video may take fold-k exemplars: with their labels, a held-out label would reach training."""
    from memo.project import Project, init_project
    from memo.rationales.fewshot import labelled_folds, levels

    init_project(tmp_path, make_videm(tmp_path / "data"), offline=True)
    project = Project.open(tmp_path / "memo.toml")
    assert project.config.rationale.exemplar_labels is False
    # the mechanism the default guards against: the levels a fold-0 query may see include other folds' videos
    lab = project.dataset.labelled()
    folds = labelled_folds(lab.ids, lab.table["group"].tolist(), 3, 0)
    seen = levels(lab.ids, lab.table["memorability_score"].tolist(), [folds[i] for i in lab.ids], 0)
    assert {folds[i] for i in seen} == {1, 2}
