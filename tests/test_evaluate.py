"""memo.evaluation.compare: the out-of-fold driver, leakage guards, `memo evaluate`, `memo train` and `memo
predict` on the synthetic sample dataset (organiser features + metadata + text, so no model is needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from memo.crossval import cross_val_predict
from memo.errors import MemoError
from memo.evaluation.compare import evaluate_models, to_markdown
from memo.predictors import Predictor
from memo.splits import grouped_kfold
from memo.submission.models import predict_model
from tests.test_gbt import make_features

TINY_GBT = [
    "--set",
    "gbt.n_trials=2",
    "--set",
    "gbt.components=4",
    "--set",
    "gbt.inner_folds=2",
    "--set",
    "evaluate.bootstrap=50",
    "--set",
    "gbt.fixed={xgboost = {n_estimators = 15}, lightgbm = {n_estimators = 15}, catboost = {iterations = 15}}",
]


class Spy(Predictor):
    """Remembers what it was fitted on; predicts the training mean plus a per-video signal."""

    seen: list[tuple[list[str], list[str]]] = []

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, y):
        self.train_ids_ = list(X.ids)
        self.mean_ = y.mean()
        return self

    def predict(self, X):
        Spy.seen.append((self.train_ids_, list(X.ids)))
        sig = X.streams["e5.title"].values[:, 0, 3]
        return pd.DataFrame(
            {t: np.clip(m + 0.05 * sig, 0, 1) for t, m in self.mean_.items()},
            index=pd.Index(X.ids, name="id"),
        )


def test_cross_val_predict_never_lets_a_fold_see_its_held_out_rows():
    X, y = make_features(n=40, brands=8)
    folds = grouped_kfold(X.groups, n_splits=4, seed=0)
    Spy.seen = []
    oof = cross_val_predict(Spy, X, y, folds)
    assert list(oof.index) == X.ids and oof.notna().all().all()
    assert len(Spy.seen) == 4
    for train_ids, test_ids in Spy.seen:
        assert not set(train_ids) & set(test_ids)
        brands = dict(zip(X.ids, X.groups))
        assert not {brands[i] for i in train_ids} & {brands[i] for i in test_ids}
    # a fold that puts one brand on both sides is refused before anything is fitted
    leaky = [(np.arange(0, 30), np.arange(30, 40))]  # brands cycle every 8 videos: shared
    with pytest.raises(MemoError, match="both sides"):
        cross_val_predict(Spy, X, y, leaky)


def test_to_markdown():
    md = to_markdown(pd.DataFrame({"model": ["gbt"], "spearman": [0.31234], "ci": [float("nan")]}))
    assert md.splitlines() == ["| model | spearman | ci |", "|---|---|---|", "| gbt | 0.312 |  |"]


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    """The synthetic VIDEM-layout dataset with its organiser features imported into the store."""
    from memo.features import run_features
    from tests.projects import sample_project

    root = tmp_path_factory.mktemp("sample")
    run_features(sample_project(root, seed=0), extractors=["organiser"])
    return root


def _cli(root, *args):
    from typer.testing import CliRunner

    from memo.cli import app

    result = CliRunner().invoke(app, [*args, "--config", str(root / "memo.toml")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_memo_evaluate_on_the_sample_dataset(sample_project):
    out = _cli(
        sample_project,
        "evaluate",
        "--model",
        "gbt",
        "--folds",
        "3",
        "--repeats",
        "1",
        "--set",
        'gbt.streams=["metadata", "organiser", "vit"]',
        *TINY_GBT,
    )
    ev = sample_project / ".memo" / "eval"
    assert "gbt" in out and "text_ridge" in out and "duration" in out
    results = pd.read_csv(ev / "results.csv")
    assert set(results["model"]) == {"gbt", "duration", "metadata_gbt", "text_ridge"}
    assert set(results["fold"].astype(str)) == {"0", "1", "2", "pooled"}
    assert {"spearman", "spearman_lo", "spearman_hi", "pearson", "kendall", "mse", "n"} <= set(
        results.columns
    )
    pooled = results[results["fold"] == "pooled"]
    assert (pooled["spearman_lo"] <= pooled["spearman"]).all() and (
        pooled["spearman"] <= pooled["spearman_hi"]
    ).all()
    # every model is scored on the same folds, and no brand is on both sides of any of them
    oof = pd.read_csv(ev / "oof_predictions.csv", dtype={"id": str, "group": str})
    assert list(oof.columns) == ["id", "group", "fold", "model", "target", "y_true", "y_pred"]
    folds = oof.drop_duplicates(["model", "id"]).pivot(index="id", columns="model", values="fold")
    assert (folds.nunique(axis=1) == 1).all()
    assert (oof.groupby("group")["fold"].nunique() == 1).all()
    assert oof["y_pred"].between(0, 1).all()
    summary = pd.read_csv(ev / "summary.csv")
    assert len(summary) == 4 * 2  # 4 models x 2 targets
    # the pooled Spearman in the table is the Spearman of the saved predictions: nothing hard-coded
    g = oof[(oof["model"] == "gbt") & (oof["target"] == "memorability_score")]
    from memo.metrics import spearman

    row = summary[(summary["model"] == "gbt") & (summary["target"] == "memorability_score")].iloc[0]
    assert row["spearman"] == pytest.approx(spearman(g["y_true"], g["y_pred"]))
    md = (ev / "results.md").read_text()
    assert "| model | target |" in md
    # `--model gbt` is an ad hoc run: like `memo submit`, it computes the vit features it reads
    (cv_json,) = (sample_project / ".memo" / "runs" / "model-gbt").glob("*/cv.json")
    assert "vit" in json.loads(cv_json.read_text())["consumed"]
    for png in ["spearman.png", "scatter_gbt.png", "scatter_text_ridge.png"]:
        assert (ev / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_evaluate_with_nothing_changed_is_up_to_date(sample_project, tmp_path, monkeypatch):
    from memo.project import Project

    project = Project.open(sample_project / "memo.toml")
    out = tmp_path / "ev"
    first = evaluate_models(project, ["duration"], folds=3, out=out, baselines=["text_ridge"])
    assert not first.up_to_date

    def refit(*a, **k):
        raise AssertionError("recomputed although nothing changed")

    # each model is an ad hoc run: its cross-validation is the run's
    monkeypatch.setattr("memo.submission.runs.repeated_cross_val", refit)
    again = evaluate_models(project, ["duration"], folds=3, out=out, baselines=["text_ridge"])
    assert again.up_to_date and "up to date" in again.text()
    pd.testing.assert_frame_equal(first.summary.reset_index(drop=True), again.summary, check_dtype=False)
    with pytest.raises(AssertionError, match="recomputed"):  # other folds: a new evaluation
        evaluate_models(project, ["duration"], folds=4, out=out, baselines=["text_ridge"])


def test_evaluate_repeats_the_cv_over_seeds_and_reports_the_mean(sample_project, tmp_path):
    """`expected` is the mean pooled Spearman over splits with seeds seed, seed+1, ...; the interval is the
    first split's."""
    from memo.crossval import build_predictor, target_frame
    from memo.features.load import load_available
    from memo.metrics import spearman
    from memo.project import Project

    project = Project.open(sample_project / "memo.toml")
    one = evaluate_models(project, ["duration"], folds=3, out=tmp_path / "one", baselines=[], repeats=1)
    three = evaluate_models(project, ["duration"], folds=3, out=tmp_path / "three", baselines=[], repeats=3)
    X, _ = load_available(project, "dev", ["metadata.absolute"])
    y = target_frame(X, project.targets)
    t = project.targets[0]
    per = []
    for seed in range(project.seed, project.seed + 3):  # the same folds, refitted here by hand
        oof = cross_val_predict(
            lambda: build_predictor(project, "duration"), X, y, grouped_kfold(X.groups, n_splits=3, seed=seed)
        )
        per.append(spearman(y[t], oof.loc[y.index, t]))
    row1, row3 = (ev.summary.set_index("target").loc[t] for ev in (one, three))
    assert (
        row3["repeats"] == 3
        and row3["expected"] == pytest.approx(np.mean(per))
        and (row3["min"], row3["max"]) == pytest.approx((min(per), max(per)))
    )
    assert row3["spearman"] == pytest.approx(per[0]) == pytest.approx(row1["spearman"]) and row1[
        "expected"
    ] == pytest.approx(per[0])
    assert (
        len(set(np.round(per, 9))) > 1 and "repeated 3 times" in three.setup and "repeated" not in one.setup
    )


