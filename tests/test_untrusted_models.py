"""Saved models are untrusted: nothing a model folder holds can run code when loaded."""

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from memo.baselines.gbt import GBTEnsemble
from memo.baselines.simple import DurationBaseline, TextRidge
from memo.errors import MemoError
from tests.test_predictor_contract import contract_features


class Payload:
    """Unpickling this writes a file: proof that a loader ran code from the model folder."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def fitted_gbt(tmp_path_factory):
    X, y = contract_features()
    model = GBTEnsemble(
        members=("xgboost", "lightgbm", "catboost", "ridge", "kernel"),
        n_trials=0,
        components=4,
        inner_folds=2,
        fixed={
            "xgboost": {"n_estimators": 10},
            "lightgbm": {"n_estimators": 10},
            "catboost": {"iterations": 10},
        },
    )
    model.fit(X.take(np.arange(18)), y.iloc[:18])
    folder = model.save(tmp_path_factory.mktemp("gbt"))
    return model, folder, X.take(np.arange(18, 24))


def test_gbt_folder_holds_no_pickle_and_predicts_the_same(fitted_gbt):
    model, folder, Xte = fitted_gbt
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.npz"]
    # loads without pickle: no object arrays inside
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        state = json.loads(z["__state__"].tobytes())
        assert all(z[k].dtype != object for k in z.files)
    assert state["class"] == "memo.baselines.gbt.GBTEnsemble"
    again = GBTEnsemble.load(folder)
    pd.testing.assert_frame_equal(again.predict(Xte), model.predict(Xte))
    for m in model.members:  # every member on its own, not only the combination
        pd.testing.assert_frame_equal(again.member_predict(Xte, m), model.member_predict(Xte, m))
    # what the report reads from the members still works on a loaded model
    assert again.models_["memorability_score"]["lightgbm"].booster_.feature_importance("gain").shape == (
        len(model.feature_names_),
    )
    assert (
        len(
            again.models_["memorability_score"]["xgboost"]
            .get_booster()
            .get_score(importance_type="total_gain")
        )
        >= 0
    )


def test_old_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned.txt"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(MemoError, match="pickle from an older memo.*memo train gbt"):
        GBTEnsemble.load(tmp_path)
    assert not marker.exists()


def test_pickle_planted_as_model_npz_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"
    (tmp_path / "model.npz").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(MemoError, match="cannot be read as a saved model"):
        GBTEnsemble.load(tmp_path)
    assert not marker.exists()


def test_object_array_inside_model_npz_is_refused(tmp_path, fitted_gbt):
    _, folder, _ = fitted_gbt
    marker = tmp_path / "pwned.txt"
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["a0"] = np.array([Payload(marker)], dtype=object)  # a pickled object where an array was
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "model.npz").write_bytes(buf.getvalue())
    with pytest.raises(MemoError, match="cannot be read as a saved model"):
        GBTEnsemble.load(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("cls_name", ["subprocess.Popen", "builtins.eval", "os.system"])
def test_state_naming_a_foreign_class_is_refused(tmp_path, fitted_gbt, cls_name):
    _, folder, _ = fitted_gbt
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(arrays["__state__"].tobytes())
    state["state"]["__dict__"].append(["evil", {"__object__": cls_name, "state": {"__dict__": []}}])
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "model.npz").write_bytes(buf.getvalue())
    with pytest.raises(MemoError, match=f"names the class {cls_name}, which memo does not load"):
        GBTEnsemble.load(tmp_path)


def test_truncated_model_is_one_sentence(tmp_path, fitted_gbt):
    _, folder, _ = fitted_gbt
    (tmp_path / "model.npz").write_bytes((folder / "model.npz").read_bytes()[:500])
    with pytest.raises(MemoError, match="cannot be read as a saved model.*retrain"):
        GBTEnsemble.load(tmp_path)


def test_a_saved_model_of_another_kind_is_refused(tmp_path):
    X, y = contract_features()
    DurationBaseline().fit(X, y).save(tmp_path)
    with pytest.raises(MemoError, match="holds a DurationBaseline, not a TextRidge"):
        TextRidge.load(tmp_path)
    assert not (tmp_path / "model.pkl").exists()


# ----------------------------------------------------------------------------- MindMem


@pytest.fixture(scope="module")
def fitted_mindmem():
    from memo.baselines.mindmem import MindMem

    X, y = contract_features(n=36)
    # a target on its own scale, not [0, 1]
    y = y.assign(memorability_score=10 + 50 * y["memorability_score"])
    model = MindMem(
        width=16, heads=2, epochs=3, batch_size=8, patience=0, valid_fraction=0.0, device="cpu"
    ).fit(X, y)
    return model, X, y


def test_mindmem_predicts_on_the_targets_own_scale(fitted_mindmem):
    model, X, y = fitted_mindmem
    pred = model.predict(X)
    lo, hi = y["memorability_score"].min(), y["memorability_score"].max()
    got = pred["memorability_score"]
    assert (got >= lo - 1e-6).all() and (got <= hi + 1e-6).all() and got.max() > 1.0
    assert got.std() > 0
    # a target already in [0, 1] is left on its scale
    assert pred["brand_memorability"].between(0, 1).all()


def test_mindmem_saves_safetensors_and_refuses_old_torch_pickles(fitted_mindmem, tmp_path):
    from memo.baselines.mindmem import MindMem

    model, X, _ = fitted_mindmem
    folder = model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["mindmem.json", "model.safetensors"]
    pd.testing.assert_frame_equal(MindMem.load(folder).predict(X), model.predict(X))

    marker = tmp_path / "pwned.txt"
    old = tmp_path / "old"
    old.mkdir()
    (old / "mindmem.json").write_text((folder / "mindmem.json").read_text())
    (old / "model.pt").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(MemoError, match="torch pickle from an older memo.*memo train mindmem"):
        MindMem.load(old)
    # a pickle in the weights' place
    (folder / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(MemoError, match="damaged mindmem model"):
        MindMem.load(folder)
    assert not marker.exists()


# ----------------------------------------------------------------------------- damaged SQLite files


def _log_with_rows(path, n=300):
    from memo.rationales.log import GenerationLog, Record

    with GenerationLog(path) as log:
        log.add(
            [
                Record(key=f"k{i}", video=f"v{i}", response="a funny ad " * 20, aspect="humor")
                for i in range(n)
            ]
        )
        log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_rationale_log_that_is_not_a_database_is_one_sentence(tmp_path):
    from memo.rationales.log import GenerationLog, final_rationales

    path = tmp_path / "rationales" / "log.sqlite"
    path.parent.mkdir()
    path.write_bytes(b"this is not sqlite at all" * 100)
    before = path.read_bytes()
    with pytest.raises(
        MemoError,
        match=r"rationale log .*log.sqlite cannot be read \(file is not a database\); "
        r"delete it to start over",
    ):
        GenerationLog(path)
    with pytest.raises(MemoError, match="delete it to start over"):
        final_rationales(path, ["v1"])
    assert path.read_bytes() == before  # nothing written over the damaged file


def test_rationale_log_with_damaged_pages_is_one_sentence(tmp_path):
    from memo.rationales.log import GenerationLog

    path = _log_with_rows(tmp_path / "log.sqlite")
    data = bytearray(path.read_bytes())
    assert len(data) > 4 * 4096
    data[2 * 4096 : 4 * 4096] = b"\xff" * (2 * 4096)  # pages 3 and 4 overwritten, the header intact
    path.write_bytes(bytes(data))
    with pytest.raises(MemoError, match="rationale log .* cannot be read .*delete it to start over"):
        GenerationLog(path)


def test_damaged_optuna_study_is_one_sentence(tmp_path):
    X, y = contract_features()
    study = tmp_path / "studies"
    study.mkdir()
    (study / "gbt.sqlite3").write_bytes(b"garbage" * 1000)
    model = GBTEnsemble(
        members=("lightgbm",),
        n_trials=1,
        components=4,
        inner_folds=2,
        study_dir=str(study),
        fixed={"lightgbm": {"n_estimators": 5}},
    )
    with pytest.raises(
        MemoError,
        match=r"Optuna study file .*gbt.sqlite3 cannot be opened \(file is not a database\); delete it to "
        r"start tuning over",
    ):
        model.fit(X, y)
    assert (study / "gbt.sqlite3").read_bytes() == b"garbage" * 1000


def test_memos_own_sqlite_mistake_is_not_called_a_damaged_log(tmp_path):
    import sqlite3

    from memo.rationales.log import GenerationLog

    log = GenerationLog(tmp_path / "log.sqlite")
    log.close()
    with pytest.raises(sqlite3.ProgrammingError):  # a bug stays a bug, never "delete the log"
        log.count()
