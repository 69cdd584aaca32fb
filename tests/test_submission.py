"""Submission: run files written, validated, reproducible and never overwritten silently.

Most tests use `meta_ridge`, a small honest predictor registered here (ridge regression on the
`metadata` stream, counting its fits), so the machinery is tested in seconds; the end-to-end
tests go through the real `memo init --offline` + `memo submit --run 1` path with the GBT ensemble.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from memo.config import RunConfig, load_config
from memo.crossval import repeats_of
from memo.errors import MemoError
from memo.metrics import spearman
from memo.predictors import PREDICTORS, Predictor
from memo.project import Project, init_project
from memo.samplekit.mediaeval2021 import write_sample_mediaeval2021
from memo.samplekit.videm import write_sample_dataset
from memo.submission import blend_predictions, resolve_run, submit_runs, validate_run_file
from memo.submission.blends import blend_candidates, compute_blend
from memo.submission.plan import LATER_RUN_KEYS, run_folder


@PREDICTORS.register("meta_ridge")
class MetaRidge(Predictor):
    """Ridge on the standardised metadata stream; `fits` counts every fit in this process."""

    name = "meta_ridge"
    fits = 0

    def __init__(self, alpha: float = 10.0, random_state: int = 0):
        self.alpha = alpha
        self.random_state = random_state

    streams = ("metadata.absolute",)

    def _x(self, X) -> np.ndarray:
        return np.nan_to_num(X.streams["metadata.absolute"].pooled())  # (N, K)

    def fit(self, X, y: pd.DataFrame) -> MetaRidge:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        type(self).fits += 1
        self.targets_ = list(y.columns)
        # what consumed() reports
        self.stream_widths_ = {"metadata.absolute": X.streams["metadata.absolute"].dim}
        self.model_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(
            self._x(X), y.to_numpy(float)
        )
        return self

    def predict(self, X) -> pd.DataFrame:
        p = np.clip(self.model_.predict(self._x(X)), 0, 1)
        return pd.DataFrame(p, index=pd.Index(X.ids, name="id"), columns=self.targets_)

    def save(self, folder) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.pkl").write_bytes(pickle.dumps(self))
        return folder

    @classmethod
    def load(cls, folder) -> MetaRidge:
        return pickle.loads((Path(folder) / "model.pkl").read_bytes())


@pytest.fixture(scope="module")
def videm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videm")
    return write_sample_dataset(
        root / "data", n_brands_dev=6, videos_per_brand=4, n_brands_test=2, seconds=1.0, size=32, fps=4
    )


def make_project(folder: Path, data: Path, runs: dict[str, RunConfig] | None = None) -> Project:
    path = init_project(folder, data, team="demo", offline=True)
    cfg = load_config(path)
    cfg.evaluate.bootstrap = 50
    cfg.runs = runs or {
        "1": RunConfig(predictor="meta_ridge", streams=["metadata"]),
        "2": RunConfig(predictor="meta_ridge", streams=["metadata"], params={"alpha": 1000.0}),
        "3": RunConfig(predictor="blend", blend=["1", "2"]),
    }
    return Project(cfg)


@pytest.fixture
def project(tmp_path, videm) -> Project:
    return make_project(tmp_path, videm)


def test_submit_writes_a_valid_run_file_with_a_manifest(project, videm):
    (path,) = submit_runs(project, ["1"])
    assert path == project.config.root / "run_files" / "me25mem-demo-subtask2-run1.csv"
    assert validate_run_file(path, project) == []
    df = pd.read_csv(path, dtype={"id": str})
    test_ids = project.dataset.splits["test"].ids
    assert list(df.columns) == ["id", "memorability_score", "brand_memorability"]
    assert list(df["id"]) == test_ids  # the test list's order
    assert df.iloc[:, 1:].apply(lambda c: c.between(0, 1)).all().all()
    # the file scores against the held-back labels like any run file
    gt = pd.read_csv(videm / "testset_GT.csv", dtype={"id": str}).set_index("id").loc[df["id"]]
    assert np.isfinite(spearman(gt["memorability_score"], df["memorability_score"]))

    m = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    assert m["file"]["sha256"] and m["file"]["rows"] == len(test_ids)
    # the selector `metadata` is a prefix: both metadata views (the sample has brands)
    assert m["resolved"]["streams"] == ["metadata.absolute", "metadata.brand"] and m["resolved"][
        "targets"
    ] == ["memorability_score", "brand_memorability"]
    assert m["git_commit"] and "numpy" in m["versions"] and m["fingerprint"]
    # the manifest's CV score is the Spearman of the out-of-fold predictions it was computed from
    cv = pd.read_csv(
        project.workdir / "runs" / "1" / m["run_fingerprint"] / "cv_predictions.csv", dtype={"id": str}
    ).set_index(["repeat", "id"])
    oof = cv.xs(0)
    y = project.dataset.splits["dev"].table.loc[oof.index]
    assert m["cv"]["scores"]["memorability_score"]["spearman"] == pytest.approx(
        spearman(y["memorability_score"], oof["memorability_score"])
    )
    per_repeat = [
        spearman(y["memorability_score"], cv.xs(r).loc[oof.index, "memorability_score"])
        for r in range(project.config.evaluate.repeats)
    ]
    assert (
        m["cv"]["scores"]["memorability_score"]["expected"] == pytest.approx(np.mean(per_repeat))
        and len(set(per_repeat)) > 1
    )
    assert m["cv"]["scheme"].startswith("5-fold brand-grouped")


def test_run_trains_on_its_streams_and_the_manifest_says_so(tmp_path, videm):
    """Run 1 trained E5 only while saying "metadata, e5" (the GBT's own blocks never matched the run's
    streams); now a run's streams are what the predictor reads, and the manifest lists each with its
    columns."""
    from memo.features.cues import cue_frame
    from memo.features.load import metadata_frame

    run = RunConfig(
        predictor="gbt", streams=["cues", "metadata.absolute"], params={"members": ["ridge"], "n_trials": 0}
    )
    project = make_project(tmp_path, videm, {"1": run})
    project.config.evaluate.repeats = 2
    (path,) = submit_runs(project, ["1"])
    m = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    sp = project.dataset.splits["dev"]
    assert m["streams"] == {
        "cues": cue_frame(sp.table).shape[1],
        "metadata.absolute": metadata_frame(project.dataset, sp).shape[1],
    }
    assert m["resolved"]["streams"] == ["cues", "metadata.absolute"]
    scores = m["cv"]["scores"]["memorability_score"]
    assert scores["repeats"] == 2 and scores["expected_min"] <= scores["expected"] <= scores["expected_max"]
    assert "repeated 2 times" in m["cv"]["scheme"]
    # `memo evaluate --run 1` scores the same cached run, beside the baselines on the same folds
    from memo.evaluation import evaluate_run

    table, info = evaluate_run(project, "1", baselines=["duration"])
    row = table[(table["model"] == "run 1") & (table["target"] == "memorability_score")].iloc[0]
    assert row["expected"] == pytest.approx(scores["expected"]) and set(table["model"]) == {
        "run 1",
        "duration",
    }
    assert row["reads"] == "cues, metadata.absolute" and set(
        table[table["model"] == "duration"]["reads"]
    ) == {"metadata.absolute"}
    assert info["streams"] == m["streams"]


def test_rerun_changes_nothing(project):
    (path,) = submit_runs(project, ["1"])
    manifest = path.with_name(path.stem + ".manifest.json")
    before = (path.read_bytes(), path.stat().st_mtime_ns, manifest.read_bytes(), manifest.stat().st_mtime_ns)
    fits = MetaRidge.fits
    # a fresh project: the dataset is read again, as in a new process
    submit_runs(Project(project.config), ["1"])
    assert MetaRidge.fits == fits  # nothing retrained, not even the CV folds
    assert (
        path.read_bytes(),
        path.stat().st_mtime_ns,
        manifest.read_bytes(),
        manifest.stat().st_mtime_ns,
    ) == before


def test_changed_inputs_need_force_and_keep_a_backup(project):
    (path,) = submit_runs(project, ["1"])
    old = path.read_bytes()
    project.config.runs["1"].params = {"alpha": 0.01}
    with pytest.raises(MemoError, match=r"--force.*\(changed: params, run\)|changed: params.*--force"):
        submit_runs(project, ["1"])
    assert path.read_bytes() == old
    fits = MetaRidge.fits
    submit_runs(project, ["1"], force=True)
    assert MetaRidge.fits > fits
    backups = list((path.parent / "backups").iterdir())
    assert any(b.name.startswith(path.name) and b.read_bytes() == old for b in backups)
    assert any(".manifest.json" in b.name for b in backups)
    assert validate_run_file(path, project) == []
    # a hand-edited file is not silently replaced either
    path.write_text(path.read_text().replace("0.", "0.0", 1))
    with pytest.raises(MemoError, match="changed since memo wrote it"):
        submit_runs(project, ["1"])


def test_format_options_and_validation_follow_the_config(project):
    s = project.config.submission
    s.separator, s.precision, s.header, s.columns, s.id_column = ";", 3, False, ["mem", "brand"], "video"
    s.filename = "{team}_run{run}.txt"
    (path,) = submit_runs(project, ["1"])
    assert path.name == "demo_run1.txt"
    first = path.read_text().splitlines()[0].split(";")
    assert first[0] == project.dataset.splits["test"].ids[0] and len(first[1].split(".")[1]) == 3
    assert validate_run_file(path, project) == []


def test_blend_rank_averages_its_component_runs(project):
    fits = MetaRidge.fits
    (path,) = submit_runs(project, ["3"])  # runs 1 and 2 are computed on the way (not written)
    per_run = 5 * project.config.evaluate.repeats + 1  # 5 CV folds per repeat + the final fit
    assert MetaRidge.fits == fits + 2 * per_run
    assert validate_run_file(path, project) == []
    assert not (path.parent / "me25mem-demo-subtask2-run1.csv").exists()
    r1, r2 = (resolve_run(project, n) for n in ("1", "2"))
    p1, p2 = (
        pd.read_csv(
            project.workdir / "runs" / n / r.fingerprint / "test_predictions.csv", index_col=0, dtype={0: str}
        )
        for n, r in (("1", r1), ("2", r2))
    )
    blend = pd.read_csv(path, index_col=0, dtype={"id": str})
    mean_rank = (p1.rank() + p2.rank()) / 2
    for t in blend.columns:
        assert spearman(mean_rank.loc[blend.index, t], blend[t]) == pytest.approx(1.0)
    m = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    assert set(m["components"]) == {"1", "2"} and m["resolved"]["blend"] == "rank average"
    submit_runs(project, ["1", "3"])  # run 1 now reuses the predictions the blend computed
    assert MetaRidge.fits == fits + 2 * per_run


def test_blend_predictions_weighted_and_ranked():
    ids = pd.Index(["a", "b", "c", "d"])
    p1 = pd.DataFrame({"s": [0.1, 0.2, 0.3, 0.9]}, index=ids)
    p2 = pd.DataFrame({"s": [0.4, 0.3, 0.2, 0.1]}, index=ids)
    w = blend_predictions([p1, p2], [3.0, 1.0])
    assert np.allclose(w["s"], (3 * p1["s"] + p2["s"]) / 4)
    r = blend_predictions([p1, p2])
    # mean ranks: a 2.5, b 2.5, c 2.5, d 2.5 -> all tied, so every video gets the same score
    assert r["s"].nunique() == 1 and r["s"].between(0, 1).all()
    p3 = pd.DataFrame({"s": [0.0, 0.5, 0.6, 0.7]}, index=ids)
    r = blend_predictions([p1, p3])
    assert list(r["s"].rank()) == [1, 2, 3, 4] and np.isclose(r["s"].max(), ((p1 + p3) / 2)["s"].max())


def test_zip_holds_every_run_file_and_manifest(project):
    paths = submit_runs(project, [], all_runs=True, make_zip=True)
    z = project.config.root / "run_files" / "me25mem-demo-subtask2.zip"
    with zipfile.ZipFile(z) as f:
        names = sorted(f.namelist())
        assert names == sorted([p.name for p in paths] + [p.stem + ".manifest.json" for p in paths])
        assert f.read(paths[0].name) == paths[0].read_bytes()
    data = z.read_bytes()
    submit_runs(project, [], all_runs=True, make_zip=True)
    assert z.read_bytes() == data


def test_config_errors_are_one_sentence(project):
    with pytest.raises(MemoError, match="run '9' is not defined"):
        submit_runs(project, ["9"])
    with pytest.raises(MemoError, match="--run N or pass --all"):
        submit_runs(project, [])
    project.config.runs["1"].params = {"alpah": 1.0}
    with pytest.raises(MemoError, match="params.alpah is not a parameter of meta_ridge"):
        submit_runs(project, ["1"])
    project.config.runs["1"].params = {}
    project.config.runs["4"] = RunConfig(predictor="blend", blend=["4"])
    with pytest.raises(MemoError, match="blends itself"):
        submit_runs(project, ["4"])


def test_a_moved_project_keeps_its_run_fingerprints(tmp_path, videm):
    """The GBT's study folder is an absolute path; it must not make a moved project's runs look out of
    date."""
    runs = {"1": RunConfig(predictor="gbt", streams=["cues"], params={"n_trials": 0})}
    a, b = make_project(tmp_path / "a", videm, runs), make_project(tmp_path / "b", videm, runs)
    assert a.workdir != b.workdir and resolve_run(a, "1").fingerprint == resolve_run(b, "1").fingerprint
    a.config.gbt.components = 3  # a real change still shows
    assert resolve_run(a, "1").fingerprint != resolve_run(b, "1").fingerprint


def test_a_run_without_streams_reads_its_predictor_defaults(tmp_path, videm):
    """An empty `streams` failed with "feature stream 'metadata.brand' is unknown"; now it means the
    predictor's own list, less what the data lacks."""
    project = make_project(tmp_path, videm, {"1": RunConfig(predictor="gbt", params={"n_trials": 0})})
    plan = resolve_run(project, "1")
    assert (
        plan.streams[:3] == ["metadata.absolute", "metadata.brand", "cues"] and "ratings" not in plan.streams
    )
    # named by the run itself: an error that lists what there is
    with pytest.raises(MemoError, match="unknown feature stream 'ratings'"):
        resolve_run(
            make_project(
                tmp_path / "b", videm, {"1": RunConfig(predictor="gbt", streams=["cues", "ratings"])}
            ),
            "1",
        )


