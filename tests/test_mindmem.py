"""MindMem: masks, planted signal, save/load, determinism, the estimator contract, the ablation.

Features are built by hand with memo.store (a real input): three modalities, each carrying a
third of a planted signal, so the fused model has more to go on than any single modality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from memo.baselines.mindmem import MindMem  # noqa: E402
from memo.baselines.mindmem_net import MindMemNet  # noqa: E402
from memo.errors import MemoError  # noqa: E402
from memo.metrics import spearman  # noqa: E402
from memo.predictors import PREDICTORS  # noqa: E402
from memo.splits import grouped_kfold  # noqa: E402
from memo.store import Features, Stream, stack_sequences  # noqa: E402

SMALL = dict(
    width=32,
    heads=4,
    dropout=0.0,
    modality_dropout=0.1,
    lr=3e-3,
    epochs=15,
    batch_size=32,
    patience=0,
    random_state=0,
    device="cpu",
)


def planted(n: int = 180, seed: int = 0, audio_missing: float = 0.1) -> tuple[Features, pd.DataFrame]:
    """Video frames (T 2..6, 16-d), audio windows (T 1..4, 8-d, some missing), two text vectors.

    Target = sigmoid of a + b + c, where a lives in the mean of the frames, b in the audio and c
    in the text; each modality alone explains about a third of the variance.
    """
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    dv, da, dt = rng.normal(size=16), rng.normal(size=8), rng.normal(size=12)
    dv, da, dt = dv / np.linalg.norm(dv), da / np.linalg.norm(da), dt / np.linalg.norm(dt)
    frames, audio, title, desc = [], [], [], []
    for i in range(n):
        t = rng.integers(2, 7)
        frames.append(rng.normal(size=(t, 16)) * 0.5 + a[i] * dv)
        audio.append(
            None
            if rng.random() < audio_missing
            else rng.normal(size=(rng.integers(1, 5), 8)) * 0.5 + b[i] * da
        )
        title.append(rng.normal(size=12) * 0.5 + c[i] * dt)
        desc.append(rng.normal(size=12) * 0.5 + 0.5 * c[i] * dt)
    ids = [f"v{i:03d}" for i in range(n)]
    groups = np.array([f"brand{i % 12}" for i in range(n)])
    X = Features(
        ids,
        groups,
        pd.DataFrame(index=pd.Index(ids, name="id")),
        {
            "vit": stack_sequences(frames, 16),
            "audio": stack_sequences(audio, 8),
            "e5.title": stack_sequences(title, 12),
            "e5.description": stack_sequences(desc, 12),
        },
    )
    score = 1 / (1 + np.exp(-(a + b + c) / 2))
    y = pd.DataFrame(
        {"memorability_score": score + rng.normal(scale=0.02, size=n)}, index=pd.Index(ids, name="id")
    ).clip(0, 1)
    return X, y


MODALITIES = {"video": ["vit"], "audio": ["audio"], "text": ["e5"]}


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return MindMem(modalities=MODALITIES, use=[], **SMALL).fit(X, y)


def _holdout_spearman(X, y, **params) -> float:
    train, test = grouped_kfold(X.groups, n_splits=4, seed=0)[0]
    model = MindMem(modalities=MODALITIES, **{**SMALL, **params}).fit(X.take(train), y.iloc[train])
    pred = model.predict(X.take(test))
    return spearman(y.iloc[test, 0], pred.iloc[:, 0])


def test_full_model_beats_every_single_modality(data):
    X, y = data
    full = _holdout_spearman(X, y, use=["video", "audio", "text"])
    singles = {m: _holdout_spearman(X, y, use=[m]) for m in MODALITIES}
    assert full > 0.6, full
    for m, s in singles.items():
        assert full > s + 0.05, (m, s, full)


def test_missing_modality_of_one_video_changes_nothing_for_another(fitted, data):
    X, _ = data
    with_audio = [i for i in range(len(X)) if X.streams["audio"].present[i]]
    a, b = with_audio[0], with_audio[1]
    pair = X.take([a, b])
    # the same batch, except that video B's audio is gone (all-False mask, zeros)
    gone = X.take([a, b])
    audio = gone.streams["audio"]
    gone.streams["audio"] = Stream(audio.values.copy(), audio.mask.copy())
    gone.streams["audio"].values[1] = 0.0
    gone.streams["audio"].mask[1] = False
    p1, p2 = fitted.predict(pair), fitted.predict(gone)
    np.testing.assert_allclose(p1.iloc[0], p2.iloc[0], rtol=0, atol=1e-6)
    assert abs(p1.iloc[1, 0] - p2.iloc[1, 0]) > 1e-4  # B itself did change: audio is used
    # and A alone in its batch scores the same as beside B
    np.testing.assert_allclose(fitted.predict(X.take([a])).iloc[0], p1.iloc[0], rtol=0, atol=1e-6)


def test_padding_rows_beyond_the_mask_are_never_read(fitted, data):
    X, _ = data
    noisy = X.take(np.arange(20))
    rng = np.random.default_rng(1)
    for name, st in list(noisy.streams.items()):
        values = st.values.copy()
        pad = ~st.mask
        # garbage where the mask says nothing
        values[pad] = rng.normal(scale=100.0, size=(int(pad.sum()), st.dim))
        # and 3 more padding rows than any video has
        extra = rng.normal(scale=100.0, size=(len(noisy), 3, st.dim)).astype(np.float32)
        noisy.streams[name] = Stream(
            np.concatenate([values, extra], axis=1),
            np.concatenate([st.mask, np.zeros((len(noisy), 3), bool)], axis=1),
        )
    np.testing.assert_allclose(
        fitted.predict(noisy).to_numpy(), fitted.predict(X.take(np.arange(20))).to_numpy(), rtol=0, atol=1e-6
    )


def test_a_video_with_no_data_at_all_gets_a_finite_prediction(fitted, data):
    X, _ = data
    empty = X.take([0, 1])
    for name, st in list(empty.streams.items()):
        empty.streams[name] = Stream(np.zeros_like(st.values), np.zeros_like(st.mask))
    pred = fitted.predict(empty)
    assert np.isfinite(pred.to_numpy()).all() and ((pred >= 0) & (pred <= 1)).all().all()
    # a stream the features lack entirely is masked out the same way
    X2 = X.take([0, 1])
    del X2.streams["audio"]
    assert np.isfinite(fitted.predict(X2).to_numpy()).all()


def test_net_masks_rows_of_all_missing_modalities_without_nan():
    torch.manual_seed(0)
    net = MindMemNet({"a": ["x"], "b": ["y"]}, {"x": 4, "y": 3}, 2, 8, 2, 0.0, "attention", True)
    x = (torch.randn(3, 5, 4), torch.zeros(3, 5, dtype=torch.bool))
    y = (torch.randn(3, 2, 3), torch.tensor([[True, False], [True, True], [False, False]]))
    out = net({"x": x, "y": y})
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_save_load_gives_identical_predictions(fitted, data, tmp_path):
    X, _ = data
    fitted.save(tmp_path / "m")
    loaded = MindMem.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.get_params() == fitted.get_params()


def test_same_seed_same_model(data):
    X, y = data
    small = {**SMALL, "epochs": 5}
    p1 = MindMem(modalities=MODALITIES, **small).fit(X, y).predict(X)
    p2 = MindMem(modalities=MODALITIES, **small).fit(X, y).predict(X)
    p3 = MindMem(modalities=MODALITIES, **{**small, "random_state": 1}).fit(X, y).predict(X)
    pd.testing.assert_frame_equal(p1, p2)
    assert not np.allclose(p1.to_numpy(), p3.to_numpy())


def test_estimator_contract(data, fitted):
    X, y = data
    cls = PREDICTORS.get("mindmem")
    assert cls is MindMem
    params = MindMem(width=64).get_params()
    assert params["width"] == 64 and not any(k.endswith("_") for k in params)
    assert not any(k.endswith("_") for k in vars(MindMem()))  # __init__ stores hyperparameters only
    pred = fitted.predict(X.take([5, 3, 9]))
    assert list(pred.index) == [X.ids[5], X.ids[3], X.ids[9]] and list(pred.columns) == list(y.columns)
    assert pred.notna().all().all() and ((pred >= 0) & (pred <= 1)).all().all()
    assert fitted.streams == ["vit", "audio", "e5"]
    assert fitted.layout_ == {"video": ["vit"], "audio": ["audio"], "text": ["e5.description", "e5.title"]}


def test_two_targets_mse_pairwise_mean_pooling_no_cross(data):
    X, y = data
    y2 = y.assign(brand_memorability=1 - y.iloc[:, 0])
    m = MindMem(
        modalities=MODALITIES,
        **{
            **SMALL,
            "epochs": 8,
            "loss": "mse+pairwise",
            "pooling": "max",
            "cross_attention": False,
            "patience": 3,
            "valid_fraction": 0.25,
        },
    ).fit(X, y2)
    pred = m.predict(X)
    assert list(pred.columns) == ["memorability_score", "brand_memorability"]
    assert spearman(pred.iloc[:, 0], pred.iloc[:, 1]) < 0  # the heads learn opposite targets
    assert "valid_spearman" in m.history_[0]


def test_inference_drop_masks_a_modality(fitted, data):
    X, _ = data
    dropped = MindMem(**fitted.get_params())
    dropped.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    dropped.inference_drop = ["text"]
    assert not np.allclose(dropped.predict(X).to_numpy(), fitted.predict(X).to_numpy())
    dropped.inference_drop = ["smell"]
    with pytest.raises(MemoError, match="smell"):
        dropped.predict(X)


def test_config_errors_name_the_value(data):
    X, y = data
    with pytest.raises(MemoError, match="pooling"):
        MindMem(pooling="median", **{k: v for k, v in SMALL.items() if k != "pooling"}).fit(X, y)
    with pytest.raises(MemoError, match="smell"):
        _ = MindMem(modalities=MODALITIES, use=["smell"]).streams
    with pytest.raises(MemoError, match="memo features"):
        MindMem(modalities={"video": ["organiser.ViT"]}, **SMALL).fit(X, y)


def test_from_config_reads_memo_toml_section():
    from memo.config import Config

    cfg = Config()
    cfg.mindmem.width = 48
    cfg.mindmem.use = ["text"]
    cfg.project.seed = 7
    m = MindMem.from_config(cfg, device="cpu")
    assert (m.width, m.use, m.random_state, m.device) == (48, ["text"], 7, "cpu")
    assert m.streams == ["e5", "rationale"]
    with pytest.raises(MemoError, match="widht"):
        MindMem.from_config(cfg, widht=3)


# ----------------------------------------------------------------------------- the ablation


def test_ablation_grid():
    from memo.evaluation.ablation import variants

    grid = variants(["video", "audio", "text"])
    names = [v["variant"] for v in grid]
    assert names[:7] == [
        "video",
        "audio",
        "text",
        "video+audio",
        "video+text",
        "audio+text",
        "video+audio+text",
    ]
    assert {"mean pooling", "max pooling", "self-attention pooling", "self + cross attention"} <= set(names)
    assert [v["drop"] for v in grid if v["section"] == "zeroed at inference"] == [
        ["video"],
        ["audio"],
        ["text"],
    ]
    full = [v for v in grid if v["full"]]
    # one model, trained once
    assert [v["variant"] for v in full] == ["video+audio+text", "self + cross attention"]
    assert grid[0]["paper_lambda"] == 0.564


def test_zeroed_at_inference_reuses_the_fold_models(data):
    from memo.crossval import cross_val_predict
    from memo.evaluation.ablation import _KeepFoldModels, _ZeroedAtInference

    X, y = data
    X, y = X.take(np.arange(90)), y.iloc[:90]
    folds = grouped_kfold(X.groups, n_splits=3, seed=0)
    params = {**SMALL, "epochs": 3, "modalities": MODALITIES}
    shelf: list = []
    full = cross_val_predict(lambda: _KeepFoldModels(MindMem(**params), shelf), X, y, folds)
    reused = cross_val_predict(
        lambda: _ZeroedAtInference(lambda: MindMem(**params), shelf, ["audio"]), X, y, folds
    )
    fresh = cross_val_predict(lambda: MindMem(**params, inference_drop=["audio"]), X, y, folds)
    assert len(shelf) == 3
    pd.testing.assert_frame_equal(reused, fresh)  # training is deterministic: reuse is exact
    assert not np.allclose(reused.to_numpy(), full.to_numpy())


def test_memo_ablate_mindmem_end_to_end(tmp_path):
    """The command's function on a small sample project: organiser features and metadata, 2 folds."""
    from memo.evaluation.ablation import ablate_mindmem
    from memo.features import run_features
    from tests.projects import sample_project

    settings = {
        "mindmem.modalities": {"frames": ["organiser.ViT", "organiser.R3D"], "meta": ["metadata"]},
        "mindmem.use": [],
        "mindmem.width": 16,
        "mindmem.heads": 2,
        "mindmem.epochs": 3,
        "mindmem.batch_size": 8,
        "mindmem.dropout": 0.0,
        "evaluate.bootstrap": 50,
    }
    project = sample_project(
        tmp_path, settings, n_brands_dev=4, videos_per_brand=5, n_brands_test=2, seconds=1.0, size=32
    )
    run_features(project, extractors=["organiser"], progress=False)
    table = ablate_mindmem(project, folds=2, device="cpu").summary
    out = project.workdir / "ablation"
    assert {"ablation.csv", "ablation.md", "ablation.png"} <= {p.name for p in out.iterdir()}
    assert set(table["section"]) == {"modalities", "pooling", "cross-attention", "zeroed at inference"}
    assert table.groupby("variant").size().eq(len(project.targets)).all()
    assert table["spearman"].notna().all() and (table["spearman_lo"] <= table["spearman_hi"]).all()
    full = table[table["variant"] == "frames+meta"].set_index("target")["spearman"]
    cross = table[table["variant"] == "self + cross attention"].set_index("target")["spearman"]
    pd.testing.assert_series_equal(full, cross, check_names=False)
    # a rerun reads every variant from the cache and gives the same table
    again = ablate_mindmem(project, folds=2, device="cpu").summary
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))
