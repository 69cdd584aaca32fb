"""memo.search: a predictor that chooses among candidates on inner grouped folds of its own training rows."""

import numpy as np
import pandas as pd
import pytest

from memo.config import Config
from memo.errors import ConfigError, MemoError
from memo.predictors import PREDICTORS
from memo.search import SearchPredictor, resolve_candidates
from tests.test_predictor_contract import contract_features

CANDIDATES = [
    {"predictor": "duration"},
    {"predictor": "ridge", "streams": ["e5"]},
    {"predictor": "ridge", "streams": ["stats"]},
]


def test_the_search_picks_the_candidate_that_carries_the_signal_and_records_why():
    X, y = contract_features(n=60)  # the planted signal is in e5 (and vit, audio); stats are noise
    model = SearchPredictor.from_config(Config(), candidates=CANDIDATES, inner_folds=3, blend_top=1).fit(X, y)
    assert model.choice_ == {t: ["ridge(e5)"] for t in y.columns}
    scores = model.inner_scores_["memorability_score"]
    assert (
        set(scores) == {"duration", "ridge(e5)", "ridge(stats)"}
        and scores["ridge(e5)"] > scores["ridge(stats)"]
    )
    assert list(model.models_) == ["ridge(e5)"]  # only the pick is refitted on all rows
    assert model.consumed() == {"e5.title": 16, "e5.description": 16, "e5.transcript": 16}
    assert model.describe_choice()["brand_memorability"]["pick"] == ["ridge(e5)"]


def test_the_inner_folds_never_see_the_rows_the_search_is_not_given(monkeypatch):
    """Fitted on some brands, no candidate fit (inner or final) meets another brand's rows."""
    X, y = contract_features(n=48)
    train = np.flatnonzero(~np.isin(X.groups, ["brand0", "brand1"]))
    seen = []
    ridge = PREDICTORS.get("ridge")
    real_fit = ridge.fit
    monkeypatch.setattr(
        ridge, "fit", lambda self, X_, y_: (seen.append(set(X_.groups)), real_fit(self, X_, y_))[1]
    )
    SearchPredictor.from_config(Config(), candidates=CANDIDATES, inner_folds=3).fit(
        X.take(train), y.iloc[train]
    )
    assert seen and all(not g & {"brand0", "brand1"} for g in seen)
    assert sum(len(g) == 4 for g in seen) >= 1  # the final fit on all four training brands


def test_a_rank_average_of_the_best_few_is_an_option():
    X, y = contract_features(n=60)
    model = SearchPredictor.from_config(Config(), candidates=CANDIDATES, inner_folds=3, blend_top=3).fit(X, y)
    options = model.inner_scores_["memorability_score"]
    assert "rank average of ridge(e5) + duration + ridge(stats)" in options or any(
        o.startswith("rank average of ridge(e5)") for o in options
    )
    pick = model.choice_["memorability_score"]
    assert options[pick[0] if len(pick) == 1 else "rank average of " + " + ".join(pick)] == max(
        options.values()
    )


def test_save_and_load_give_the_same_predictions_and_choice(tmp_path):
    X, y = contract_features(n=36)
    model = SearchPredictor.from_config(Config(), candidates=CANDIDATES, inner_folds=3).fit(X, y)
    back = SearchPredictor.load(model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(back.predict(X), model.predict(X))
    assert back.choice_ == model.choice_
    state = (tmp_path / "m" / "search.json").read_text()
    (tmp_path / "m" / "search.json").write_text(state.replace('"fitted"', '"fitted_"'))
    with pytest.raises(MemoError, match="is not a search model memo wrote"):
        SearchPredictor.load(tmp_path / "m")
    (tmp_path / "m" / "search.json").write_text("{not json")
    with pytest.raises(MemoError, match="holds no readable search model"):
        SearchPredictor.load(tmp_path / "m")


@pytest.mark.parametrize(
    "candidates, message",
    [
        ([], "a search needs candidates"),
        ([{"streams": ["cues"]}], "give a table with a predictor"),
        ([{"predictor": "ridge", "stream": ["cues"]}], "has the key 'stream'"),
        ([{"predictor": "search"}], "is itself a search"),
        ([{"predictor": "ridge", "params": {"alpha": 3}}], "check its params"),
    ],
)
def test_bad_candidates_are_one_sentence(candidates, message):
    with pytest.raises(ConfigError, match=message):
        resolve_candidates(Config(), candidates)


def test_candidates_are_resolved_with_their_section_of_memo_toml():
    cfg = Config()
    cfg.gbt.members = ["lightgbm"]
    (gbt,) = resolve_candidates(cfg, [{"predictor": "gbt", "streams": ["cues"], "params": {"n_trials": 0}}])
    assert (
        gbt["name"] == "gbt(cues)"
        and gbt["params"]["members"] == ["lightgbm"]
        and gbt["params"]["n_trials"] == 0
    )
    assert "device" not in gbt["params"]


def _brand_shifted(n_brands: int = 12, per: int = 10, seed: int = 0):
    """Features where a `level` column only says which brand (brands differ in level and in target mean, by
    chance in opposite ways across halves) and a `within` column ranks ads inside every brand."""
    from memo.store import Features, Stream

    rng = np.random.default_rng(seed)
    groups = np.repeat([f"b{i}" for i in range(n_brands)], per)
    brand_level = np.repeat(rng.normal(size=n_brands), per)
    within = rng.normal(size=len(groups))
    y = 0.5 + 0.05 * within + 0.1 * np.repeat(rng.normal(size=n_brands), per)
    ids = [f"v{i:03d}" for i in range(len(groups))]
    values = np.stack([brand_level + 0.1 * rng.normal(size=len(groups)), within], 1)[:, None].astype(
        np.float32
    )
    X = Features(
        ids,
        groups,
        pd.DataFrame({"group": groups}, index=pd.Index(ids, name="id")),
        {"stats": Stream(values, np.ones((len(ids), 1), bool), ["level", "within"])},
    )
    return X, pd.DataFrame({"t": np.clip(y, 0, 1)}, index=pd.Index(ids, name="id"))


def test_ridge_levers_against_brand_shift_keep_predictions_on_the_scale_and_do_what_they_say(tmp_path):
    from memo.baselines.linear import RidgeRanker

    X, y = _brand_shifted()
    plain = RidgeRanker(streams=["stats"]).fit(X, y)
    centred = RidgeRanker(streams=["stats"], centre_targets=True).fit(X, y)
    p = centred.predict(X)["t"]
    assert abs(p.mean() - y["t"].mean()) < 0.02  # back on the hit-rate scale, not around 0 and clipped
    assert abs(centred.coef_["t"][0]) < abs(plain.coef_["t"][0]) + 1e-9  # the brand-level column loses weight
    bagged = RidgeRanker(streams=["stats"], bag_brands=10).fit(X, y)
    again = RidgeRanker(streams=["stats"], bag_brands=10).fit(X, y)
    np.testing.assert_allclose(bagged.coef_["t"], again.coef_["t"])  # seeded
    assert not np.allclose(bagged.coef_["t"], plain.coef_["t"])
    stable = RidgeRanker(streams=["stats"], stable_signs=1.0).fit(X, y)
    kept = stable.coef_["t"] != 0
    assert kept[1]  # `within` has one sign whichever brand is left out
    pd.testing.assert_frame_equal(
        RidgeRanker.load(stable.save(tmp_path / "stable")).predict(X), stable.predict(X)
    )