def test_streams_only_one_split_has_are_dropped(tmp_path, videm):
    project = make_project(
        tmp_path,
        videm,
        {
            "1": RunConfig(
                predictor="meta_ridge", streams=["metadata", "e5.transcript", "e5.tags", "organiser"]
            )
        },
    )
    # take the transcripts and the organiser features away from the dev split, as in VIDEM's public release
    dev = project.dataset.splits["dev"]
    dev.table["transcript"] = ""
    dev.feature_files = {}
    plan = resolve_run(project, "1")
    assert plan.streams[:2] == ["metadata.absolute", "metadata.brand"] and not any(
        s in plan.streams for s in ("e5.transcript", "organiser.ViT", "organiser.R3D")
    )
    assert "only the test split has it" in plan.dropped["e5.transcript"]
    assert "only the test split has it" in plan.dropped["organiser.ViT"]


# ----------------------------------------------------------------------------- validation: one line per
# defect


@pytest.fixture(scope="module")
def valid(tmp_path_factory, videm) -> tuple[Project, Path, list[str]]:
    project = make_project(tmp_path_factory.mktemp("valid"), videm)
    (path,) = submit_runs(project, ["1"])
    return project, path, path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "defect, expected",
    [
        ("missing id", "id {id2} of the test split is missing"),
        ("duplicate id", "line 4: id {id2} appears again (first on line 3)"),
        ("extra id", "line 4: id zzzzzzzzzzz is not a video of the test split"),
        ("nan", "line 3 (id {id2}): memorability_score is NaN"),
        ("inf", "line 3 (id {id2}): brand_memorability is infinite"),
        ("out of range", "line 3 (id {id2}): memorability_score = 1.5 is outside [0, 1]"),
        ("negative", "line 3 (id {id2}): brand_memorability = -0.1 is outside [0, 1]"),
        ("not a number", "line 3 (id {id2}): memorability_score = 'high' is not a number"),
        (
            "wrong columns",
            "line 1: wrong columns: the file has 2 column(s) (id, memorability_score), expected 3",
        ),
        ("wrong header", "line 1: wrong header: column 3 is 'brand', expected 'brand_memorability'"),
        ("no header", "line 1: the header is missing"),
        ("wrong name", "me25mem-other-subtask2-run1.csv: the file name does not match"),
        ("ragged row", "line 3 (id {id2}): 2 field(s), expected 3"),
    ],
)
def test_validate_reports_each_defect_on_one_line(valid, tmp_path, defect, expected):
    project, path, lines = valid
    lines = list(lines)  # the fixture is shared by every case
    id2 = lines[2].split(",")[0]
    name = path.name
    if defect == "missing id":
        lines = lines[:2] + lines[3:]
    elif defect == "duplicate id":
        lines = lines[:3] + [lines[2]] + lines[3:]
    elif defect == "extra id":
        lines = lines[:3] + ["zzzzzzzzzzz,0.5,0.5"] + lines[3:]
    elif defect in ("nan", "out of range", "not a number"):
        value = {"nan": "nan", "out of range": "1.5", "not a number": "high"}[defect]
        lines[2] = f"{id2},{value},{lines[2].split(',')[2]}"
    elif defect in ("inf", "negative"):
        lines[2] = f"{id2},{lines[2].split(',')[1]},{'inf' if defect == 'inf' else '-0.1'}"
    elif defect == "wrong columns":
        lines = [",".join(line.split(",")[:2]) for line in lines]
    elif defect == "wrong header":
        lines[0] = "id,memorability_score,brand"
    elif defect == "no header":
        lines = lines[1:]
    elif defect == "wrong name":
        name = "me25mem-other-subtask2-run1.csv"
    elif defect == "ragged row":
        lines[2] = ",".join(lines[2].split(",")[:2])
    bad = _write(tmp_path / name, lines)
    defects = validate_run_file(bad, project)
    assert defects == [d for d in defects if d.startswith(expected.format(id2=id2))], defects
    assert len(defects) == 1, defects


