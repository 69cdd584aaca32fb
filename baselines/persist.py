"""Saving fitted predictors in a form that cannot run code when it is loaded (no pickle).

    save_state(model, folder)        # folder/model.npz (+ model.json, what `describe` says)
    load_state(GBTEnsemble, folder)  # the same object, predictions identical

A trained model folder may come from someone else (a shared run, a download), so loading it must
not execute anything. One file, `model.npz`, written atomically, read with allow_pickle=False:
- `__state__`: the object's attributes as JSON. Numbers, strings, lists, tuples, dicts, numpy
  dtypes, and objects of the classes in SAFE_CLASSES only (their attributes, recursively); a
  class name outside that list is refused before anything is imported.
- `a<k>`: every numeric array (PCA components, ridge coefficients, quantiles...), as arrays.
- `n<k>`: the tree members in each library's own format, as bytes: XGBoost JSON, the LightGBM
  model text, a CatBoost .cbm.
Anything else found while saving is a bug to fix here, not something to pickle.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from memo.errors import MemoError
from memo.store import atomic_write_bytes, atomic_write_json

FORMAT = 1
# classes whose attributes may be restored (fitted state only; nothing of them runs on load), by the
# public name they are imported under, so a library moving its private modules does not break loading
SAFE_CLASSES = {
    "sklearn.decomposition.PCA",
    "sklearn.decomposition.TruncatedSVD",
    "sklearn.linear_model.Ridge",
    "sklearn.kernel_ridge.KernelRidge",
    "sklearn.impute.SimpleImputer",
    "sklearn.impute.MissingIndicator",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "memo.baselines.gbt.GBTEnsemble",
    "memo.baselines.gbt.BlockBuilder",
    "memo.baselines.gbt.RBFKernelRidge",
    "memo.baselines.simple.MetadataGBT",
    "memo.baselines.simple.DurationBaseline",
    "memo.baselines.simple.TextRidge",
    "memo.baselines.linear.RidgeRanker",
}
NATIVE = {  # tree members, kept in their library's own format: public name -> library
    "xgboost.XGBRegressor": "xgboost",
    "lightgbm.LGBMRegressor": "lightgbm",
    "catboost.CatBoostRegressor": "catboost",
}


def _class_name(obj: Any) -> str | None:
    """The public name of obj's class among SAFE_CLASSES and NATIVE, or None (only same-named candidates are
    imported)."""
    t = type(obj)
    for name in (*SAFE_CLASSES, *NATIVE):
        if (
            name.rsplit(".", 1)[1] == t.__name__
            and t.__module__.split(".")[0] == name.split(".")[0]
            and _import(name) is t
        ):
            return name
    return None


def _import(name: str) -> type:
    if name not in SAFE_CLASSES and name not in NATIVE:
        raise MemoError(
            f"the saved model names the class {name}, which memo does not load; retrain the model."
        )
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def _put(self, prefix: str, a: np.ndarray) -> str:
        key = f"{prefix}{len(self.arrays)}"
        self.arrays[key] = a
        return key

    def __call__(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, float)) and type(v) in (int, float):
            return {"__float__": repr(v)} if isinstance(v, float) and not np.isfinite(v) else v
        if isinstance(v, np.generic):
            return {"__scalar__": v.dtype.str, "v": self(v.item())}
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "biufcUS":
                return {"__array__": self._put("a", v)}
            return {"__objects__": [self(x) for x in v.ravel().tolist()], "shape": list(v.shape)}
        if isinstance(v, np.dtype):
            return {"__dtype__": v.str}
        if isinstance(v, type) and issubclass(v, np.generic):
            return {"__scalar_type__": np.dtype(v).str}
        if isinstance(v, tuple):
            return {"__tuple__": [self(x) for x in v]}
        if isinstance(v, (set, frozenset)):
            return {"__set__": [self(x) for x in sorted(v, key=repr)]}
        if isinstance(v, list):
            return [self(x) for x in v]
        if isinstance(v, dict):
            return {"__dict__": [[self(k), self(x)] for k, x in v.items()]}
        name = _class_name(v)
        if name in NATIVE:
            return self._native(name, v)
        if name in SAFE_CLASSES:
            return {"__object__": name, "state": self(dict(vars(v)))}
        t = type(v)
        raise MemoError(
            f"memo cannot save a {t.__module__}.{t.__qualname__} without pickle; this is a bug in "
            "memo, please report it."
        )

    def _native(self, name: str, est: Any) -> dict[str, Any]:
        lib = NATIVE[name]
        state = dict(vars(est))
        if lib == "xgboost":
            blob = bytes(state.pop("_Booster").save_raw("json"))
        elif lib == "lightgbm":
            blob = state.pop("_Booster").model_to_string().encode("utf-8")
        else:  # catboost writes .cbm to a file only
            state = {"_init_params": state["_init_params"]}
            with tempfile.TemporaryDirectory() as d:
                est.save_model(os.path.join(d, "m.cbm"), format="cbm")
                blob = Path(d, "m.cbm").read_bytes()
        key = self._put("n", np.frombuffer(blob, dtype=np.uint8))
        return {"__native__": name, "blob": key, "state": self(state)}


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays

    def __call__(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "__float__" in v:
            return float(v["__float__"])
        if "__scalar__" in v:
            return np.dtype(v["__scalar__"]).type(self(v["v"]))
        if "__array__" in v:
            return self.arrays[v["__array__"]]
        if "__objects__" in v:
            out = np.empty(len(v["__objects__"]), dtype=object)
            out[:] = [self(x) for x in v["__objects__"]]
            return out.reshape(v["shape"])
        if "__dtype__" in v:
            return np.dtype(v["__dtype__"])
        if "__scalar_type__" in v:
            return np.dtype(v["__scalar_type__"]).type
        if "__tuple__" in v:
            return tuple(self(x) for x in v["__tuple__"])
        if "__set__" in v:
            return {self(x) for x in v["__set__"]}
        if "__dict__" in v:
            return {self(k): self(x) for k, x in v["__dict__"]}
        if "__object__" in v:
            cls = _import(v["__object__"])
            obj = cls.__new__(cls)
            obj.__dict__.update(self(v["state"]))
            return obj
        if "__native__" in v:
            return self._native(v)
        raise MemoError("the saved model holds a value memo does not know; retrain the model.")

    def _native(self, v: dict[str, Any]) -> Any:
        name = v["__native__"]
        cls = _import(name)
        blob = self.arrays[v["blob"]].tobytes()
        state = self(v["state"])
        lib = NATIVE[name]
        if lib == "catboost":
            est = cls(**state["_init_params"])
            est.load_model(blob=blob)
            return est
        est = cls.__new__(cls)
        est.__dict__.update(state)
        if lib == "xgboost":
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(bytearray(blob))
        else:
            import lightgbm

            booster = lightgbm.Booster(model_str=blob.decode("utf-8"))
        est._Booster = booster
        return est


# ----------------------------------------------------------------------------- files


def save_state(model: Any, folder: str | Path) -> Path:
    """model.npz (the fitted object, no pickle) + model.json (what `describe` says), each atomically."""
    folder = Path(folder)
    enc = _Encoder()
    name = _class_name(model)
    if name not in SAFE_CLASSES:
        raise MemoError(
            f"memo cannot save a {type(model).__name__} without pickle; this is a bug in memo, please "
            "report it."
        )
    root = {"format": FORMAT, "class": name, "state": enc(dict(vars(model)))}
    buf = io.BytesIO()
    state = np.frombuffer(json.dumps(root).encode("utf-8"), dtype=np.uint8)
    np.savez(buf, __state__=state, **enc.arrays)
    atomic_write_bytes(folder / "model.npz", buf.getvalue())
    atomic_write_json(folder / "model.json", model.describe())
    return folder


def load_state(cls: type, folder: str | Path):
    """The object save_state wrote, if it is a `cls`; any damage or foreign content is a MemoError."""
    folder = Path(folder)
    p = folder / "model.npz"
    if not p.is_file():
        if (folder / "model.pkl").is_file():
            raise MemoError(
                f"{folder / 'model.pkl'} is a pickle from an older memo, which memo no longer loads (a "
                "pickle can run code); "
                f"delete {folder} and train again (`memo train {cls.name}`, or `memo submit` for a "
                "run's model)."
            )
        raise MemoError(f"no trained model at {p}; run `memo train {cls.name}` first.")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        root = json.loads(arrays.pop("__state__").tobytes().decode("utf-8"))
        if root.get("format") != FORMAT or root.get("class") not in SAFE_CLASSES:
            raise MemoError(
                f"{p} is not a model memo saved ({root.get('class')!r}, format "
                f"{root.get('format')!r}); retrain it with `memo train {cls.name}`."
            )
        if _import(root["class"]) is not cls:
            raise MemoError(
                f"{p} holds a {root['class'].rsplit('.', 1)[-1]}, not a {cls.__name__}; retrain it "
                f"with `memo train {cls.name}`."
            )
        model = cls.__new__(cls)
        model.__dict__.update(_Decoder(arrays)(root["state"]))
        return model
    except MemoError:
        raise
    except Exception as e:  # a truncated, tampered or foreign file: whatever the parser says, it is not ours
        raise MemoError(
            f"{p} cannot be read as a saved model ({type(e).__name__}: {str(e)[:120]}); retrain it "
            f"with `memo train {cls.name}`."
        ) from e
