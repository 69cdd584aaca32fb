"""The predictor registry and the contract every predictor keeps (scikit-learn's estimator shape).

    @PREDICTORS.register("gbt")
    class GBTEnsemble(Predictor): ...

    cls = PREDICTORS.get("gbt")              # unknown names list the valid ones
    model = cls.from_config(project.config, device="cpu")
    model.fit(X, y)                          # X: memo.store.Features, y: DataFrame (ids x targets)
    model.predict(X)                         # DataFrame indexed by X.ids, one column per target, in [0, 1]
    model.save(folder); cls.load(folder)     # load gives identical predictions

Rules (one contract test runs over every registered predictor):
- `__init__` only stores hyperparameters, as given (`clone` checks it is the very object), in
  attributes of the same names; `fit` returns self;
  fitted state lives in attributes ending in `_`; `random_state` becomes seeds inside `fit`.
- `predict` returns scores aligned to X.ids, clipped to [0, 1], no NaN.
- `streams` (attribute or property) holds the stream selectors it reads (memo.streams), so callers
  build X with only those (memo.features.load_features); after `fit`, `consumed()` says which
  streams it read, with their column counts.
- Never a feature: the group (brand) or the video id.

Explanations (optional; `memo score --explain`, readvise's "why"): a predictor that can say why it
scored a video implements `explain(X) -> DataFrame`, a long table of EXPLANATION_COLUMNS (id,
target, feature, contribution). Per (id, target) one row has feature BASE (the intercept, or the
trees' expected value) and the contributions, BASE included, add up to the prediction before it is
clipped to [0, 1]: exactly for a linear model and one tree library, as the mean of the members for
an ensemble (`attrs["exact"]` is False where that mean is not the prediction). A feature is named
"stream:column" (memo.baselines.blocks) or by a word of a text model ("text:webinar"); a target it
cannot explain has no rows. `explains(model)` says whether a model has it; predictors without it
give no reasons.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from sklearn.base import BaseEstimator

from memo.errors import ConfigError
from memo.registry import Registry

# where each built-in predictor registers itself; importing one module never imports the others
BUILTIN = {
    "gbt": "memo.baselines.gbt",
    "mindmem": "memo.baselines.mindmem",
    "duration": "memo.baselines.simple",
    "metadata_gbt": "memo.baselines.simple",
    "text_ridge": "memo.baselines.simple",
    "ridge": "memo.baselines.linear",
    "llm": "memo.llm_fusion.model",
    "search": "memo.search",
}

PREDICTORS: Registry = Registry("predictor", lazy=BUILTIN)

# an explanation's columns, and the feature name of its intercept / expected value (the module docstring)
EXPLANATION_COLUMNS = ["id", "target", "feature", "contribution"]
BASE = "(base)"

# parameters that say where a predictor runs or keeps its files, never what it predicts
LOCATION_PARAMS = ("device", "study_dir", "rationale_log", "output_dir")


class Predictor(BaseEstimator):
    """Base class: the shape of the contract, with the defaults most predictors want.

    A scikit-learn estimator: `get_params`, `set_params`, `sklearn.base.clone` and the repr come
    from BaseEstimator, which reads the `__init__` signature and the attributes of the same names.
    """

    name: ClassVar[str] = ""

    def prediction_params(self) -> dict[str, Any]:
        """get_params() less LOCATION_PARAMS: what fingerprints of runs and evaluations hash, so neither the
        device nor a moved project folder makes a result look out of date."""
        return {k: v for k, v in self.get_params().items() if k not in LOCATION_PARAMS}

    # stream selectors it reads; an instance attribute where a parameter sets it
    streams: tuple[str, ...] | list[str] = ()

    def consumed(self) -> dict[str, int]:
        """stream -> columns the fitted model read from it (the run manifest records this); {} for text-only
        models."""
        for attr in ("stream_widths_", "stream_dims_"):
            if hasattr(self, attr):
                return {k: int(v) for k, v in getattr(self, attr).items()}
        return {}

    # the memo.toml section whose keys are this predictor's hyperparameters ("gbt", "mindmem", "llm")
    config_section: ClassVar[str] = ""

    @classmethod
    def from_config(cls, config, **overrides: Any) -> Predictor:
        """The predictor as memo.toml sets it (`config_params`), then `overrides` on top.

        The one way every predictor is built from a config; an override that is not a parameter is
        refused, except `device` for a predictor with nothing to put on a device.
        """
        names = cls.param_names()
        if "device" not in names:
            overrides.pop("device", None)
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(
                f"{cls.name or cls.__name__} has no parameter {unknown[0]!r}; it takes: "
                f"{', '.join(sorted(names))}."
            )
        return cls(**{**cls.config_params(config, overrides), **overrides})

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        """What memo.toml sets: the keys of [config_section] that are parameters, [project] seed as
        `random_state` and [models] device as `device` where the predictor takes them. A predictor
        adds what it derives from other sections by extending this (`overrides` is read-only)."""
        names = cls.param_names()
        params: dict[str, Any] = {}
        if cls.config_section:
            section = getattr(config, cls.config_section)
            params = {
                f.name: copy.deepcopy(getattr(section, f.name))
                for f in dataclasses.fields(section)
                if f.name in names
            }
        if "random_state" in names:
            params["random_state"] = config.project.seed
        if "device" in names:
            params["device"] = config.models.device
        return params

    @classmethod
    def param_names(cls) -> set[str]:
        """The hyperparameters: the names `__init__` takes."""
        return set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}

    def fit(self, X, y: pd.DataFrame) -> Predictor:
        raise NotImplementedError

    def predict(self, X) -> pd.DataFrame:
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | Path) -> Predictor:
        raise NotImplementedError


# ----------------------------------------------------------------------------- explanations


def explains(model: Any) -> bool:
    """True when a fitted predictor keeps the explanation protocol (`explain(X)`, the module docstring)."""
    return callable(getattr(model, "explain", None))


def contribution_table(ids, target: str, names: list[str], contributions, base) -> pd.DataFrame:
    """The long explanation of one target: (N, F) `contributions` named by `names`, and `base` (a number, or
    (N,) per video) as the BASE row of each video."""
    import numpy as np

    C = np.asarray(contributions, dtype=float)  # (N, F)
    n = len(ids)
    b = np.broadcast_to(np.asarray(base, dtype=float), (n,))
    return pd.DataFrame(
        {
            "id": np.repeat(np.asarray(list(ids), dtype=object), C.shape[1] + 1),
            "target": target,
            "feature": np.tile(np.asarray([BASE, *names], dtype=object), n),
            "contribution": np.concatenate([b[:, None], C], axis=1).reshape(-1),
        }
    )


def explanation_frame(parts: list[pd.DataFrame], exact: bool = True) -> pd.DataFrame:
    """Parts of an explanation as one long table (EXPLANATION_COLUMNS), with attrs["exact"]."""
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=EXPLANATION_COLUMNS)
    out = out[EXPLANATION_COLUMNS]
    out.attrs["exact"] = bool(exact and all(p.attrs.get("exact", True) for p in parts))
    return out