def test_submit_refuses_to_publish_an_invalid_file(project, monkeypatch):
    import memo.submission.submit as submit

    monkeypatch.setattr(
        submit,
        "render_run_file",
        lambda preds, project, targets: "id,memorability_score,brand_memorability\nx,2,0\n",
    )
    with pytest.raises(MemoError, match="fails validation"):
        submit_runs(project, ["1"])
    assert not (project.config.root / "run_files" / "me25mem-demo-subtask2-run1.csv").exists()


# ----------------------------------------------------------------------------- end to end, through the CLI


def test_cli_init_then_submit_run_1(tmp_path, videm, monkeypatch):
    from memo.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--data", str(videm), "--offline", "--team", "demo"])
    assert r.exit_code == 0, r.output
    # a small tuning budget and one text field keep the real GBT path fast enough for a test
    fast = [
        "--set",
        "gbt.n_trials=0",
        "--set",
        'gbt.members=["lightgbm"]',
        "--set",
        'features.text_fields=["title"]',
        "--set",
        "evaluate.bootstrap=50",
        # run 1 is a search: one split of its nested CV is enough to test the command's path
        "--set",
        "evaluate.repeats=1",
    ]
    r = runner.invoke(app, ["submit", "--run", "1", *fast])
    assert r.exit_code == 0, (r.output, r.exception)
    path = tmp_path / "run_files" / "me25mem-demo-subtask2-run1.csv"
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 0 and "is a valid run file" in r.output, r.output
    assert len(pd.read_csv(path)) == len(Project.open().dataset.splits["test"].ids)
    before = path.stat().st_mtime_ns
    r = runner.invoke(app, ["submit", "--run", "1", *fast])
    assert r.exit_code == 0 and "run 1 is up to date" in r.output, r.output
    assert path.stat().st_mtime_ns == before
    path.write_text(path.read_text().replace("\n", "\nzzz,0.5,0.5\n", 1))
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 1 and "id zzz is not a video of the test split" in r.output


