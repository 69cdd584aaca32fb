"""The GBT ensemble: XGBoost + LightGBM + CatBoost over a feature matrix built from the store, tuned
with Optuna on grouped inner cross-validation, beside two members on the full (unreduced) matrix,
a ridge and an RBF kernel ridge, combined by rank averaging, a stacked ridge or the best member.

    model = GBTEnsemble.from_config(project.config, n_trials=10)
    model.fit(X, y)            # X: memo.store.Features, y: DataFrame ids x targets
    model.predict(X)           # DataFrame ids x targets, in [0, 1]
    model.save(folder); GBTEnsemble.load(folder)

How one `fit` reads top to bottom (every step sees the training data it was given, nothing else;
memo.evaluate calls it once per outer fold, so the outer fold never reaches any of it):
1. `BlockBuilder` turns streams into one matrix: a vector stream (1, D) is taken as it is, a
   sequence (T, D) becomes mean, std, max, first and last row (5 D); an unnamed stream wider than
   `components` is standardised and reduced by PCA (or truncated SVD) fitted on these rows only;
   named streams (metadata, stats, ratings) stay whole. A missing video is a NaN row (the three
   libraries route NaN natively). A stream with no rows here (VIDEM's organiser features exist for
   the test split only) is left out and said so in `notes_`.
2. Inner grouped folds (by brand) over the training data; the builder is refitted on each inner
   training part, so tuning never sees PCA fitted on its own validation rows.
3. Per target and member: Optuna TPE over a small search space, objective = mean inner Spearman,
   the running mean reported after each inner fold so a median pruner stops hopeless trials.
   Studies live in SQLite (`study_dir`), named by a fingerprint of the data and settings, so a
   killed run resumes where it stopped; each trial's sampler is seeded by (seed, trial number), so
   a resumed study draws the same trials as an uninterrupted one (given the trial budget ends
   tuning, not the time budget).
4. Out-of-fold predictions of every tuned member on the inner folds choose the combination
   (`ensemble="auto"`): rank averaging, or a ridge with non-negative weights stacked on them.
   The ridge and kernel members read the full matrix (every embedding dimension, standardised)
   and pick their penalty (and kernel width) from a small grid on the same inner folds.
5. Members are refitted on all the training data with their tuned parameters.

Rank averaging is made independent of the batch being predicted: a member's prediction becomes
its percentile among that member's inner out-of-fold predictions, the percentiles are averaged,
and the average is mapped back to a score through the training targets' quantiles, so the output
is on the target's scale (MSE stays meaningful) and one video alone gets the same score as in a
batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from memo.errors import ConfigError, MemoError
from memo.metrics import spearman
from memo.predictors import PREDICTORS, Predictor
from memo.splits import grouped_kfold
from memo.store import Features
from memo.streams import ABSOLUTE_STREAM, matches, select

# what the GBT reads when nothing narrower is asked for; a stream these videos lack is skipped with a note
DEFAULT_STREAMS = ("metadata", "cues", "e5", "stats", "ratings", "organiser", "vit", "audio", "rationale")
MEMBERS = ("xgboost", "lightgbm", "catboost", "ridge", "kernel")
TREES = ("xgboost", "lightgbm", "catboost")  # members that read the reduced matrix and are tuned by Optuna
FULL = ("ridge", "kernel")  # members that read the full matrix and are tuned on a fixed grid
REDUCERS = ("pca", "svd", "none")
ENSEMBLES = ("auto", "rank", "stack", "best")
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))  # grid for the linear member, on standardised columns
# grids of the full-matrix members, searched exhaustively on the inner folds (cheap next to the trees).
# kernel gamma is per feature: the RBF width is gamma / F on standardised columns, so one grid fits any F
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "ridge": {"alpha": RIDGE_ALPHAS},
    "kernel": {"alpha": (0.3, 1.0, 3.0, 10.0), "gamma": (0.25, 0.5, 1.0)},
}
SEQUENCE_STATS = ("mean", "std", "max", "first", "last")
SEARCH_VERSION = 1  # bump when a search space changes, so old studies are not resumed into new ones

# numeric columns of memo.data's tables that may be features when the store has no `metadata`
# stream; counts are heavy-tailed, so they enter as log1p. Targets, n_annotations and the group
# are never in this list (a label weight and the brand are not features).
TABLE_METADATA = {
    "duration": "log", "views": "log", "likes": "log", "dislikes": "log", "favourites": "log",
    "comments": "log", "engagements": "log", "engagement_rate": "raw", "category_id": "raw",
}  # fmt: skip


def table_metadata(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(N, K) numeric metadata from the split table itself, for when the store has no `metadata` stream."""
    cols, names = [], []
    for c, how in TABLE_METADATA.items():
        if c in table:
            v = pd.to_numeric(table[c], errors="coerce").to_numpy(float)
            cols.append(np.log1p(np.clip(v, 0, None)) if how == "log" else v)
            names.append(f"log_{c}" if how == "log" else c)
    if not cols:
        return np.zeros((len(table), 0), np.float32), []
    return np.stack(cols, axis=1).astype(np.float32), names


