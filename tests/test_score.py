"""`memo score` and `memo export`: new ads scored by the model a run trained, with reasons, from the project
or from an exported folder on a machine without the dataset; every refusal is one sentence."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from memo.errors import MemoError

# run 1 as `memo init` makes it on brand data (a search, the bagged cues ridge first), small enough for a test
CANDIDATES = [
    {"predictor": "ridge", "streams": ["cues"], "params": {"bag_brands": 5}, "name": "ridge(cues), bagged"},
    {"predictor": "ridge", "streams": ["cues", "e5"], "name": "ridge(cues,e5)"},
]
ADS = pd.DataFrame(
    {
        "id": ["spot1", "talk2", "pod3"],
        "title": ["Evergreen Bank | Save a little every day", "Markets outlook 2025: a webinar", "Ep. 12"],
        "description": ["A short film about saving.", "Our strategist on rates and inflation.", ""],
        "tags": ["bank,saving", "", ""],
        "transcript": ["", "Welcome to the webinar.", "Welcome to the podcast episode."],
    }
)


@pytest.fixture(scope="module")
def project(tmp_path_factory, _offline_single_thread):
    """Sample dataset, offline project with tiny:e5, run 1 (a small search over cues and E5 ridges)
    submitted."""
    from memo.submission import submit_runs
    from tests.projects import sample_project

    settings = {
        "models.e5": "tiny:e5",
        "evaluate.folds": 3,
        "evaluate.repeats": 1,
        "evaluate.bootstrap": 50,
        "runs.1.candidates": CANDIDATES,
        "runs.1.params.inner_folds": 2,
    }
    p = sample_project(
        tmp_path_factory.mktemp("score"),
        settings,
        seed=0,
        n_brands_dev=6,
        videos_per_brand=4,
        n_brands_test=2,
    )
    submit_runs(p, runs=["1"], device="cpu")
    return p


@pytest.fixture
def ads_csv(tmp_path):
    path = tmp_path / "ads.csv"
    ADS.to_csv(path, index=False)
    return path


def cli(project, monkeypatch, *args):
    from memo.cli import app

    monkeypatch.chdir(project.config.root)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner().invoke(app, list(map(str, args)))


def test_cli_scores_are_the_models_predictions_with_percentiles(project, ads_csv, tmp_path, monkeypatch):
    from memo.submission.ads import ads_features, read_ads
    from memo.submission.scoring import run_model

    out, js = tmp_path / "scores.csv", tmp_path / "scores.json"
    res = cli(
        project, monkeypatch, "score", "--run", "1", ads_csv, "--out", out, "--json", js, "--device", "cpu"
    )
    assert res.exit_code == 0, res.output
    assert "spot1" in res.output and "percentiles: among the run's cross-validated predictions" in res.output
    got = json.loads(js.read_text())
    assert [a["id"] for a in got["ads"]] == ["spot1", "talk2", "pod3"]
    # the model's own predictions on the same features, each ad alone
    model = run_model(project, "1")
    X = ads_features(model.config, model.base, read_ads(ads_csv), model.streams, "cpu", tmp_path / "fresh")
    for k, ad in enumerate(got["ads"]):
        pred = model.est.predict(X.take([k]))
        assert ad["scores"] == {t: float(pred[t].iloc[0]) for t in project.targets}
        assert all(0 <= v <= 100 for v in ad["percentiles"].values())
    flat = pd.read_csv(out, index_col="id")
    assert list(flat.columns) == [c for t in project.targets for c in (t, f"{t}_percentile")]
    # the ads' features live in a store of their own, keyed by their content, never in the dataset's
    assert list((project.workdir / "ads").glob("ads-*/features/e5"))


def test_ridge_reasons_add_up_to_the_score(project, ads_csv, tmp_path, monkeypatch):
    from memo.features.cues import CUE_WORDS, cue_frame
    from memo.predictors import explains
    from memo.submission.ads import ads_features, read_ads
    from memo.submission.scoring import run_model, score_ads

    model = run_model(project, "1")
    assert model.predictor == "search" and explains(model.est)
    X = ads_features(model.config, model.base, read_ads(ads_csv), model.streams, "cpu", tmp_path / "x")
    E = model.est.explain(X)
    assert E.attrs["exact"]
    for k, i in enumerate(X.ids):
        pred = model.est.predict(X.take([k]))
        for t in project.targets:
            total = E.loc[(E["id"] == i) & (E["target"] == t), "contribution"].sum()
            # the contributions add up to the score before it is clipped to [0, 1]
            assert np.isclose(np.clip(total, 0, 1), pred[t].iloc[0], rtol=0, atol=1e-12), (i, t)
    df = score_ads(project, "1", read_ads(ads_csv), explain=True, device="cpu")
    for i, per in df["reasons"].items():
        assert set(per) == set(project.targets)
        for t, r in per.items():
            assert len(r["top"]) == 3
            parts = r["base"] + sum(x["contribution"] for x in r["top"]) + r["rest"]
            assert np.isclose(np.clip(parts, 0, 1), df.at[i, t], rtol=0, atol=1e-12)
    words = {x["words"] for per in df["reasons"] for r in per.values() for x in r["top"]}
    assert words & set(CUE_WORDS.values())  # cues are named in words
    assert set(cue_frame(ADS.set_index("id")).columns) <= set(CUE_WORDS)  # every cue has its wording
    res = cli(project, monkeypatch, "score", "--run", "1", ads_csv, "--explain", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "everything else" in res.output and "base" in res.output


def test_a_model_without_explain_says_so_in_one_line(project, ads_csv):
    from memo.submission.ads import read_ads
    from memo.submission.scoring import run_model, score_with

    class Plain:  # predicts, cannot explain
        def __init__(self, est):
            self.est, self.streams = est, est.streams

        def predict(self, X):
            return self.est.predict(X)

    model = run_model(project, "1")
    model.est = Plain(model.est)
    df = score_with(model, read_ads(ads_csv), explain=True, device="cpu")
    assert "gives no reasons" in df.attrs["explain_note"] and all(r == {} for r in df["reasons"])


def test_gbt_reasons_are_the_members_own_contributions(project):
    from memo.baselines.gbt import GBTEnsemble
    from memo.baselines.members import member_contributions, member_matrix
    from memo.config import Config
    from memo.features import load_features

    X = load_features(project, "dev", ["cues", "metadata.absolute"])
    y = project.dataset.labelled().table.loc[X.ids, project.targets].astype(float)
    small = {m: {"n_estimators": 20} for m in ("xgboost", "lightgbm")} | {"catboost": {"iterations": 20}}
    for ensemble in ("stack", "best"):
        est = GBTEnsemble.from_config(
            Config(),
            streams=["cues", "metadata.absolute"],
            members=["xgboost", "lightgbm", "catboost", "ridge"],
            n_trials=0,
            inner_folds=2,
            ensemble=ensemble,
            fixed=small,
        ).fit(X, y)
        mats = est._matrices(X)
        names = {"reduced": est.feature_names_, "full": est.full_builder_.feature_names_}
        for members in est.models_.values():  # each library's own contributions add up to its prediction
            for m, model in members.items():
                F = mats[member_matrix(m)]
                C, base, cols = member_contributions(m, model, F, names[member_matrix(m)])
                assert C.shape[1] == len(cols) and np.allclose(
                    C.sum(axis=1) + base, model.predict(F), atol=1e-5
                )
        E, pred = est.explain(X), est.predict(X)
        assert E.attrs["exact"]
        total = E.groupby(["id", "target"])["contribution"].sum().unstack()
        inside = (pred > 0) & (pred < 1)  # the sum is the score before clipping
        assert np.allclose(
            total.loc[pred.index, pred.columns][inside], pred[inside], atol=1e-5, equal_nan=True
        )


def test_export_scores_identically_from_a_fresh_folder_without_the_project(
    project, ads_csv, tmp_path, monkeypatch
):
    from memo.submission.ads import read_ads
    from memo.submission.scoring import score_ads

    here = score_ads(project, "1", read_ads(ads_csv), explain=True, device="cpu")
    res = cli(project, monkeypatch, "export", "--run", "1", tmp_path / "export")
    assert res.exit_code == 0, res.output
    card = (tmp_path / "export" / "MODEL_CARD.md").read_text()
    assert "Score to expect" in card and "95% interval" in card and "Licences" in card
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "export", elsewhere / "run1")
    shutil.copy(ads_csv, elsewhere / "ads.csv")
    root = project.config.root
    aside = root.with_name(root.name + ".gone")
    root.rename(aside)  # no dataset, no memo.toml, no work folder: only the exported folder
    try:
        from memo.cli import app

        monkeypatch.chdir(elsewhere)
        out = elsewhere / "scores.json"
        args = ["score", "--model-dir", "run1", "ads.csv", "--explain", "--json", str(out), "--device", "cpu"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        got = json.loads(out.read_text())["ads"]
    finally:
        aside.rename(root)
    assert [a["id"] for a in got] == list(here.index)
    for a in got:
        for t in project.targets:
            assert a["scores"][t] == here.at[a["id"], t]
            assert a["percentiles"][t] == here.at[a["id"], f"{t}_percentile"]
        assert a["reasons"] == json.loads(json.dumps(here.at[a["id"], "reasons"]))
    assert (elsewhere / "run1" / ".cache").is_dir()


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            {"id": ["a"], "title": ["x"], "views": ["3"]},
            "unknown column(s) views; the accepted columns are id, ",
        ),
        (
            {"id": ["a", "b"], "title": ["x", " "], "description": ["y", ""]},
            "ad b (row 2 of ads.csv) has no text",
        ),
        (
            {"title": ["x"], "video_path": ["missing.mp4"]},
            "the video_path of ad 1 (row 1 of ads.csv), missing.mp4",
        ),
        ({"id": ["../up"], "title": ["x"]}, "is not a plain name"),
        ({"id": ["a", "a"], "title": ["x", "y"]}, "more than one ad"),
    ],
)
def test_bad_ads_are_one_sentence(tmp_path, rows, message):
    from memo.submission.ads import read_ads

    path = tmp_path / "ads.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(MemoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_ads(path)


def test_bad_model_folders_and_untrained_runs_are_one_sentence(project, ads_csv, tmp_path, monkeypatch):
    from memo.submission.ads import read_ads
    from memo.submission.export import export_run
    from memo.submission.scoring import score_ads, score_ads_from_folder

    ads = read_ads(ads_csv)
    with pytest.raises(MemoError, match="not a model folder memo exported"):
        score_ads_from_folder(tmp_path, ads)
    folder = export_run(project, "1", tmp_path / "e")
    info = json.loads((folder / "scoring.json").read_text())
    (folder / "scoring.json").write_text(json.dumps({**info, "memo": "0.0.1"}))
    with pytest.raises(MemoError, match=r"exported by memo 0.0.1 and this is memo .*export the run again"):
        score_ads_from_folder(folder, ads)
    (folder / "scoring.json").write_text("{not json")
    with pytest.raises(MemoError, match="damaged or not from memo"):
        score_ads_from_folder(folder, ads)
    (folder / "scoring.json").write_text(json.dumps(info))
    (folder / "base.npz").write_bytes(b"nonsense")
    with pytest.raises(MemoError, match="damaged model folder"):
        score_ads_from_folder(folder, ads)
    other = export_run(project, "1", tmp_path / "m")
    (other / "model" / "meta.json").unlink()
    with pytest.raises(MemoError, match="damaged model folder .*meta.json"):
        score_ads_from_folder(other, ads)
    shutil.rmtree(other / "model")
    with pytest.raises(MemoError, match="the model in .* cannot be loaded"):
        score_ads_from_folder(other, ads)
    with pytest.raises(MemoError, match="not an empty folder"):
        export_run(project, "1", folder)
    with pytest.raises(MemoError, match=r"run `memo submit --run 4` first"):
        score_ads(project, "4", ads)
    res = cli(project, monkeypatch, "score", "--run", "4", ads_csv)
    assert res.exit_code != 0 and "memo submit --run 4" in str(res.exception)


def test_an_ad_gets_the_features_memo_features_gives_the_same_video(project, tmp_path):
    """The ads' extractors are the run's, with its settings: a dataset video as an ad (its texts, its file)
    gets the E5 vectors and video statistics the dataset's store holds for it."""
    from memo.data import TEXT_FIELDS
    from memo.features import load_features, run_features
    from memo.submission.ads import ads_features, validate_ads
    from memo.submission.scoring import run_model

    run_features(project, extractors=["stats", "e5"], splits=["dev"])
    streams = ["e5.title", "e5.description", "stats"]
    stored = load_features(project, "dev", streams)
    vid = next(i for i, v in stored.table["video_path"].items() if isinstance(v, str))
    row = stored.table.loc[vid]
    ad = {c: [row[c] if isinstance(row.get(c), str) else ""] for c in TEXT_FIELDS if c in stored.table}
    ads = validate_ads(pd.DataFrame({"id": ["same"], **ad, "video_path": [row["video_path"]]}))
    model = run_model(project, "1")
    base = model.base
    base.streams["stats"] = stored.take([0]).streams[
        "stats"
    ]  # a run that reads stats has the stream in its base
    X = ads_features(model.config, base, ads, streams, "cpu", tmp_path / "ads")
    k = stored.ids.index(vid)
    for s in streams:
        assert X.streams[s].mask[0].all() and np.allclose(
            X.streams[s].values[0], stored.streams[s].values[k], atol=1e-5
        )