def test_memento_layout_run_file(tmp_path, said):
    data = write_sample_mediaeval2021(tmp_path / "m10k", n_train=30, n_dev=0, n_test=12)
    # a real baseline that reads the captions
    project = make_project(tmp_path, data, {"1": RunConfig(predictor="text_ridge")})
    (path,) = submit_runs(project, ["1"])
    assert validate_run_file(path, project) == []
    df = pd.read_csv(path, dtype={"video_id": str})
    assert list(df.columns) == ["video_id", "scores_normalized_short_term"]
    assert len(df) == 12
    # no brands: the score to expect is on unseen videos ("plain (the data has no brands)" once read as
    # brands)
    assert any("expected Spearman on unseen videos (5-fold plain" in m for m in said())


def test_a_chosen_blend_picks_per_target_on_the_other_folds(project, monkeypatch):
    """choose = true: each fold's pick is made without its own labels; an oracle run is picked everywhere."""
    import dataclasses

    import memo.submission.runs as runs
    from memo.errors import ConfigError
    from memo.splits import grouped_kfold
    from memo.store import stable_hash

    plain = resolve_run(project, "3").fingerprint
    # a key added later stays out of the fingerprint at its default: existing runs keep theirs
    before = {
        k: v for k, v in dataclasses.asdict(project.config.runs["3"]).items() if k not in LATER_RUN_KEYS
    } | {"description": ""}
    assert resolve_run(project, "3").inputs["run"] == stable_hash(before, 16)
    project.config.runs["3"] = RunConfig(predictor="blend", blend=["1", "2"], choose=True)
    plan = resolve_run(project, "3")
    assert plan.describe()["blend"] == "chosen on grouped CV" and plan.fingerprint != plain
    r1, r2 = (runs.compute_run(project, c) for c in plan.components)
    targets = plan.targets
    labels = project.dataset.labelled().table.loc[r1.cv.xs(0, level="repeat").index, targets].astype(float)
    reps = repeats_of(r1.cv)
    assert len(reps) > 1

    # run 2 made an oracle (its out-of-fold predictions are the labels): every fold picks it from the other
    # folds
    oracle_cv = pd.concat(
        [labels.assign(repeat=i).set_index("repeat", append=True).reorder_levels([1, 0]) for i in reps]
    )
    oracle = dataclasses.replace(r2, cv=oracle_cv.loc[r2.cv.index])
    out = compute_blend(project, plan, lambda p, test: {"1": r1, "2": oracle}[p.name])
    assert out.chosen == {t: "run 2" for t in targets}
    pd.testing.assert_frame_equal(out.test, r2.test[targets], check_names=False)
    assert all(out.cv_scores[t]["expected"] == pytest.approx(1.0) for t in targets)

    # two real runs: on each fold, each target's values are one candidate's values there
    both = compute_blend(project, plan, lambda p, test: {"1": r1, "2": r2}[p.name])
    groups = project.dataset.labelled().table.loc[labels.index, "group"].astype(str).to_numpy()
    for i in reps:
        cands = blend_candidates(plan, [r.cv.xs(i, level="repeat")[targets] for r in (r1, r2)])
        got = both.cv.xs(i, level="repeat")
        for _, held in grouped_kfold(groups, n_splits=both.folds, seed=project.seed + i):
            for t in targets:
                assert any(np.allclose(got[t].iloc[held], c[t].iloc[held]) for c in cands.values())
    assert set(both.chosen) == set(targets) and set(both.chosen.values()) <= {
        "rank average",
        "run 1",
        "run 2",
    }
    import memo.submission.submit as submit

    monkeypatch.setattr(submit, "compute_run", lambda project, p, device="cpu", test=True: both)
    (path,) = submit_runs(project, ["3"])
    assert json.loads(path.with_name(path.stem + ".manifest.json").read_text())["cv"]["chosen"] == both.chosen

    project.config.runs["3"] = RunConfig(predictor="blend", blend=["1", "2"], choose=True, weights=[1.0, 1.0])
    with pytest.raises(ConfigError, match="both weights and choose"):
        resolve_run(project, "3")