def test_memo_train_and_predict_gbt(sample_project, tmp_path):
    _cli(sample_project, "train", "gbt", "--set", 'gbt.streams=["metadata", "organiser"]', *TINY_GBT)
    # one home for trained models: the ad hoc run of gbt (`memo evaluate --model gbt`'s run)
    (folder,) = (sample_project / ".memo" / "runs" / "model-gbt").glob("*/model")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["predictor"] == "gbt" and meta["run"] == "model-gbt" and meta["n_videos"] == 48
    assert any(f.startswith("organiser.ViT") for f in meta["features"]) and "lightgbm" in meta["versions"]
    assert meta["params"]["n_trials"] == 2
    assert set(meta["inner_cv_spearman"]) == {"memorability_score", "brand_memorability"}
    assert (sample_project / ".memo" / "studies" / "gbt.sqlite3").is_file()

    from memo.project import Project

    project = Project.open(sample_project / "memo.toml")
    with pytest.raises(
        MemoError, match=r"trained with other inputs \(changed: .*params.*\); run `memo train gbt`"
    ):
        predict_model(project, "gbt")  # trained with --set: the lookup is for this memo.toml only
    csv = tmp_path / "pred.csv"
    _cli(
        sample_project,
        "predict",
        "--model",
        "gbt",
        "--out",
        str(csv),
        "--set",
        'gbt.streams=["metadata", "organiser"]',
        *TINY_GBT,
    )
    df = pd.read_csv(csv, dtype={"id": str}).set_index("id")
    test_ids = project.dataset.splits["test"].ids
    assert list(df.index) == test_ids and ((df >= 0) & (df <= 1)).all().all()
    back = pd.read_csv(csv, dtype={"id": str}).set_index("id")
    np.testing.assert_allclose(back.to_numpy(), df.to_numpy(), rtol=1e-6)

    with pytest.raises(MemoError, match="memo train mindmem"):
        predict_model(project, "mindmem")


def test_evaluate_refuses_what_it_cannot_do(sample_project):
    from memo.project import Project

    project = Project.open(sample_project / "memo.toml")
    with pytest.raises(MemoError, match="unknown predictor 'gbtt'"):
        evaluate_models(project, ["gbtt"])
    with pytest.raises(MemoError, match="training split"):
        evaluate_models(project, ["duration"], split="dev", baselines=[])
    with pytest.raises(MemoError, match="at least 20 groups"):
        evaluate_models(project, ["duration"], folds=20, baselines=[])
