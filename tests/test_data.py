"""Dataset readers on small files the tests write: every layout, every defect `memo data check` reports."""

import csv
from pathlib import Path

import numpy as np
import pytest

from memo.data_check import check_feature_files, summarize
from memo.errors import DataError
from memo.layouts import detect_layout, read_dataset

VIDEM_COLUMNS = [
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


def videm_row(i, brand, score=0.7, title=None):
    row = {c: "" for c in VIDEM_COLUMNS}
    row.update(
        id=f"vid{i:08d}",
        channelName=brand,
        title=f"ad number {i}" if title is None else title,
        description="a bank ad",
        categoryId=25,
        durationSeconds=30 + i,
        viewsCount=100 * i,
        likesCount=i,
        video_id=i,
        nb_annotations=17,
        memorability_score=score,
        brand_memorability=score / 2,
    )
    return row


def write_csv(path: Path, rows, columns, bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def make_videm(root: Path, dev_rows=None, test_rows=None):
    dev_rows = dev_rows or [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    test_rows = test_rows or [videm_row(i, "NewBrand") for i in range(20, 24)]
    test_cols = VIDEM_COLUMNS[:-3]
    write_csv(root / "devset" / "devset_videolist_GT.csv", dev_rows, VIDEM_COLUMNS)
    write_csv(
        root / "testset" / "testset_videolist_.csv",
        [{k: r[k] for k in test_cols} for r in test_rows],
        test_cols,
    )
    stt = root / "testset" / "testset-stt"
    stt.mkdir(parents=True)
    for r in test_rows:
        (stt / f"{r['id']}.txt").write_text("hello and welcome to the bank" if r["video_id"] != 20 else "")
    for name, shape in (("ViT", (3, 8)), ("R3D", (5,))):
        d = root / "testset" / "features" / name
        d.mkdir(parents=True)
        for r in test_rows:
            np.save(d / f"{r['id']}.npy", np.ones(shape, np.float32))
    return root


def test_videm_reader_roles(tmp_path):
    ds = read_dataset(make_videm(tmp_path))
    assert (
        ds.layout == "videm" and ds.train_split == "dev" and ds.test_split == "test" and ds.id_column == "id"
    )
    dev, test = ds.splits["dev"], ds.splits["test"]
    assert len(dev.table) == 9 and dev.table.index.name == "id"
    assert dev.target_columns == ["memorability_score", "brand_memorability"] and not test.labelled
    assert set(dev.table["group"]) == {"Brand0", "Brand1", "Brand2"}
    assert "duration" in dev.numeric_columns and "views" in dev.numeric_columns
    # the brand, the row number and the annotation count are never offered as features
    assert not {"group", "video_id", "n_annotations", "channelName"} & set(dev.numeric_columns)
    assert test.table.loc["vid00000021", "transcript"] == "hello and welcome to the bank"
    assert set(test.feature_files) == {"ViT", "R3D"} and len(test.feature_files["ViT"]) == 4
    assert not ds.errors
    # one empty transcript is a note, not an error
    assert any("empty transcript" in p.message and not p.error for p in ds.problems)


def test_summary_counts_modalities(tmp_path):
    s = summarize(read_dataset(make_videm(tmp_path)))
    assert s.loc["dev", "videos"] == 9 and s.loc["test", "videos"] == 4
    assert s.loc["test", "transcript"] == 3 and s.loc["dev", "transcript"] == 0
    assert s.loc["test", "features/ViT"] == 4


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda rows: rows.append(dict(rows[0])), "appears more than once"),
        (lambda rows: rows[1].update(memorability_score=""), "missing or not a number"),
        (lambda rows: rows[2].update(memorability_score=1.5), "outside [0, 1]"),
        (lambda rows: rows[3].update(title=""), "empty title"),
    ],
)
def test_videm_row_defects_are_errors(tmp_path, mutate, expected):
    rows = [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    mutate(rows)
    ds = read_dataset(make_videm(tmp_path, dev_rows=rows))
    assert any(expected in p.message for p in ds.errors), [p.message for p in ds.problems]
    with pytest.raises(DataError, match=expected.split()[0]):
        ds.raise_problems()


def test_missing_file_and_column(tmp_path):
    make_videm(tmp_path)
    (tmp_path / "devset" / "devset_videolist_GT.csv").unlink()
    with pytest.raises(DataError, match="no video list"):
        read_dataset(tmp_path)
    write_csv(tmp_path / "devset" / "devset_videolist_GT.csv", [{"id": "a", "title": "t"}], ["id", "title"])
    with pytest.raises(DataError, match="channelName"):
        read_dataset(tmp_path)


def test_bad_feature_files(tmp_path):
    root = make_videm(tmp_path)
    vit = root / "testset" / "features" / "ViT"
    np.save(vit / "vid00000021.npy", np.ones((3, 7), np.float32))  # wrong width
    (vit / "vid00000022.npy").write_bytes(b"not a numpy file")
    bad = np.ones((3, 8), np.float32)
    bad[0, 0] = np.nan
    np.save(vit / "vid00000023.npy", bad)
    problems = [p.message for p in check_feature_files(read_dataset(root).splits["test"])]
    assert any("vid00000021" in m and "shape (3, 7)" in m for m in problems)
    assert any("vid00000022" in m and "cannot be read" in m for m in problems)
    assert any("vid00000023" in m and "non-finite" in m for m in problems)
    assert len(problems) == 3


def test_two_row_features_are_fine(tmp_path):
    root = make_videm(tmp_path)
    np.save(root / "testset" / "features" / "ViT" / "vid00000021.npy", np.ones((2, 8), np.float32))
    assert check_feature_files(read_dataset(root).splits["test"]) == []


def test_shared_id_between_splits_is_an_error(tmp_path):
    dev = [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    ds = read_dataset(make_videm(tmp_path, dev_rows=dev, test_rows=[videm_row(1, "NewBrand")]))
    assert any("in both dev and test" in p.message for p in ds.errors)


def make_memento(root: Path, wide=True):
    scores = [
        {
            "video_id": i,
            "video_url": f"http://x/{i}.mp4",
            "annotations_short_term": 90,
            "scores_raw_short_term": 0.8,
            "scores_normalized_short_term": 0.5 + i / 100,
            "decay_alpha": 0.0,
        }
        for i in range(1, 8)
    ]
    write_csv(root / "training_set" / "train_scores.csv", scores, list(scores[0]))
    if wide:
        caps = [
            {"video_id": i, **{f"description_{k}": f"a person does thing {k}" for k in range(5)}}
            for i in range(1, 8)
        ]
        caps[0]["description_2"] = "a caption\nspread over two lines, with a comma"
        write_csv(root / "training_set" / "train_text_descriptions.csv", caps, list(caps[0]), bom=True)
    else:
        caps = [
            {"video_id": i, "video_url": "u", "description": f"caption {k}"}
            for i in range(1, 8)
            for k in range(3)
        ]
        write_csv(root / "training_set" / "train_text_descriptions.csv", caps, list(caps[0]), bom=True)
    return root


@pytest.mark.parametrize("wide", [True, False])
def test_mediaeval2021_reader(tmp_path, wide):
    ds = read_dataset(make_memento(tmp_path, wide=wide))
    assert ds.layout == "mediaeval2021" and ds.train_split == "train" and ds.test_split is None
    t = ds.splits["train"].table
    assert len(t) == 7 and ds.id_column == "video_id"
    assert ds.splits["train"].target_columns[0] == "scores_normalized_short_term"
    caps = t.loc["1", "captions"].split("\n")
    assert len(caps) == (5 if wide else 3)
    assert (t["group"] == t.index).all()  # no brands: every video its own group
    if wide:
        assert "spread over two lines, with a comma" in t.loc["1", "captions"]


def test_generic_csv_layout(tmp_path):
    rows = [
        {
            "id": f"a{i}",
            "group": f"g{i % 2}",
            "title": f"t{i}",
            "views": i,
            "memorability_score": 0.1 * i if i < 5 else "",
        }
        for i in range(7)
    ]
    write_csv(tmp_path / "ads.csv", rows, list(rows[0]))
    assert detect_layout(tmp_path) == "csv"
    ds = read_dataset(tmp_path)
    assert len(ds.splits["dev"].table) == 5 and len(ds.splits["test"].table) == 2
    assert ds.splits["dev"].numeric_columns == ["views"]
    with pytest.raises(DataError, match="lacks the target"):
        read_dataset(tmp_path, targets=["brand_memorability"])


def test_undetectable_layout(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(DataError, match="cannot tell the layout"):
        read_dataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nope")


def test_a_copied_or_touched_dataset_keeps_its_signature_and_a_changed_byte_does_not(tmp_path):
    """Fingerprints hold the data's content, not its files' times: a re-copied dataset keeps hours of cached
    runs (a fresh copy of the data once cost a `memo submit --run 3` its finished Gemma-3 CV folds)."""
    import os
    import shutil

    from memo.store import content_signature

    data = tmp_path / "data"
    (data / "devset").mkdir(parents=True)
    (data / "devset" / "GT.csv").write_text("id,score\na,0.5\nb,0.7\n")
    (data / "clip.mp4").write_bytes(bytes(range(256)) * 64)
    cache = tmp_path / "work" / "data_hashes.json"
    first = content_signature(data, cache)
    assert [r[0] for r in first] == ["clip.mp4", "devset/GT.csv"] and all(len(r[2]) == 64 for r in first)

    copy = shutil.copytree(data, tmp_path / "copy", copy_function=shutil.copy)  # new modification times
    assert os.stat(copy / "clip.mp4").st_mtime_ns != os.stat(data / "clip.mp4").st_mtime_ns
    assert content_signature(copy) == first
    os.utime(data / "devset" / "GT.csv", ns=(1, 1))
    assert content_signature(data, cache) == first

    (copy / "devset" / "GT.csv").write_text("id,score\na,0.5\nb,0.8\n")  # same size, one byte changed
    assert content_signature(copy) != first

    # the cache is what makes a second call cheap: a file whose size and time are unchanged is not read again
    st = os.stat(data / "clip.mp4")
    (data / "clip.mp4").write_bytes(bytes(range(255, -1, -1)) * 64)
    os.utime(data / "clip.mp4", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert content_signature(data, cache) == first and content_signature(data) != first
    cache.write_text("{not json")  # a damaged cache only means the files are read again
    assert content_signature(data, cache) == content_signature(data)


# ----------------------------------------------------------------------------- text in numbers, one brand


def test_text_in_a_numeric_column_is_a_note_that_names_file_column_rows_and_an_example(tmp_path):
    from typer.testing import CliRunner

    from memo.cli import app

    rows = [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    rows[2]["durationSeconds"], rows[5]["durationSeconds"] = "abc", "n/a?"
    ds = read_dataset(make_videm(tmp_path, dev_rows=rows))
    notes = [p for p in ds.problems if "durationSeconds" in p.message]
    assert len(notes) == 1 and not notes[0].error and not ds.errors
    m = notes[0].message
    assert "devset_videolist_GT.csv" in m and "2 row(s)" in m and "'vid00000003'" in m and "'abc'" in m
    assert "write a number or leave the cell empty" in m
    assert np.isnan(ds.splits["dev"].table.loc["vid00000003", "duration"])  # read as missing, as before
    res = CliRunner().invoke(app, ["data", "check", str(tmp_path)])
    assert res.exit_code == 0 and "note:" in res.output and "durationSeconds holds text" in res.output


def test_text_in_a_target_is_an_error(tmp_path):
    rows = [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    rows[4]["memorability_score"] = "high"
    ds = read_dataset(make_videm(tmp_path, dev_rows=rows))
    m = ds.errors[0].message  # the first defect raise_problems shows names the text
    assert "target column memorability_score" in m and "'vid00000005'" in m and "'high'" in m
    with pytest.raises(DataError, match="holds text"):
        ds.raise_problems()


def test_generic_csv_text_in_numbers_and_targets(tmp_path):
    rows = [
        {"id": f"a{i}", "group": f"g{i % 3}", "title": "t", "views": i, "memorability_score": 0.1 * i}
        for i in range(6)
    ]
    rows[1]["views"], rows[2]["memorability_score"] = "lots", "?"
    write_csv(tmp_path / "ads.csv", rows, list(rows[0]))
    ds = read_dataset(tmp_path)
    views = [p for p in ds.problems if "column views" in p.message]
    assert len(views) == 1 and not views[0].error and "'a1'" in views[0].message
    assert "not used as a numeric feature" in views[0].message and ds.splits["dev"].numeric_columns == []
    assert any("target column memorability_score" in p.message and "'a2'" in p.message for p in ds.errors)


def test_a_single_brand_is_a_defect_of_memo_data_check(tmp_path):
    from typer.testing import CliRunner

    from memo.cli import app

    make_videm(tmp_path, dev_rows=[videm_row(i, "OnlyBank") for i in range(1, 8)])
    ds = read_dataset(tmp_path)
    [err] = [p.message for p in ds.errors]
    assert "'OnlyBank'" in err and "at least 2 groups" in err
    res = CliRunner().invoke(app, ["data", "check", str(tmp_path)])
    assert res.exit_code == 1 and "at least 2 groups" in res.output
    # sibling channels of one brand are one group too
    make_videm(
        tmp_path / "siblings", dev_rows=[videm_row(i, ["Acme", "Acme UK"][i % 2]) for i in range(1, 8)]
    )
    assert any("at least 2 groups" in p.message for p in read_dataset(tmp_path / "siblings").errors)


def test_detection_asks_each_registered_layout_in_rank_order(tmp_path):
    from memo.layouts import layouts

    assert [layout.name for layout in layouts()] == ["videm", "mediaeval2021", "csv"]
    # a VIDEM folder with a stray CSV at its root is still VIDEM: the catch-all csv layout is asked last
    root = make_videm(tmp_path)
    write_csv(root / "testset_GT.csv", [{"id": "a", "memorability_score": 0.5}], ["id", "memorability_score"])
    assert detect_layout(root) == "videm"
    assert detect_layout(make_memento(tmp_path / "m")) == "mediaeval2021"