def test_a_chosen_blend_fits_in_full_only_the_runs_it_takes(project, said):
    """CV first: run 3 picks run 1 for every target, so run 2 (on a CPU, an hour of Gemma-3) is never fitted
    on all labelled videos; `memo evaluate --run` cross-validates without the full fit, which submit adds
    later."""
    import memo.submission.runs as runs
    from memo.evaluation import evaluate_run

    project.config.runs["1"] = RunConfig(predictor="meta_ridge", streams=["metadata"], params={"alpha": 1.0})
    # the sample's planted signal is not in the duration
    project.config.runs["2"] = RunConfig(predictor="duration")
    project.config.runs["3"] = RunConfig(predictor="blend", blend=["1", "2"], choose=True)

    def full_fits() -> list[str]:  # what a run says before its fit on all labelled videos
        return [line.split(":")[0] for line in said() if ": training " in line]

    evaluate_run(project, "2", baselines=[])
    assert (
        full_fits() == []
        and not (run_folder(project, resolve_run(project, "2")) / "test_predictions.csv").exists()
    )
    # what `memo evaluate --run 1` shows before any full fit
    _, before_fit = evaluate_run(project, "1", baselines=[])
    assert (
        isinstance(before_fit["streams"], dict)
        and before_fit["streams"]
        and all(w > 0 for w in before_fit["streams"].values())
    )
    result = runs.compute_run(project, resolve_run(project, "3"))
    # the duration carries none of the sample's signal
    assert set(result.chosen.values()) == {"run 1"}, result.chosen
    assert full_fits() == ["run 1"] and any(
        line.endswith("no target takes run 2, so its fit on all dev videos is not needed") for line in said()
    )
    one = runs.compute_run(project, resolve_run(project, "1"))
    pd.testing.assert_frame_equal(result.test, one.test[result.plan.targets], check_names=False)
    assert one.consumed == before_fit["streams"]  # the CV's folds read what the full fit read

    # a blend of the chosen blend: run 3's choice is made once, its test predictions come from that choice
    project.config.runs["4"] = RunConfig(predictor="blend", blend=["3", "1"])
    n_said = len(said())
    nested = runs.compute_run(project, resolve_run(project, "4"))
    choices = [line for line in said()[n_said:] if line.startswith("run 3: ") and " takes the " in line]
    assert len(choices) == len(result.plan.targets), choices
    pd.testing.assert_frame_equal(
        nested.test, blend_predictions([result.test, one.test[result.plan.targets]]), check_names=False
    )


