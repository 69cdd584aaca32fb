"""`search`: a predictor that chooses among candidate predictors on inner grouped folds of its training data.

    model = SearchPredictor.from_config(config, candidates=[
        {"predictor": "ridge", "streams": ["cues"]},
        {"predictor": "gbt", "streams": ["metadata", "e5"], "params": {"n_trials": 0}},
    ])
    model.fit(X, y)  # inner brand-grouped CV of every candidate, a pick per target, the picks refitted on X
    model.choice_            # {target: ["ridge(cues)"]} or the rank average of the best few
    model.predict(X)         # ids x targets, in [0, 1]

Why a predictor: a run's cross-validation fits a fresh predictor on each outer fold's training
brands, so a search that chooses inside `fit` chooses on those brands only, and the run's outer
score is the score of the whole procedure, choice included (GridSearchCV inside cross_val_score).
With a handful of brands the best-looking candidate on one CV is often luck; the expected score
printed for a search run pays for that.

The options per target are each candidate alone and the rank average of the best `blend_top`
candidates (k = 2..blend_top, ranked on the inner folds). The inner score is the pooled Spearman of
the option's inner out-of-fold predictions, averaged over `inner_repeats` seeded splits. The first
candidate is the default: another option replaces it only when it beats it in at least
`confidence` of `n_boot` resamples of whole brands of the inner out-of-fold predictions (a paired
one-sided test; 0 = the plain best). On a few dozen brands the best of many options on one inner CV
is often luck (on VIDEM's nested CV the plain best lost 0.06 against its default), so list first
the candidate you would bet on without data.

Candidates are plain dicts (`predictor`, `streams`, `params`, optional `name`); `from_config` fills
each with its section of memo.toml, so a candidate is fully described by its dict (fingerprints and
the manifest read it) and `fit` builds it without the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.errors import ConfigError, MemoError
from memo.metrics import blend_predictions, spearman
from memo.predictors import LOCATION_PARAMS, PREDICTORS, Predictor, explains, explanation_frame
from memo.splits import grouped_kfold
from memo.store import Features, atomic_write_json


def candidate_name(spec: dict[str, Any]) -> str:
    """'ridge(cues)', 'gbt(metadata,e5)', 'text_ridge': the name a candidate is listed and picked by."""
    streams = spec.get("streams") or []
    return spec.get("name") or (f"{spec['predictor']}({','.join(streams)})" if streams else spec["predictor"])


def resolve_candidates(config, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each candidate as {name, predictor, streams, params}, params filled from its section of memo.toml."""
    if not candidates:
        raise ConfigError(
            'a search needs candidates; set candidates = [{predictor = "ridge", streams = ["cues"]}, '
            "...] in the run."
        )
    out, names = [], set()
    for i, spec in enumerate(candidates):
        if not isinstance(spec, dict) or "predictor" not in spec:
            raise ConfigError(
                f"search candidate {i + 1} is {spec!r}; give a table with a predictor, e.g. "
                '{predictor = "ridge", streams = ["cues"]}.'
            )
        unknown = sorted(set(spec) - {"name", "predictor", "streams", "params"})
        if unknown:
            raise ConfigError(
                f"search candidate {i + 1} has the key {unknown[0]!r}; a candidate takes name, "
                "predictor, streams and params."
            )
        if spec["predictor"] == "search":
            raise ConfigError(
                f"search candidate {i + 1} is itself a search; list its candidates in this one instead."
            )
        cls = PREDICTORS.get(spec["predictor"])  # unknown names list the valid ones
        params = dict(spec.get("params") or {})
        if spec.get("streams"):
            params["streams"] = list(spec["streams"])
        try:
            est = cls.from_config(config, **params)
        except (TypeError, ConfigError) as e:
            raise ConfigError(
                f"search candidate {i + 1} ({spec['predictor']}): {e}; check its params."
            ) from None
        resolved = {
            "name": candidate_name(spec),
            "predictor": spec["predictor"],
            "streams": list(getattr(est, "streams", []) or []),
            "params": {k: v for k, v in est.get_params().items() if k not in LOCATION_PARAMS},
        }
        if resolved["name"] in names:
            resolved["name"] = f"{resolved['name']}#{i + 1}"
        names.add(resolved["name"])
        out.append(resolved)
    return out


