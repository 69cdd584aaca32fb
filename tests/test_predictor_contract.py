"""One contract test over every registered predictor (memo.predictors): scikit-learn's estimator shape.

For each name in PREDICTORS: `from_config` with small hyperparameters, `fit` returns self,
`predict` is aligned to X.ids, in [0, 1] and finite, `get_params` round-trips through the
constructor, `save`/`load` gives identical predictions, and two fits with one seed agree.
Every predictor is a scikit-learn estimator: `sklearn.base.clone` gives an unfitted copy with
the same parameters, and `set_params` round-trips.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from memo.config import Config
from memo.features.cues import cue_stream
from memo.predictors import LOCATION_PARAMS, PREDICTORS
from memo.store import Features, Stream, stack_sequences

# Small settings, applied only where a predictor's constructor has the parameter.
SMALL = {
    "n_trials": 0,
    "components": 4,
    "inner_folds": 2,
    "fixed": {
        "xgboost": {"n_estimators": 15},
        "lightgbm": {"n_estimators": 15},
        "catboost": {"iterations": 15},
    },
    "width": 16,
    "heads": 2,
    "epochs": 2,
    "batch_size": 8,
    "patience": 1,
    "max_steps": 2,
    "words_per_field": 8,
    "eval_batch_size": 8,
    "projector_hidden": 8,
    "head_hidden": 8,
    "lora_r": 2,
    "lora_alpha": 4,
    "val_folds": 0,
    "device": "cpu",
    "candidates": [{"predictor": "ridge", "streams": ["e5"]}, {"predictor": "duration"}],  # search
}


def contract_features(n: int = 24, seed: int = 0) -> tuple[Features, pd.DataFrame]:
    """Every stream kind the store holds, for n videos in 6 brands, with a planted signal."""
    rng = np.random.default_rng(seed)
    ids = [f"v{i:02d}" for i in range(n)]
    groups = np.array([f"brand{i % 6}" for i in range(n)])
    z = rng.normal(size=n)
    words = np.where(z > 0, "a funny jingle", "the terms that apply")
    table = pd.DataFrame(
        {
            "group": groups,
            "title": [f"Ad {i}: {w}" for i, w in enumerate(words)],
            "description": [f"{w} and more" for w in words],
            "tags": "bank|money",
            "transcript": [f"we say {w}" for w in words],
            "duration": 20 + 10 * np.abs(z),
        },
        index=pd.Index(ids, name="id"),
    )

    def vec(d: int) -> Stream:
        v = rng.normal(size=(n, 1, d)).astype(np.float32)
        v[:, 0, 0] += z
        return Stream(v, np.ones((n, 1), bool))

    def seq(d: int, t: int) -> Stream:
        return stack_sequences(
            [
                rng.normal(size=(int(rng.integers(1, t + 1)), d)).astype(np.float32) + 0.5 * z[i]
                for i in range(n)
            ],
            dim=d,
        )

    streams = {
        "metadata.absolute": Stream(
            np.stack([np.log1p(table["duration"]), rng.normal(size=n)], 1)[:, None].astype(np.float32),
            np.ones((n, 1), bool),
            ["log1p_duration", "log1p_views"],
        ),
        "e5.title": vec(16),
        "e5.description": vec(16),
        "e5.transcript": vec(16),
        "vit": seq(12, 4),
        "audio": seq(8, 3),
        "stats": Stream(
            rng.normal(size=(n, 1, 5)).astype(np.float32), np.ones((n, 1), bool), [f"s{j}" for j in range(5)]
        ),
        "organiser.ViT": seq(12, 3),
        "rationale.humor": vec(16),
        "ratings": Stream(
            rng.integers(1, 11, size=(n, 1, 2)).astype(np.float32),
            np.ones((n, 1), bool),
            ["humor", "emotion"],
        ),
        "cues": cue_stream(table),
    }
    y = pd.DataFrame(
        {"memorability_score": 1 / (1 + np.exp(-z)), "brand_memorability": 1 / (1 + np.exp(-0.5 * z))},
        index=pd.Index(ids, name="id"),
    )
    return Features(ids, groups, table, streams), y


def small_config(tmp_path) -> Config:
    cfg = Config()
    cfg.project.workdir = str(tmp_path / "work")
    cfg.models.vit, cfg.models.e5, cfg.models.audio, cfg.models.llm = (
        "tiny:vit",
        "tiny:e5",
        "tiny:audio",
        "tiny:gemma3",
    )
    return cfg


def build(cls, cfg):
    accepted = inspect.signature(cls.__init__).parameters
    return cls.from_config(cfg, **{k: v for k, v in SMALL.items() if k in accepted})


def fitted_state(model) -> list[str]:
    return [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_predictor_is_a_sklearn_estimator(name, tmp_path):
    """clone gives an unfitted predictor with equal parameters; set_params round-trips and changes only what
    it names."""
    model = build(PREDICTORS.get(name), small_config(tmp_path))
    params = model.get_params()
    twin = clone(model)
    assert type(twin) is type(model) and twin is not model
    assert twin.get_params() == params and not fitted_state(twin)
    assert twin.set_params(**params) is twin and twin.get_params() == params
    twin.set_params(random_state=params["random_state"] + 1)
    assert twin.get_params() == {**params, "random_state": params["random_state"] + 1}
    assert model.get_params() == params  # the original is untouched
    assert model.prediction_params() == {k: v for k, v in params.items() if k not in LOCATION_PARAMS}


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_predictor_contract(name, tmp_path):
    cls = PREDICTORS.get(name)
    cfg = small_config(tmp_path)
    X, y = contract_features()
    # brands 0-5 cycle, so test rows are on trained brands: fine for a contract
    tr, te = np.arange(18), np.arange(18, 24)
    Xtr, Xte = X.take(tr), X.take(te)

    model = build(cls, cfg)
    params = model.get_params()
    assert type(model)(**params).get_params() == params  # __init__ only stores what it is given
    assert not fitted_state(model), "fitted state before fit"
    assert isinstance(model.streams, (list, tuple)) and all(isinstance(s, str) for s in model.streams)

    assert model.fit(Xtr, y.iloc[tr]) is model
    assert not fitted_state(clone(model)), "clone of a fitted model carries its fitted state"
    pred = model.predict(Xte)
    assert list(pred.index) == Xte.ids
    assert list(pred.columns) == list(y.columns)
    values = pred.to_numpy(float)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()

    folder = model.save(tmp_path / "saved")
    again = cls.load(folder if folder is not None else tmp_path / "saved")
    pd.testing.assert_frame_equal(again.predict(Xte), pred)

    twin = build(cls, cfg).fit(Xtr, y.iloc[tr])
    pd.testing.assert_frame_equal(twin.predict(Xte), pred)  # deterministic for a seed


@pytest.mark.parametrize("name", sorted(PREDICTORS.names()))
def test_from_config_reads_its_section_seed_and_models_device(name):
    """One way from memo.toml to a predictor: [models] device reaches every predictor that takes a
    device (MindMem and the LLM fusion included) unless a command names one; [project] seed is its
    random_state; an unknown override is refused with the parameters it takes."""
    from memo.crossval import build_predictor

    config = Config()
    config.models.device = "cpu"
    config.project.seed = 7

    class Project:  # what build_predictor reads of a project
        pass

    project = Project()
    project.config = config
    cls = PREDICTORS.get(name)
    takes = cls.param_names()
    params = {"candidates": SMALL["candidates"]} if name == "search" else {}
    built = build_predictor(project, name, device="auto", params=params)
    if "device" in takes:
        assert built.device == "cpu"
        assert build_predictor(project, name, device="cuda:1", params=params).device == "cuda:1"
    if "random_state" in takes:
        assert built.random_state == 7
    if cls.config_section:
        section = getattr(config, cls.config_section)
        for key in takes & {f for f in vars(section)} - {"device", "random_state"}:
            assert getattr(built, key) == getattr(section, key) or key in ("fixed", "backbone"), key
    with pytest.raises(Exception, match="has no parameter 'no_such_knob'; it takes: "):
        cls.from_config(config, no_such_knob=1, **params)


@pytest.mark.parametrize(
    "name", sorted(n for n in PREDICTORS.names() if hasattr(PREDICTORS.get(n), "explain"))
)
def test_explanations_keep_the_protocol(name, tmp_path):
    """memo.predictors' explanation protocol: a long table with one BASE row per (id, target); where it says
    it is exact, the contributions add up to each video's score alone (before clipping), also after
    save/load."""
    from memo.predictors import BASE, EXPLANATION_COLUMNS

    cls = PREDICTORS.get(name)
    X, y = contract_features()
    tr, te = np.arange(18), np.arange(18, 24)
    model = build(cls, small_config(tmp_path)).fit(X.take(tr), y.iloc[tr])
    model = cls.load(model.save(tmp_path / "saved") or tmp_path / "saved")
    Xte = X.take(te)
    E = model.explain(Xte)
    assert list(E.columns) == EXPLANATION_COLUMNS and set(E["target"]) <= set(y.columns)
    base = E[E["feature"] == BASE].groupby(["id", "target"]).size()
    assert (base == 1).all() and len(base) == E.groupby(["id", "target"]).ngroups
    if not E.attrs["exact"]:
        return
    total = E.groupby(["id", "target"])["contribution"].sum()
    for k, i in enumerate(Xte.ids):
        alone = model.predict(Xte.take([k]))
        for t in set(E.loc[E["id"] == i, "target"]):
            assert np.isclose(np.clip(total[(i, t)], 0, 1), alone[t].iloc[0], atol=1e-5), (i, t)