def test_under_a_launch_only_the_main_process_writes_files(project, monkeypatch):
    """Every process of `accelerate launch` computes (DDP needs them all); run files and models are written
    once."""
    from memo.submission.models import train_model

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    (path,) = submit_runs(project, ["1"])
    assert not path.exists() and any((project.workdir / "runs" / "1").iterdir())  # computed, not published
    folder = train_model(project, "meta_ridge")
    assert not folder.exists()
    monkeypatch.setenv("RANK", "0")
    (path,) = submit_runs(project, ["1"])
    assert path.exists() and validate_run_file(path, project) == []
    assert (train_model(project, "meta_ridge") / "meta.json").exists()


def test_a_killed_run_cv_resumes_at_the_next_fold_and_blends_on_shared_repeats(project, monkeypatch, said):
    """A run's CV keeps each fold's predictions: killed mid-way, the rerun fits only the folds left and gets
    the same predictions; a run with `repeats = 1` blends with a repeated run on the split they share."""
    import dataclasses

    import memo.submission.runs as runs
    from tests.projects import Killed

    fits: list[int] = []
    killed: list[bool] = []
    real = MetaRidge.fit

    def counted(self, X, y):
        fits.append(len(X))
        # two folds done (the CV comes before the full fit): killed in the third
        if len(fits) == 3 and not killed:
            killed.append(True)
            raise Killed
        return real(self, X, y)

    monkeypatch.setattr(MetaRidge, "fit", counted)
    plan = resolve_run(project, "1")
    with pytest.raises(Killed):
        runs.compute_run(project, plan)
    parts = sorted(p.name for p in (run_folder(project, plan) / "cv_folds" / "repeat0").iterdir())
    assert parts == ["fold0.json", "fold1.json"]
    fits.clear()
    resumed = runs.compute_run(project, plan)
    repeats = project.config.evaluate.repeats
    assert len(fits) == repeats * resumed.folds - 2 + 1  # no finished fold again; then the full fit
    assert (
        f"run 1 cv 1/{repeats}: 2 of {resumed.folds} folds kept from an earlier run; fitting the other "
        f"{resumed.folds - 2}" in said()
    )
    monkeypatch.setattr(MetaRidge, "fit", real)
    # no cache: every fold refitted
    fresh = runs.compute_run(project, dataclasses.replace(plan, fingerprint="fresh"))
    pd.testing.assert_frame_equal(resumed.cv, fresh.cv)
    # a damaged fold file, or one holding other videos, is refitted, not trusted
    folder = run_folder(project, plan) / "cv_folds" / "repeat0"
    (folder / "fold0.json").write_text("{not json")
    saved = json.loads((folder / "fold1.json").read_text())
    (folder / "fold1.json").write_text(json.dumps({**saved, "ids": saved["ids"][::-1]}))
    from memo.crossval import _saved_fold

    assert (
        _saved_fold(folder, 0, saved["ids"], saved["columns"]) is None
        and _saved_fold(folder, 1, saved["ids"], saved["columns"]) is None
    )

    # run 2 cross-validated once: blend 3 is scored on repeat 0, the split both have
    assert repeats > 1
    project.config.runs["2"] = RunConfig(
        predictor="meta_ridge", streams=["metadata"], params={"alpha": 1000.0}, repeats=1
    )
    r2 = runs.compute_run(project, resolve_run(project, "2"))
    assert repeats_of(r2.cv) == [0]
    blend = runs.compute_run(project, resolve_run(project, "3"))
    assert repeats_of(blend.cv) == [0] and blend.cv_scores[blend.plan.targets[0]]["repeats"] == 1

    # [evaluate] repeats is part of a run's fingerprint, unless the run sets its own: fewer repeats is a new
    # CV, not the old one reused
    before = {n: resolve_run(project, n).fingerprint for n in ("1", "2")}
    project.config.evaluate.repeats = 1
    r1 = runs.compute_run(project, resolve_run(project, "1"))
    assert resolve_run(project, "1").fingerprint != before["1"] and repeats_of(r1.cv) == [0]
    assert resolve_run(project, "2").fingerprint == before["2"]


