"""The GBT ensemble and its parts (memo.baselines.blocks, .members): feature streams, leakage guards, learning
a planted signal, ensembling with memo.metrics.rank_average, resumable tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memo.baselines.blocks import BlockBuilder, aggregate
from memo.baselines.gbt import GBTEnsemble
from memo.baselines.members import GRIDS, RIDGE_ALPHAS
from memo.errors import ConfigError, MemoError
from memo.metrics import rank_average, spearman
from memo.store import Features, Stream, stack_sequences

# tiny members keep each fit around 10 ms
FAST = {"xgboost": {"n_estimators": 25}, "lightgbm": {"n_estimators": 25}, "catboost": {"iterations": 25}}


def make_features(n: int = 64, brands: int = 8, seed: int = 0) -> tuple[Features, pd.DataFrame]:
    """Real Features built by hand: a planted signal z in metadata, an E5-like vector and a frame sequence."""
    rng = np.random.default_rng(seed)
    ids = [f"vid{i:03d}" for i in range(n)]
    groups = np.array([f"brand{i % brands}" for i in range(n)])
    z = rng.normal(size=n)
    meta = np.stack([np.log1p(np.exp(3 + 0.8 * z + 0.5 * rng.normal(size=n))), rng.normal(size=n)], axis=1)
    e5 = rng.normal(size=(n, 24))
    e5[:, 3] += 1.5 * z
    frames = [rng.normal(size=(int(rng.integers(2, 5)), 12)) + 0.8 * z[i] for i in range(n)]
    frames[5] = None  # a video without frames: a NaN row, not a crash
    vit = stack_sequences(frames, dim=12)
    table = pd.DataFrame(
        {"group": groups, "title": [f"ad {i}" for i in range(n)]}, index=pd.Index(ids, name="id")
    )
    streams = {
        "metadata.absolute": Stream(
            meta[:, None, :].astype(np.float32), np.ones((n, 1), bool), ["log1p_duration", "noise"]
        ),
        "e5.title": Stream(e5[:, None, :].astype(np.float32), np.ones((n, 1), bool)),
        "vit": vit,
        # organiser features that exist for the test split only: every training row masked
        "organiser.ViT": Stream(np.zeros((n, 3, 8), np.float32), np.zeros((n, 3), bool)),
    }
    y = pd.DataFrame(
        {
            "memorability_score": 1 / (1 + np.exp(-z - 0.3 * rng.normal(size=n))),
            "brand_memorability": 1 / (1 + np.exp(-0.7 * z - 0.6 * rng.normal(size=n))),
        },
        index=pd.Index(ids, name="id"),
    )
    return Features(ids, groups, table, streams), y


def test_aggregate_sequences_and_vectors():
    # (2, 3, 2)
    values = np.array([[[1.0, 2.0], [3.0, 6.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = np.array([[True, True, False], [False, False, False]])
    seq = aggregate(values, mask, sequence=True)  # (2, 5 * 2): mean, std, max, first, last
    assert seq.shape == (2, 10)
    np.testing.assert_allclose(seq[0], [2, 4, 1, 2, 3, 6, 1, 2, 3, 6])
    assert np.isnan(seq[1]).all()  # a missing video is NaN, which the trees route, not zeros
    vec = aggregate(values[:, :1], mask[:, :1], sequence=False)
    np.testing.assert_allclose(vec[0], [1, 2])
    assert np.isnan(vec[1]).all()


def test_builder_blocks_notes_and_training_only_reduction():
    X, _ = make_features()
    tr = np.arange(40)
    b = BlockBuilder(["metadata", "e5", "vit", "organiser", "audio"], reduce="pca", components=4).fit(
        X.take(tr)
    )
    names = b.feature_names_
    # named: kept whole
    assert [n for n in names if n.startswith("metadata")] == [
        "metadata.absolute:log1p_duration",
        "metadata.absolute:noise",
    ]
    assert (
        sum(n.startswith("e5.title:pca") for n in names) == 4
        and sum(n.startswith("vit:pca") for n in names) == 4
    )
    assert not any("organiser" in n or "group" in n or "brand" in n for n in names)
    assert any("organiser.ViT has no rows in the training data" in n for n in b.notes_)
    assert any(n.startswith("stream audio") for n in b.notes_)
    # what the manifest records: raw widths
    assert b.stream_widths_ == {"e5.title": 24, "metadata.absolute": 2, "vit": 60}
    F = b.transform(X)
    assert F.shape == (len(X), len(names))
    assert np.isnan(F[5, [i for i, n in enumerate(names) if n.startswith("vit:")]]).all()
    # the reduction is a function of the training rows only: changing held-out rows changes nothing it learned
    X2, _ = make_features()
    X2.streams["e5.title"].values[40:] *= 100.0
    b2 = BlockBuilder(["metadata", "e5", "vit", "organiser", "audio"], reduce="pca", components=4).fit(
        X2.take(tr)
    )
    np.testing.assert_allclose(b.transform(X.take(tr)), b2.transform(X2.take(tr)), rtol=1e-5)
    # brand labels are not read: relabelling every group gives the same matrix
    X3, _ = make_features()
    X3.groups = np.array(["x"] * len(X3))
    X3.table["group"] = "x"
    np.testing.assert_array_equal(
        BlockBuilder(["metadata", "e5", "vit"], components=4).fit(X3).transform(X3),
        BlockBuilder(["metadata", "e5", "vit"], components=4).fit(X).transform(X),
    )
    with pytest.raises(MemoError, match="none of the GBT streams"):
        BlockBuilder(["audio"]).fit(X)


def test_table_metadata_fallback_never_reads_targets():
    X, y = make_features()
    del X.streams["metadata.absolute"]
    X.table["duration"] = np.exp(X.streams["e5.title"].values[:, 0, 3])
    X.table["memorability_score"] = y["memorability_score"]  # targets sit in the split table; never features
    X.table["n_annotations"] = 17
    b = BlockBuilder(["metadata"]).fit(X)
    assert b.feature_names_ == ["metadata.absolute:log_duration"]


@pytest.mark.parametrize("ensemble", ["rank", "stack", "best"])
def test_gbt_learns_planted_signal_on_new_brands(ensemble):
    X, y = make_features(n=72, brands=9)
    held = np.isin(X.groups, ["brand0", "brand1", "brand2"])
    tr, te = np.flatnonzero(~held), np.flatnonzero(held)
    m = GBTEnsemble(
        streams=["metadata", "e5", "vit", "organiser"],
        components=4,
        n_trials=0,
        fixed=FAST,
        ensemble=ensemble,
    ).fit(X.take(tr), y.iloc[tr])
    pred = m.predict(X.take(te))
    assert list(pred.index) == [X.ids[i] for i in te] and list(pred.columns) == list(y.columns)
    assert ((pred >= 0) & (pred <= 1)).all().all()
    assert spearman(y.iloc[te, 0], pred.iloc[:, 0]) > 0.5
    assert all(c["kind"] == ensemble for c in m.combiner_.values())
    assert set(m.inner_scores_["memorability_score"]) == {
        "xgboost",
        "lightgbm",
        "catboost",
        "ridge",
        "kernel",
        "rank",
        "stack",
    }
    # batch independence: a video alone gets the score it gets in a batch
    one = m.predict(X.take(te[:1]))
    np.testing.assert_allclose(one.to_numpy(), pred.iloc[:1].to_numpy())
    for member in m.members:
        assert m.member_predict(X.take(te), member).shape == pred.shape


def test_ridge_member_reads_full_blocks_and_chooses_its_penalty_inside_fit():
    """The linear member sees every E5 dimension (not 16 components), imputes gaps, and picks alpha on inner
    folds."""
    X, y = make_features(n=72, brands=9)
    # the signal sits in 12 weak E5 dimensions: PCA to 2 components drops most of it, the full ridge keeps it
    rng = np.random.default_rng(1)
    z = np.log(y["memorability_score"] / (1 - y["memorability_score"])).to_numpy()
    e5 = rng.normal(size=(len(X), 48))
    e5[:, :12] += 0.6 * z[:, None]
    X.streams["e5.title"] = Stream(e5[:, None, :].astype(np.float32), np.ones((len(X), 1), bool))
    held = np.isin(X.groups, ["brand0", "brand1", "brand2"])
    tr, te = np.flatnonzero(~held), np.flatnonzero(held)
    m = GBTEnsemble(
        streams=["e5", "vit"], members=["lightgbm", "ridge"], components=2, n_trials=0, fixed=FAST
    ).fit(X.take(tr), y.iloc[tr])
    assert (
        m.full_builder_.feature_names_.count("vit:mean:0") == 1
        and sum(n.startswith("e5.title:") for n in m.full_builder_.feature_names_) == 48
    )
    alpha = m.params_["memorability_score"]["ridge"]["alpha"]
    assert alpha in [float(a) for a in RIDGE_ALPHAS]
    ridge = m.member_predict(X.take(te), "ridge")
    assert spearman(y.iloc[te, 0], ridge.iloc[:, 0]) > spearman(
        y.iloc[te, 0], m.member_predict(X.take(te), "lightgbm").iloc[:, 0]
    )
    assert np.isfinite(ridge.to_numpy()).all()  # video 5 has no frames: imputed, flagged, still scored
    # a pinned penalty is used as given
    pinned = GBTEnsemble(streams=["e5"], members=["ridge"], n_trials=0, fixed={"ridge": {"alpha": 7.0}}).fit(
        X.take(tr), y.iloc[tr]
    )
    assert pinned.params_["brand_memorability"]["ridge"] == {"alpha": 7.0}


def test_kernel_member_learns_what_a_ridge_cannot_and_picks_its_grid_point_inside_fit():
    """An RBF kernel ridge on the full blocks: a bump-shaped signal (memorable near one point of E5 space)."""
    X, y = make_features(n=96, brands=12)
    rng = np.random.default_rng(2)
    e5 = rng.normal(size=(len(X), 6))
    bump = np.exp(-0.5 * (e5[:, :2] ** 2).sum(axis=1))  # highest at the origin, no linear trend at all
    y = pd.DataFrame({"memorability_score": 0.4 + 0.5 * bump + 0.03 * rng.normal(size=len(X))}, index=y.index)
    X.streams["e5.title"] = Stream(e5[:, None, :].astype(np.float32), np.ones((len(X), 1), bool))
    held = np.isin(X.groups, ["brand0", "brand1", "brand2", "brand3"])
    tr, te = np.flatnonzero(~held), np.flatnonzero(held)
    m = GBTEnsemble(streams=["e5"], members=["ridge", "kernel"], n_trials=0).fit(X.take(tr), y.iloc[tr])
    params = m.params_["memorability_score"]["kernel"]
    assert params["alpha"] in GRIDS["kernel"]["alpha"] and params["gamma"] in GRIDS["kernel"]["gamma"]
    kernel, ridge = (m.member_predict(X.take(te), k).iloc[:, 0] for k in ("kernel", "ridge"))
    assert spearman(y.iloc[te, 0], kernel) > 0.6 > spearman(y.iloc[te, 0], ridge) + 0.3
    alone = m.member_predict(X.take(te[:1]), "kernel").iloc[0, 0]  # a video alone scores as in a batch
    assert alone == pytest.approx(kernel.iloc[0], abs=1e-12)
    pinned = GBTEnsemble(
        streams=["e5"], members=["kernel"], n_trials=0, fixed={"kernel": {"gamma": 0.25}}
    ).fit(X.take(tr), y.iloc[tr])
    assert pinned.params_["memorability_score"]["kernel"]["gamma"] == 0.25


def test_rank_average_is_midrank_among_a_reference_or_itself():
    """The ensemble's rank combiner: a member's percentile among its out-of-fold predictions, (mid-rank) / (n
    + 1)."""
    ref = np.sort(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(
        rank_average([[0.0, 2.0, 9.0]], references=[ref], scale="percentile"), [1 / 8, 4 / 8, 7 / 8]
    )
    # among itself, ties share their mean rank (as in Spearman and pandas), NaN stays NaN
    scores = np.array([[0.3, 0.1, 0.3, np.nan], [0.2, 0.4, 0.1, 0.5]])
    np.testing.assert_array_equal(rank_average(scores[:1]), pd.Series(scores[0]).rank().to_numpy())
    np.testing.assert_array_equal(
        rank_average(scores[:1], scale="pct"), pd.Series(scores[0]).rank(pct=True).to_numpy()
    )
    np.testing.assert_array_equal(rank_average(scores[1:]), [2.0, 3.0, 1.0, 4.0])
    np.testing.assert_array_equal(rank_average(scores)[:3], [2.25, 2.0, 1.75])
    with pytest.raises(ValueError, match="scale"):
        rank_average(scores, scale="ranks")


def test_bad_settings_name_the_fix():
    X, y = make_features(n=32)
    with pytest.raises(ConfigError, match="members"):
        GBTEnsemble(members=["randomforest"]).fit(X, y)
    with pytest.raises(ConfigError, match="reduce"):
        GBTEnsemble(reduce="umap").fit(X, y)
    with pytest.raises(ConfigError, match="xgboost.depth"):
        GBTEnsemble(fixed={"xgboost": {"depth": 3}}).fit(X, y)


def test_tuning_resumes_after_a_kill_and_draws_the_same_trials(tmp_path, monkeypatch):
    """Interrupt tuning mid-study, resume it: the finished trials are kept and the rest match an unbroken
    run."""
    import optuna

    import memo.baselines.members as members  # where tuning makes its members

    X, y = make_features(n=48)
    y = y[["memorability_score"]]
    kw = dict(
        streams=["metadata", "e5"],
        members=["lightgbm"],
        components=4,
        n_trials=4,
        timeout=600,
        fixed={"lightgbm": {"n_estimators": 20}},
    )

    unbroken = GBTEnsemble(study_dir=str(tmp_path / "a"), **kw).fit(X, y)

    real = members.make_member
    calls = {"n": 0}

    def dying(*args, **kwargs):  # the 7th fit is the first of trial 3 (3 inner folds per trial)
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(members, "make_member", dying)
    with pytest.raises(KeyboardInterrupt):
        GBTEnsemble(study_dir=str(tmp_path / "b"), **kw).fit(X, y)
    monkeypatch.setattr(members, "make_member", real)

    storage = f"sqlite:///{tmp_path / 'b' / 'gbt.sqlite3'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2  # what ran before the kill is on disk

    resumed = GBTEnsemble(study_dir=str(tmp_path / "b"), **kw).fit(X, y)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4  # two more, not four more
    assert resumed.params_ == unbroken.params_
    pd.testing.assert_frame_equal(resumed.predict(X), unbroken.predict(X))