def aggregate(values: np.ndarray, mask: np.ndarray, sequence: bool) -> np.ndarray:
    """(N, T, D) + (N, T) mask -> (N, D) for vectors or (N, 5 D) for sequences; NaN rows where missing."""
    present = mask.any(axis=1)  # (N,)
    if not sequence:
        first = np.argmax(mask, axis=1)
        out = values[np.arange(len(values)), first].astype(np.float64)  # (N, D)
        out[~present] = np.nan
        return out
    m = mask[..., None]  # (N, T, 1)
    n = np.maximum(m.sum(axis=1), 1)  # (N, 1)
    mean = (values * m).sum(axis=1) / n  # (N, D)
    var = (((values - mean[:, None]) ** 2) * m).sum(axis=1) / n
    mx = np.where(m, values, -np.inf).max(axis=1)
    rows = np.arange(len(values))
    first = values[rows, np.argmax(mask, axis=1)]
    last = values[rows, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)]
    out = np.concatenate([mean, np.sqrt(var), mx, first, last], axis=1).astype(np.float64)  # (N, 5 D)
    out[~present] = np.nan
    return out


class BlockBuilder:
    """Features -> (N, F) float matrix; everything it learns (means, PCA) comes from `fit`'s rows only."""

    def __init__(self, streams: list[str], reduce: str = "pca", components: int = 16, seed: int = 0):
        self.streams = streams  # selectors (memo.streams)
        self.reduce = reduce
        self.components = components
        self.seed = seed

    def fit(self, X: Features) -> "BlockBuilder":
        from sklearn.decomposition import PCA, TruncatedSVD

        self.parts_: list[dict[str, Any]] = []
        self.notes_: list[str] = []
        for name in sorted(select(self.streams, X.streams, strict=False)):
            s = X.streams[name]
            present = s.present
            if not present.any():
                self.notes_.append(f"stream {name} has no rows in the training data (it may exist for the test split only); left out.")
                continue
            sequence = s.values.shape[1] > 1
            A = aggregate(s.values, s.mask, sequence)  # (N, D) or (N, 5 D)
            base = s.names or [str(j) for j in range(s.dim)]
            names = [f"{name}:{stat}:{c}" for stat in SEQUENCE_STATS for c in base] if sequence else [f"{name}:{c}" for c in base]
            part: dict[str, Any] = {"stream": name, "sequence": sequence, "reducer": None, "mu": None, "sd": None, "width": A.shape[1]}
            rows = A[present]
            if s.names is None and self.reduce != "none" and A.shape[1] > self.components and len(rows) > 2:
                k = int(min(self.components, len(rows) - 1, A.shape[1]))
                if self.reduce == "pca":
                    mu, sd = rows.mean(axis=0), rows.std(axis=0) + 1e-8
                    part["mu"], part["sd"] = mu, sd
                    part["reducer"] = PCA(n_components=k, random_state=self.seed).fit((rows - mu) / sd)
                else:  # truncated SVD works on raw (uncentred) rows, as for sparse or non-negative data
                    part["reducer"] = TruncatedSVD(n_components=k, random_state=self.seed).fit(rows)
                names = [f"{name}:{self.reduce}{j}" for j in range(k)]
            part["names"] = names
            self.parts_.append(part)
        if any(matches(ABSOLUTE_STREAM, b) for b in self.streams) and ABSOLUTE_STREAM not in X.streams:
            M, names = table_metadata(X.table)
            if names:
                self.parts_.append({"stream": "<table metadata>", "names": [f"{ABSOLUTE_STREAM}:{n}" for n in names], "width": len(names)})
        for b in self.streams:
            if not any(matches(p["stream"], b) or (p["stream"] == "<table metadata>" and matches(ABSOLUTE_STREAM, b)) for p in self.parts_):
                self.notes_.append(f"stream {b}: none of these videos has it; skipped.")
        if not self.parts_:
            raise MemoError(
                f"none of the GBT streams {', '.join(self.streams)} has any feature for these videos; "
                "compute features first (`memo features`), or change [gbt] streams in memo.toml."
            )
        return self

    @property
    def stream_widths_(self) -> dict[str, int]:
        """stream -> columns read from it (before any reduction): what the manifest records."""
        return {(ABSOLUTE_STREAM if p["stream"] == "<table metadata>" else p["stream"]): int(p["width"]) for p in self.parts_}

    @property
    def feature_names_(self) -> list[str]:
        return [n for p in self.parts_ for n in p["names"]]

    def transform(self, X: Features) -> np.ndarray:
        cols = []
        for part in self.parts_:
            if part["stream"] == "<table metadata>":
                M, names = table_metadata(X.table)
                got = dict(zip(names, M.T))
                cols.append(np.stack([got.get(n.split(":", 1)[1], np.full(len(X), np.nan)) for n in part["names"]], axis=1))
                continue
            s = X.streams.get(part["stream"])
            if s is None:  # fitted on a stream this X lacks: all missing, which the trees handle
                cols.append(np.full((len(X), len(part["names"])), np.nan))
                continue
            A = aggregate(s.values, s.mask, part["sequence"])
            if part["reducer"] is not None:
                present = ~np.isnan(A).any(axis=1)
                Z = np.full((len(A), len(part["names"])), np.nan)
                if present.any():
                    rows = A[present]
                    if part["mu"] is not None:
                        rows = (rows - part["mu"]) / part["sd"]
                    Z[present] = part["reducer"].transform(rows)
                A = Z
            cols.append(A)
        return np.concatenate(cols, axis=1).astype(np.float32)  # (N, F)

    def fit_transform(self, X: Features) -> np.ndarray:
        return self.fit(X).transform(X)