def test_an_llm_run_on_the_cpu_says_how_long_before_its_first_fit(project, said):
    """A real Gemma-3 fine-tuned on a CPU takes hours: the run says so, with its number of fits, before
    starting."""
    import dataclasses

    import memo.submission.runs as runs

    project.config.runs["2"] = RunConfig(predictor="llm", streams=["metadata.absolute"], repeats=1)
    plan = resolve_run(project, "2", device="cpu")
    assert plan.models["llm_backbone"] == "gemma3-270m"  # what `memo init --offline` writes
    runs._say_if_slow(
        project, dataclasses.replace(plan, models={**plan.models, "llm_backbone": "tiny:gemma3"}), 24, "cpu"
    )
    assert said() == []  # a tiny test model: nothing to warn about
    runs._say_if_slow(project, plan, 24, "cpu")
    (line,) = said()
    assert (
        line.startswith(
            "run 2 fine-tunes gemma3-270m on the CPU: 5 CV fits of about 19 videos then the full fit on 24."
        )
        and "resumes" in line
    )


def test_touching_the_data_keeps_every_run_and_its_cached_work(project, videm):
    """A re-copied or touched dataset (new modification times, same bytes) keeps run fingerprints, so the
    runs' cached CV and fits are reused; the hashes are cached in the work folder, not recomputed per run."""
    import os
    import time

    before = {n: resolve_run(project, n).fingerprint for n in project.config.runs}
    assert (project.workdir / "data_hashes.json").is_file()
    later = time.time_ns() + 10**12
    for p in videm.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(later, later))
    assert {n: resolve_run(project, n).fingerprint for n in project.config.runs} == before