@PREDICTORS.register("search")
class SearchPredictor(Predictor):
    """Candidates compared on inner grouped folds; per target the best one, or the rank average of the best
    few."""

    name = "search"

    def __init__(
        self,
        candidates: list[dict[str, Any]] | tuple = (),
        inner_folds: int = 5,
        inner_repeats: int = 1,
        blend_top: int = 3,
        confidence: float = 0.95,
        n_boot: int = 500,
        random_state: int = 0,
        device: str = "auto",
    ):
        self.candidates = candidates  # resolved dicts (resolve_candidates)
        self.inner_folds = inner_folds
        self.inner_repeats = inner_repeats
        self.blend_top = blend_top
        self.confidence = confidence
        self.n_boot = n_boot
        self.random_state = random_state
        self.device = device

    @classmethod
    def from_config(cls, config, **overrides: Any) -> SearchPredictor:
        # candidates name predictors and their sections: resolved against this config
        overrides["candidates"] = resolve_candidates(config, list(overrides.get("candidates") or []))
        return super().from_config(config, **overrides)

    @property
    def streams(self) -> list[str]:
        """Every stream some candidate reads, so the caller loads them all once."""
        return list(dict.fromkeys(s for c in self.candidates for s in c["streams"]))

    def _build(self, spec: dict[str, Any]) -> Predictor:
        cls = PREDICTORS.get(spec["predictor"])
        params = dict(spec["params"])
        if "device" in cls.param_names():
            params["device"] = self.device
        return cls(**params)

    # ------------------------------------------------------------------ choosing

    def inner_splits(self, X: Features) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """`inner_repeats` seeded grouped K-fold splits of X (the same for every candidate)."""
        groups = np.asarray(X.groups)
        k = min(self.inner_folds, len(np.unique(groups)))
        if k < 2:
            raise MemoError(
                "a search chooses on inner grouped folds and needs at least 2 brands; these videos "
                f"have {len(np.unique(groups))}."
            )
        return [
            grouped_kfold(groups, n_splits=k, seed=int(self.random_state) + 100 + r)
            for r in range(max(1, self.inner_repeats))
        ]

    def inner_predictions(self, X: Features, y: pd.DataFrame, splits) -> dict[str, list[pd.DataFrame]]:
        """candidate name -> its out-of-fold predictions on X, one frame per inner split (memo.crossval's
        driver:
        the same leakage checks and fresh fits as every other cross-validation)."""
        from memo.crossval import cross_val_predict

        return {
            spec["name"]: [
                cross_val_predict(
                    lambda spec=spec: self._build(spec), X, y, folds, desc=f"search: {spec['name']}"
                )
                for folds in splits
            ]
            for spec in self.candidates
        }

    def choose(
        self, inner: dict[str, list[pd.DataFrame]], y: pd.DataFrame, groups
    ) -> tuple[dict[str, list[str]], dict[str, dict[str, float]]]:
        """Per target: the first candidate, unless another option (a candidate, or the rank average of the
        best k) beats it in at least `confidence` of the brand-bootstrap resamples of the inner out-of-fold
        predictions; then the best of those, by pooled inner Spearman."""
        choice, scores = {}, {}
        first = next(iter(inner))
        groups = np.asarray(groups)
        for t in y.columns:
            yt = y[t].to_numpy(float)
            known = np.isfinite(yt)
            predictions = dict(inner)
            alone = {name: _pooled(yt, known, [f[t] for f in frames]) for name, frames in inner.items()}
            options = {name: [name] for name in inner}
            ranked = sorted(alone, key=lambda n: -alone[n])  # stable: list order breaks ties
            for k in range(2, min(self.blend_top, len(ranked)) + 1):
                label = "rank average of " + " + ".join(ranked[:k])
                options[label] = ranked[:k]
                predictions[label] = [
                    blend_predictions([inner[n][r][[t]] for n in ranked[:k]])
                    for r in range(len(inner[first]))
                ]
            names = list(options)
            opt_scores = {
                **alone,
                **{o: _pooled(yt, known, [f[t] for f in predictions[o]]) for o in names if o not in alone},
            }
            boot = _brand_bootstrap(
                yt[known],
                [np.stack([f[t].to_numpy(float)[known] for f in predictions[o]]) for o in names],
                groups[known],
                self.n_boot,
                int(self.random_state),
            )
            # (O,) share of resamples in which each option beats the first
            wins = (boot - boot[:, :1] > 0).mean(axis=0)
            eligible = [o for o, w in zip(names, wins) if o == first or w >= self.confidence]
            best = max(eligible, key=lambda o: opt_scores[o])  # the first on ties
            choice[t], scores[t] = options[best], opt_scores
        return choice, scores

    # ------------------------------------------------------------------ the estimator

    def fit(self, X: Features, y: pd.DataFrame) -> SearchPredictor:
        y = y.loc[list(X.ids)]
        self.targets_ = list(y.columns)
        inner = self.inner_predictions(X, y, self.inner_splits(X))
        self.choice_, self.inner_scores_ = self.choose(inner, y, X.groups)
        needed = list(dict.fromkeys(n for picks in self.choice_.values() for n in picks))
        specs = {c["name"]: c for c in self.candidates}
        self.models_ = {n: self._build(specs[n]).fit(X, y) for n in needed}
        self.notes_ = list(
            dict.fromkeys(note for m in self.models_.values() for note in getattr(m, "notes_", []))
        )
        return self

    def describe_choice(self) -> dict[str, Any]:
        """What the fold cache and the manifest record: per target the pick and every option's inner score."""
        return {
            t: {"pick": self.choice_[t], "inner": {k: round(v, 4) for k, v in self.inner_scores_[t].items()}}
            for t in self.targets_
        }

    def predict(self, X: Features) -> pd.DataFrame:
        preds = {n: m.predict(X) for n, m in self.models_.items()}
        out = {}
        for t in self.targets_:
            picks = self.choice_[t]
            frame = (
                preds[picks[0]][[t]] if len(picks) == 1 else blend_predictions([preds[n][[t]] for n in picks])
            )
            out[t] = frame[t].to_numpy(float)
        return pd.DataFrame(out, index=pd.Index(list(X.ids), name="id")).clip(0, 1)

    def explain(self, X: Features) -> pd.DataFrame:
        """Per target, the pick's own explanation (memo.predictors' protocol), or for a rank average the
        mean of its candidates': what one video alone is scored (a rank average of a batch of one is the
        mean of the candidates' predictions), not a video ranked among a batch. A target whose pick has a
        candidate without `explain` is left unexplained."""
        said = {n: m.explain(X) for n, m in self.models_.items() if explains(m)}
        parts = []
        for t in self.targets_:
            picks = self.choice_[t]
            got = [said[n][said[n]["target"] == t] for n in picks if n in said]
            if len(got) < len(picks) or any(g.empty for g in got):
                continue
            part = pd.concat(got, ignore_index=True)
            part["contribution"] = part["contribution"] / len(picks)
            part = part.groupby(["id", "target", "feature"], sort=False, as_index=False)["contribution"].sum()
            part.attrs["exact"] = all(said[n].attrs.get("exact", True) for n in picks)
            parts.append(part)
        return explanation_frame(parts)

    def consumed(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in getattr(self, "models_", {}).values():
            for s, w in m.consumed().items():
                out[s] = max(out.get(s, 0), w)
        return out

    # ------------------------------------------------------------------ saving (each pick in its own format;
    # no pickle)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = list(self.models_)
        for i, n in enumerate(names):
            self.models_[n].save(folder / f"candidate{i}")
        state = {
            "params": self.get_params(),
            "targets": self.targets_,
            "choice": self.choice_,
            "inner_scores": self.inner_scores_,
            "fitted": names,
            "notes": self.notes_,
        }
        atomic_write_json(folder / "search.json", state)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SearchPredictor:
        folder = Path(folder)
        try:
            state = json.loads((folder / "search.json").read_text())
        except (OSError, ValueError) as e:
            raise MemoError(f"{folder} holds no readable search model ({e}); retrain it.") from None
        try:
            model = cls(**state["params"])
            specs = {c["name"]: c for c in model.candidates}
            model.targets_, model.choice_, model.notes_ = state["targets"], state["choice"], state["notes"]
            model.inner_scores_ = state["inner_scores"]
            fitted = {n: specs[n]["predictor"] for n in state["fitted"]}
        except (KeyError, TypeError) as e:  # a damaged or foreign search.json: nothing is loaded from it
            raise MemoError(
                f"{folder / 'search.json'} is not a search model memo wrote ({type(e).__name__}: {e}); "
                "retrain it."
            ) from None
        # the candidates' folders are named by position, never by a name from the file
        model.models_ = {
            n: PREDICTORS.get(p).load(folder / f"candidate{i}") for i, (n, p) in enumerate(fitted.items())
        }
        return model


def _pooled(y: np.ndarray, known: np.ndarray, frames: list[pd.Series]) -> float:
    """Mean over inner repeats of the pooled Spearman of an option's out-of-fold predictions."""
    per = [spearman(y[known], f.to_numpy(float)[known]) for f in frames]
    return float(np.nanmean(per)) if np.isfinite(per).any() else -np.inf


def _brand_bootstrap(
    y: np.ndarray, preds: list[np.ndarray], groups: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """(n_boot, O) Spearman of each option on resamples of whole brands (the same resamples for every option,
    so options are compared pairwise); preds[o] is (inner repeats, N), its Spearman averaged over the
    repeats."""
    from scipy.stats import rankdata

    brands, codes = np.unique(groups, return_inverse=True)
    rows = [np.flatnonzero(codes == b) for b in range(len(brands))]
    P = np.stack(preds)  # (O, R, N)
    rng = np.random.default_rng(seed + 31)
    out = np.full((n_boot, P.shape[0]), np.nan)
    for b in range(n_boot):
        idx = np.concatenate([rows[g] for g in rng.integers(0, len(brands), len(brands))])
        ry = rankdata(y[idx])
        rp = rankdata(P[:, :, idx], axis=-1)  # (O, R, n)
        ry, rp = ry - ry.mean(), rp - rp.mean(axis=-1, keepdims=True)
        denom = np.sqrt((ry**2).sum() * (rp**2).sum(axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (rp @ ry) / denom  # (O, R); NaN where a resample's predictions are constant
        ok = np.isfinite(rho)
        out[b] = np.where(
            ok.any(axis=1), np.where(ok, rho, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1), np.nan
        )
    return np.nan_to_num(out, nan=-1.0)


def describe_picks(choices: dict[str, Any]) -> list[str]:
    """A run's search choices ({"folds": [repeat][fold], "final": ...}) as one line per target:
    'memorability_score: ridge(cues) in 18 of 25 outer folds, gbt(all) in 7; on all videos ridge(cues)'."""
    from collections import Counter

    folds = [f for repeat in choices.get("folds", []) for f in repeat if f]
    final = choices.get("final") or {}
    lines = []
    for t in dict.fromkeys([*(t for f in folds for t in f), *final]):
        counts = Counter(" + ".join(f[t]["pick"]) for f in folds if t in f).most_common()
        said = ", ".join(
            f"{p} in {n}" + (f" of {len(folds)} outer folds" if i == 0 else "")
            for i, (p, n) in enumerate(counts[:3])
        )
        if len(counts) > 3:
            said += (
                f", {len(counts) - 3} other pick{'s' * (len(counts) > 4)} in {sum(n for _, n in counts[3:])}"
            )
        end = f"on all labelled videos {' + '.join(final[t]['pick'])}" if t in final else ""
        lines.append(f"{t}: " + "; ".join(x for x in (said, end) if x))
    return lines