# ----------------------------------------------------------------------------- members


def default_params(member: str) -> dict[str, Any]:
    """Untuned hyperparameters for small tabular data: shallow trees, slow learning, subsampling."""
    return {
        "xgboost": {"n_estimators": 300, "learning_rate": 0.03, "max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.5, "min_child_weight": 3.0, "reg_lambda": 1.0},
        "lightgbm": {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 8, "min_child_samples": 10, "subsample": 0.8, "colsample_bytree": 0.5, "reg_lambda": 1.0},
        "catboost": {"iterations": 300, "learning_rate": 0.05, "depth": 4, "l2_leaf_reg": 3.0, "rsm": 0.5},
        "ridge": {"alpha": 1000.0},
        "kernel": {"alpha": 1.0, "gamma": 0.5},
    }[member]


# tree member -> parameter -> (kind, low, high, log scale): Optuna's search spaces (SEARCH_VERSION names their version);
# ridge and kernel are searched on GRIDS
SEARCH: dict[str, dict[str, tuple[str, float, float, bool]]] = {
    "xgboost": {
        "n_estimators": ("int", 50, 600, True), "learning_rate": ("float", 0.01, 0.3, True), "max_depth": ("int", 2, 6, False),
        "subsample": ("float", 0.5, 1.0, False), "colsample_bytree": ("float", 0.2, 1.0, False),
        "min_child_weight": ("float", 1.0, 30.0, True), "reg_lambda": ("float", 1e-3, 30.0, True),
    },
    "lightgbm": {
        "n_estimators": ("int", 50, 600, True), "learning_rate": ("float", 0.01, 0.3, True), "num_leaves": ("int", 4, 32, True),
        "min_child_samples": ("int", 5, 50, True), "subsample": ("float", 0.5, 1.0, False),
        "colsample_bytree": ("float", 0.2, 1.0, False), "reg_lambda": ("float", 1e-3, 30.0, True),
    },
    "catboost": {
        "iterations": ("int", 50, 600, True), "learning_rate": ("float", 0.01, 0.3, True), "depth": ("int", 2, 6, False),
        "l2_leaf_reg": ("float", 0.5, 30.0, True), "rsm": ("float", 0.2, 1.0, False),
    },
}  # fmt: skip


def searched(member: str) -> list[str]:
    """The parameters a member's tuning searches (Optuna's SEARCH for the trees, GRIDS for ridge and kernel)."""
    return list(GRIDS[member] if member in GRIDS else SEARCH[member])


def suggest_params(member: str, trial, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """One trial's parameters: every searched parameter not pinned in `fixed`, then `fixed` on top."""
    fixed = fixed or {}
    out = {}
    for k, (kind, lo, hi, log) in SEARCH[member].items():
        if k not in fixed:
            out[k] = trial.suggest_int(k, int(lo), int(hi), log=log) if kind == "int" else trial.suggest_float(k, lo, hi, log=log)
    return {**out, **fixed}


def make_member(member: str, params: dict[str, Any], seed: int, threads: int = 1, device: str = "cpu"):
    """A fresh regressor with deterministic seeds and silent logs."""
    if member == "xgboost":
        import xgboost

        return xgboost.XGBRegressor(
            **params, tree_method="hist", n_jobs=threads, random_state=seed, verbosity=0,
            device="cuda" if str(device).startswith("cuda") else "cpu",
        )  # fmt: skip
    if member == "lightgbm":
        import lightgbm

        return lightgbm.LGBMRegressor(
            **params, subsample_freq=1, n_jobs=threads, random_state=seed, deterministic=True, force_row_wise=True, verbose=-1
        )
    if member == "catboost":
        import catboost

        return catboost.CatBoostRegressor(**params, random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False)
    if member in FULL:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # the full (unreduced) blocks: a missing video's row gets the training mean plus a 0/1 flag
        # per gappy column, every column standardised on the training rows, then one ridge (linear or RBF kernel)
        imputer = SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True)
        head = Ridge(alpha=float(params["alpha"])) if member == "ridge" else RBFKernelRidge(float(params["alpha"]), float(params["gamma"]))
        return make_pipeline(imputer, StandardScaler(), head)
    raise ConfigError(f"[gbt] members has {member!r}; choose from {', '.join(MEMBERS)}.")


class RBFKernelRidge(RegressorMixin, BaseEstimator):
    """Kernel ridge with an RBF kernel of width gamma / F for F standardised columns.

    Memory and time grow with the square of the training rows (a 10,000-video fit holds a
    10,000 x 10,000 kernel, 0.8 GB). On sentence embeddings it beats the linear ridge (Memento10k
    captions, docs/evaluation.md).
    """

    def __init__(self, alpha: float = 1.0, gamma: float = 0.5):
        self.alpha = alpha
        self.gamma = gamma

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RBFKernelRidge":
        from sklearn.kernel_ridge import KernelRidge

        self.offset_ = float(np.mean(y))  # the kernel has no intercept: centre the target instead
        self.model_ = KernelRidge(alpha=self.alpha, kernel="rbf", gamma=self.gamma / max(1, X.shape[1])).fit(X, y - self.offset_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X) + self.offset_


def _kind(member: str) -> str:
    """Which feature matrix a member reads: the reduced one (trees) or the full one (ridge, kernel)."""
    return "full" if member in FULL else "reduced"


def percentile_of(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each value among a sorted reference sample, in (0, 1)."""
    lo = np.searchsorted(reference, values, side="left")
    hi = np.searchsorted(reference, values, side="right")
    return (lo + hi + 1) / (2 * len(reference) + 2)


# ----------------------------------------------------------------------------- the ensemble


@PREDICTORS.register("gbt")
class GBTEnsemble(Predictor):
    """XGBoost + LightGBM + CatBoost (Optuna-tuned on grouped inner CV) + ridge and RBF kernel ridge on the full blocks; rank-averaged, stacked or the best."""

    name = "gbt"

    def __init__(
        self,
        streams: list[str] | tuple[str, ...] = DEFAULT_STREAMS,
        members: list[str] | tuple[str, ...] = MEMBERS,
        reduce: str = "pca",
        components: int = 16,
        n_trials: int = 20,
        timeout: float = 300.0,
        inner_folds: int = 3,
        ensemble: str = "auto",
        threads: int = 1,
        fixed: dict[str, dict[str, Any]] | None = None,
        study_dir: str | None = None,
        device: str = "cpu",
        random_state: int = 0,
    ):
        self.streams = streams  # selectors (memo.streams); a run sets them to its own streams
        self.members = members
        self.reduce = reduce
        self.components = components
        self.n_trials = n_trials
        self.timeout = timeout
        self.inner_folds = inner_folds
        self.ensemble = ensemble
        self.threads = threads
        self.fixed = fixed
        self.study_dir = study_dir
        self.device = device
        self.random_state = random_state

    @classmethod
    def from_config(cls, config, **overrides: Any) -> "GBTEnsemble":
        g = config.gbt
        params = {
            "streams": list(g.streams), "members": list(g.members), "reduce": g.reduce, "components": g.components,
            "n_trials": g.n_trials, "timeout": g.timeout, "inner_folds": g.inner_folds, "ensemble": g.ensemble,
            "threads": g.threads, "fixed": dict(g.fixed) or None, "study_dir": str(config.resolve(config.project.workdir) / "studies"),
            "random_state": config.project.seed,
        }  # fmt: skip
        params.update(overrides)
        return cls(**params)

    # -- checks
    def _check_params(self) -> None:
        bad = [m for m in self.members if m not in MEMBERS]
        if bad or not self.members:
            raise ConfigError(f"[gbt] members has {bad or '[]'}; choose one or more of {', '.join(MEMBERS)}.")
        if self.reduce not in REDUCERS:
            raise ConfigError(f"[gbt] reduce is {self.reduce!r}; choose one of {', '.join(REDUCERS)}.")
        if self.ensemble not in ENSEMBLES:
            raise ConfigError(f"[gbt] ensemble is {self.ensemble!r}; choose one of {', '.join(ENSEMBLES)}.")
        unknown = {f"{m}.{k}" for m, kv in (self.fixed or {}).items() for k in kv if m not in MEMBERS or k not in {*searched(m), *default_params(m)}}
        if unknown:
            known = "; ".join(f"{m}: {', '.join(searched(m))}" for m in MEMBERS)
            raise ConfigError(f"[gbt] fixed names {', '.join(sorted(unknown))}, which no member takes; pin one of these instead ({known}).")
        if self.inner_folds < 2:
            raise ConfigError(f"[gbt] inner_folds is {self.inner_folds}; tuning needs at least 2 inner folds.")

    # -- fit
    def fit(self, X: Features, y: pd.DataFrame) -> "GBTEnsemble":
        from tqdm.auto import tqdm

        self._check_params()
        y = y.loc[X.ids] if list(y.index) != list(X.ids) else y
        seed = int(self.random_state)
        self.targets_ = list(y.columns)
        self.builder_ = BlockBuilder(list(self.streams), self.reduce, self.components, seed).fit(X)
        self.notes_ = list(self.builder_.notes_)
        self.feature_names_ = self.builder_.feature_names_
        self.stream_widths_ = self.builder_.stream_widths_
        # the ridge and kernel members read every block whole (no PCA): all 384 E5 dimensions keep
        # what 16 components throw away, and their penalty does the job PCA does for the trees
        self.full_builder_ = BlockBuilder(list(self.streams), "none", 0, seed).fit(X) if set(FULL) & set(self.members) else None
        mats = self._matrices(X)  # {"reduced": (N, F), "full": (N, F_full)}

        # inner folds: grouped by brand, builders refitted on each inner training part
        n_groups = len(np.unique(X.groups))
        k = min(self.inner_folds, n_groups)
        if k < 2:
            raise MemoError(f"the training data has {n_groups} group(s); the GBT ensemble needs at least 2 for its inner folds.")
        inner = []
        for tr, va in grouped_kfold(X.groups, n_splits=k, seed=seed):
            Xtr, Xva = X.take(tr), X.take(va)
            b = BlockBuilder(list(self.streams), self.reduce, self.components, seed).fit(Xtr)
            m = {"reduced": (b.transform(Xtr), b.transform(Xva))}
            if self.full_builder_ is not None:  # no reducer: the full matrix is the same whichever rows fit it
                m["full"] = (mats["full"][tr], mats["full"][va])
            inner.append((tr, va, m))

        self.params_: dict[str, dict[str, dict[str, Any]]] = {}
        self.models_: dict[str, dict[str, Any]] = {}
        self.inner_scores_: dict[str, dict[str, float]] = {}
        self.combiner_: dict[str, dict[str, Any]] = {}
        self.y_sorted_: dict[str, np.ndarray] = {}
        steps = tqdm(total=len(self.targets_) * len(self.members), desc="gbt: tune + fit", leave=False, disable=None)
        for t_i, target in enumerate(self.targets_):
            yt = pd.to_numeric(y[target], errors="coerce").to_numpy(float)
            keep = np.isfinite(yt)
            if keep.sum() < 4:
                raise MemoError(f"target {target} has {int(keep.sum())} labelled videos; the GBT ensemble needs at least 4.")
            self.y_sorted_[target] = np.sort(yt[keep])
            oof = {}
            self.params_[target], self.models_[target], self.inner_scores_[target] = {}, {}, {}
            for m_i, member in enumerate(self.members):
                member_seed = seed * 1000 + 17 * t_i + m_i
                fixed = (self.fixed or {}).get(member, {})
                if member in FULL:  # a small fixed grid per target: cheap, so always searched
                    params = self._tune_grid(member, yt, inner, fixed)
                elif self.n_trials > 0:
                    params = self._tune(member, target, yt, inner, X, member_seed)
                else:
                    params = {**default_params(member), **fixed}
                self.params_[target][member] = params
                oof[member] = self._inner_predict(member, params, yt, inner, member_seed)  # (N,), NaN where unlabelled
                self.inner_scores_[target][member] = spearman(yt[keep], oof[member][keep])
                F = mats[_kind(member)]
                self.models_[target][member] = make_member(member, params, member_seed, self.threads, self.device).fit(F[keep], yt[keep])
                steps.update()
            self.combiner_[target] = self._choose_combiner(target, oof, yt, keep, inner)
        steps.close()
        return self

    def _matrices(self, X: Features) -> dict[str, np.ndarray]:
        out = {"reduced": self.builder_.transform(X)}
        if getattr(self, "full_builder_", None) is not None:
            out["full"] = self.full_builder_.transform(X).astype(np.float64)  # float64: a video alone scores as in a batch
        return out

    def _tune_grid(self, member, yt, inner, fixed) -> dict[str, Any]:
        """The GRIDS point with the best mean inner Spearman (parameters pinned in `fixed` are not searched)."""
        import itertools

        grid = {k: v for k, v in GRIDS[member].items() if k not in fixed}
        best, best_score = default_params(member), -np.inf
        for values in itertools.product(*grid.values()):
            params = {**default_params(member), **dict(zip(grid, values)), **fixed}
            scores = []
            for tr, va, m in inner:
                Gtr, Gva = m["full"]
                ok_tr, ok_va = np.isfinite(yt[tr]), np.isfinite(yt[va])
                pred = make_member(member, params, 0).fit(Gtr[ok_tr], yt[tr][ok_tr]).predict(Gva[ok_va])
                s = spearman(yt[va][ok_va], pred)
                scores.append(s if np.isfinite(s) else 0.0)
            if np.mean(scores) > best_score:  # ties keep the earlier (smaller) grid point
                best, best_score = params, float(np.mean(scores))
        return {**best, **fixed}

    def _inner_predict(self, member, params, yt, inner, seed) -> np.ndarray:
        oof = np.full(len(yt), np.nan)
        for tr, va, m in inner:
            Ftr, Fva = m[_kind(member)]
            ok = np.isfinite(yt[tr])
            oof[va] = make_member(member, params, seed, self.threads, self.device).fit(Ftr[ok], yt[tr][ok]).predict(Fva)
        return oof

    def _study_name(self, member: str, target: str, X: Features, inner) -> str:
        """Same data, folds and settings -> same study, so a killed run resumes; anything else -> a new one."""
        blob = json.dumps(
            [SEARCH_VERSION, member, target, sorted(X.ids), [sorted(map(int, va)) for _, va, _ in inner], self.feature_names_,
             list(self.streams), self.reduce, self.components, int(self.random_state), self.fixed],
            default=str,
        )  # fmt: skip
        return f"gbt-{member}-{target}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def _tune(self, member, target, yt, inner, X, seed) -> dict[str, Any]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = None
        if self.study_dir:
            Path(self.study_dir).mkdir(parents=True, exist_ok=True)
            storage = f"sqlite:///{Path(self.study_dir).resolve() / 'gbt.sqlite3'}"
        try:
            study = optuna.create_study(
                study_name=self._study_name(member, target, X, inner),
                storage=storage,
                direction="maximize",
                load_if_exists=True,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
            )
        except Exception as e:  # sqlalchemy's DatabaseError wraps sqlite3's: a damaged, foreign or busy study file
            import sqlite3

            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(e, (SQLAlchemyError, sqlite3.DatabaseError)):
                raise
            path = Path(self.study_dir).resolve() / "gbt.sqlite3"
            cause = str(getattr(e, "orig", None) or e).splitlines()[0]
            if "locked" in cause:
                raise MemoError(f"the Optuna study file {path} is locked by another process ({cause}); wait for it to finish, then run again.") from e
            raise MemoError(f"the Optuna study file {path} cannot be opened ({cause}); "
                            "delete it to start tuning over (nothing else is lost), or restore it from a backup.") from e

        def objective(trial):
            params = {**default_params(member), **suggest_params(member, trial, (self.fixed or {}).get(member))}
            scores = []
            for step, (tr, va, m) in enumerate(inner):
                Ftr, Fva = m["reduced"]
                ok_tr, ok_va = np.isfinite(yt[tr]), np.isfinite(yt[va])
                model = make_member(member, params, seed, self.threads, self.device).fit(Ftr[ok_tr], yt[tr][ok_tr])
                s = spearman(yt[va][ok_va], model.predict(Fva[ok_va]))
                scores.append(s if np.isfinite(s) else 0.0)
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return float(np.mean(scores))

        done = lambda: [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]  # noqa: E731
        start = time.monotonic()
        while len(done()) < self.n_trials and time.monotonic() - start < self.timeout:
            # one trial at a time, its sampler seeded by the trial count: resuming draws what an unbroken run draws
            study.sampler = optuna.samplers.TPESampler(seed=seed * 7919 + len(done()), n_startup_trials=min(8, max(2, self.n_trials // 3)))
            study.optimize(objective, n_trials=1)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        fixed = (self.fixed or {}).get(member, {})
        if not complete:
            return {**default_params(member), **fixed}
        best = max(complete, key=lambda t: (t.value, -t.number))
        return {**default_params(member), **best.params, **fixed}

    def _choose_combiner(self, target, oof, yt, keep, inner) -> dict[str, Any]:
        """Rank average or stacked ridge, whichever scores better on the inner folds (or as configured)."""
        from sklearn.linear_model import Ridge

        names = list(oof)
        P = np.stack([oof[m] for m in names], axis=1)[keep]  # (n, M) inner out-of-fold predictions
        yk = yt[keep]
        refs = {m: np.sort(P[:, j]) for j, m in enumerate(names)}
        rank_pred = np.mean([percentile_of(refs[m], P[:, j]) for j, m in enumerate(names)], axis=0)
        rank_score = spearman(yk, rank_pred)
        # the stack's own score is cross-validated on the same inner folds (a ridge scored on its training rows flatters itself)
        pos = np.flatnonzero(keep)
        fold_of = np.full(len(yt), -1)
        for f, (_, va, _) in enumerate(inner):
            fold_of[va] = f
        fk = fold_of[pos]
        stack_pred = np.zeros(len(yk))
        for f in np.unique(fk):
            tr = fk != f
            stack_pred[~tr] = Ridge(alpha=1.0, positive=True).fit(P[tr], yk[tr]).predict(P[~tr])
        stack_score = spearman(yk, stack_pred)
        member_scores = {m: spearman(yk, P[:, j]) for j, m in enumerate(names)}
        best_member = max(names, key=lambda m: np.nan_to_num(member_scores[m], nan=-2))
        candidates = {"rank": rank_score, "stack": stack_score, "best": member_scores[best_member]}
        choice = self.ensemble
        if choice == "auto":  # the first of rank, stack, best with the highest inner score (ties keep the earlier)
            choice = max(candidates, key=lambda c: np.nan_to_num(candidates[c], nan=-2))
        self.inner_scores_[target]["rank"] = rank_score
        self.inner_scores_[target]["stack"] = stack_score
        ridge = Ridge(alpha=1.0, positive=True).fit(P, yk)
        return {"kind": choice, "members": names, "refs": refs, "ridge": ridge, "best": best_member}

    # -- predict
    def predict(self, X: Features) -> pd.DataFrame:
        if not hasattr(self, "models_"):
            raise MemoError("this GBT ensemble is not fitted; call fit (or `memo train gbt`) first.")
        mats = self._matrices(X)
        out = {}
        for target in self.targets_:
            c = self.combiner_[target]
            P = np.stack([self.models_[target][m].predict(mats[_kind(m)]) for m in c["members"]], axis=1)  # (N, M)
            if c["kind"] == "stack":
                pred = c["ridge"].predict(P)
            elif c["kind"] == "best":
                pred = P[:, c["members"].index(c["best"])]
            else:
                pct = np.mean([percentile_of(c["refs"][m], P[:, j]) for j, m in enumerate(c["members"])], axis=0)
                pred = np.quantile(self.y_sorted_[target], pct)
            out[target] = np.clip(np.nan_to_num(pred, nan=float(np.median(self.y_sorted_[target]))), 0.0, 1.0)
        return pd.DataFrame(out, index=pd.Index(list(X.ids), name="id"))

    def member_predict(self, X: Features, member: str) -> pd.DataFrame:
        """One member's own predictions (to compare the ensemble with its parts)."""
        F = self._matrices(X)[_kind(member)]
        out = {t: np.clip(self.models_[t][member].predict(F), 0.0, 1.0) for t in self.targets_}
        return pd.DataFrame(out, index=pd.Index(list(X.ids), name="id"))

    # -- persistence
    def describe(self) -> dict[str, Any]:
        """What was fitted, for the saved metadata: parameters, features, notes, inner CV scores, versions."""
        return {
            "predictor": self.name,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()},
            "targets": getattr(self, "targets_", []),
            "features": getattr(self, "feature_names_", []),
            "notes": getattr(self, "notes_", []),
            "tuned_params": getattr(self, "params_", {}),
            "ensemble": {t: c["kind"] + (f" ({c['best']})" if c["kind"] == "best" else "") for t, c in getattr(self, "combiner_", {}).items()},
            "inner_cv_spearman": getattr(self, "inner_scores_", {}),
            "versions": library_versions(),
        }

    def save(self, folder: str | Path) -> Path:
        """model.npz: every member in its library's own format, the rest as JSON and arrays (no pickle; memo.baselines.persist)."""
        from memo.baselines.persist import save_state

        return save_state(self, folder)

    @classmethod
    def load(cls, folder: str | Path) -> "GBTEnsemble":
        from memo.baselines.persist import load_state

        return load_state(cls, folder)


def library_versions() -> dict[str, str]:
    from memo.store import package_versions

    return package_versions(("memo", "numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "catboost", "optuna"))