def test_a_search_run_chooses_inside_every_outer_fold_and_the_manifest_records_each_pick(
    tmp_path, videm, monkeypatch
):
    """predictor = "search": each outer fold's pick is made on its training brands (the fold cache keeps it),
    the full fit chooses again on every labelled video, the manifest lists both, and a second evaluation fits
    nothing."""
    cands = [
        {"predictor": "ridge", "streams": ["cues"]},
        {"predictor": "ridge", "streams": ["e5.title"]},
        {"predictor": "ridge", "streams": ["ratings"]},
    ]
    project = make_project(
        tmp_path, videm, {"1": RunConfig(predictor="search", candidates=cands, params={"inner_folds": 3})}
    )
    project.config.evaluate.repeats = 2
    plan = resolve_run(project, "1")
    assert [c["name"] for c in plan.candidates] == ["ridge(cues)", "ridge(e5.title)"]
    # the run has no aspects
    assert plan.dropped["candidate ridge(ratings)"] == "reads no stream both splits have"
    (path,) = submit_runs(project, ["1"])
    m = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    folds = m["cv"]["search"]["folds"]
    assert len(folds) == 2 and all(len(r) == 5 for r in folds)  # [repeat][fold]
    assert all(
        set(f) == {"memorability_score", "brand_memorability"} and f["memorability_score"]["pick"]
        for r in folds
        for f in r
    )
    final = m["cv"]["search"]["final"]
    assert set(final["memorability_score"]["inner"]) >= {"ridge(cues)", "ridge(e5.title)"}
    assert [c["name"] for c in m["resolved"]["params"]["candidates"]] == ["ridge(cues)", "ridge(e5.title)"]
    from memo.evaluation import evaluate_run

    ridge, fits = PREDICTORS.get("ridge"), []
    monkeypatch.setattr(ridge, "fit", lambda self, X, y: fits.append(1))
    table, _ = evaluate_run(Project(project.config), "1", baselines=[])
    assert fits == [] and table["expected"].notna().all()  # all cached


def test_provenance_records_no_other_repositorys_commit(tmp_path, monkeypatch):
    """An installed memo lives in site-packages, which may sit inside another git repository (a virtual
    environment in a project folder): the manifest then says "unknown", not that repository's commit."""
    import subprocess

    import memo
    from memo.submission.submit import git_commit

    repo = tmp_path / "someone_elses_project"
    package = repo / ".venv" / "lib" / "python3.11" / "site-packages" / "memo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    git = ["git", "-C", str(repo), "-c", "user.email=a@b.c", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "theirs"], check=True)
    monkeypatch.setattr(memo, "__file__", str(package / "__init__.py"))
    assert git_commit() == "unknown"
    monkeypatch.undo()
    source = Path(memo.__file__).resolve().parents[1]
    if (source / ".git").exists():  # memo's own checkout: its commit
        assert len(git_commit().removesuffix("-dirty")) == 40


def test_a_damaged_model_meta_json_is_no_traceback(project):
    """meta.json beside a trained model is read as untrusted: damaged, the model still loads (its plan
    describes it), and the lookup for other settings still says what to run."""
    from memo.submission.models import predict_model, train_model, trained_model

    folder = train_model(project, "meta_ridge")
    (folder / "meta.json").write_text("{not json")
    found = trained_model(project, "meta_ridge")
    assert found.meta["predictor"] == "meta_ridge" and found.meta["run"] == "model-meta_ridge"
    assert len(predict_model(project, "meta_ridge")) == len(project.dataset.splits["test"].ids)
    project.config.project.seed += 1  # other settings: another fingerprint, no model for them
    with pytest.raises(MemoError, match=r"no meta_ridge trained for the current memo.toml; run `memo train"):
        predict_model(project, "meta_ridge")
    project.config.project.seed -= 1
