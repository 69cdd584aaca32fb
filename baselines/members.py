"""The GBT ensemble's members: how each is made, what its hyperparameters may be, and how they are tuned.

    model = make_member("lightgbm", default_params("lightgbm"), seed=0)      # an unfitted regressor
    params = tune_grid("ridge", y, inner, fixed={})                          # ridge and kernel: a small grid
    params = tune_trees("xgboost", y, inner, seed=0, n_trials=20, timeout=300.0,
                        study_name="gbt-xgboost-...", study_dir="work/studies")  # the trees: Optuna
    oof = inner_predict("catboost", params, y, inner, seed=0)                # (N,) out-of-fold predictions

`inner` is the list of inner folds the ensemble builds: (train rows, validation rows, matrices),
where matrices maps "reduced" (what the trees read) and "full" (what ridge and kernel read) to a
(train, validation) pair of feature matrices; `member_matrix(member)` says which one a member reads.

Trees: Optuna TPE over SEARCH, objective = mean inner Spearman, the running mean reported after each
inner fold so a median pruner stops hopeless trials. Studies live in SQLite (`study_dir`) under a
name that fingerprints the data and settings, so a killed run resumes where it stopped; each trial's
sampler is seeded by (seed, trial number), so a resumed study draws the same trials as an
uninterrupted one (given the trial budget ends tuning, not the time budget).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, get_args

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from memo.config import GBTMember
from memo.errors import ConfigError, MemoError
from memo.metrics import spearman

MEMBERS = get_args(GBTMember)  # [gbt] members, from memo.config's Literal
TREES = ("xgboost", "lightgbm", "catboost")  # members that read the reduced matrix and are tuned by Optuna
FULL = ("ridge", "kernel")  # members that read the full matrix and are tuned on a fixed grid
# grid for the linear member, on standardised columns
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))
# grids of the full-matrix members, searched exhaustively on the inner folds (cheap next to the trees).
# kernel gamma is per feature: the RBF width is gamma / F on standardised columns, so one grid fits any F
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "ridge": {"alpha": RIDGE_ALPHAS},
    "kernel": {"alpha": (0.3, 1.0, 3.0, 10.0), "gamma": (0.25, 0.5, 1.0)},
}
SEARCH_VERSION = 1  # bump when a search space changes, so old studies are not resumed into new ones


def default_params(member: str) -> dict[str, Any]:
    """Untuned hyperparameters for small tabular data: shallow trees, slow learning, subsampling."""
    return {
        "xgboost": {
            "n_estimators": 300,
            "learning_rate": 0.03,
            "max_depth": 3,
            "subsample": 0.8,
            "colsample_bytree": 0.5,
            "min_child_weight": 3.0,
            "reg_lambda": 1.0,
        },
        "lightgbm": {
            "n_estimators": 300,
            "learning_rate": 0.03,
            "num_leaves": 8,
            "min_child_samples": 10,
            "subsample": 0.8,
            "colsample_bytree": 0.5,
            "reg_lambda": 1.0,
        },
        "catboost": {"iterations": 300, "learning_rate": 0.05, "depth": 4, "l2_leaf_reg": 3.0, "rsm": 0.5},
        "ridge": {"alpha": 1000.0},
        "kernel": {"alpha": 1.0, "gamma": 0.5},
    }[member]


# tree member -> parameter -> (kind, low, high, log scale): Optuna's search spaces (SEARCH_VERSION names their
# version);
# ridge and kernel are searched on GRIDS
SEARCH: dict[str, dict[str, tuple[str, float, float, bool]]] = {
    "xgboost": {
        "n_estimators": ("int", 50, 600, True),
        "learning_rate": ("float", 0.01, 0.3, True),
        "max_depth": ("int", 2, 6, False),
        "subsample": ("float", 0.5, 1.0, False),
        "colsample_bytree": ("float", 0.2, 1.0, False),
        "min_child_weight": ("float", 1.0, 30.0, True),
        "reg_lambda": ("float", 1e-3, 30.0, True),
    },
    "lightgbm": {
        "n_estimators": ("int", 50, 600, True),
        "learning_rate": ("float", 0.01, 0.3, True),
        "num_leaves": ("int", 4, 32, True),
        "min_child_samples": ("int", 5, 50, True),
        "subsample": ("float", 0.5, 1.0, False),
        "colsample_bytree": ("float", 0.2, 1.0, False),
        "reg_lambda": ("float", 1e-3, 30.0, True),
    },
    "catboost": {
        "iterations": ("int", 50, 600, True),
        "learning_rate": ("float", 0.01, 0.3, True),
        "depth": ("int", 2, 6, False),
        "l2_leaf_reg": ("float", 0.5, 30.0, True),
        "rsm": ("float", 0.2, 1.0, False),
    },
}


def searched(member: str) -> list[str]:
    """The parameters a member's tuning searches (Optuna's SEARCH for the trees, GRIDS for ridge and
    kernel)."""
    return list(GRIDS[member] if member in GRIDS else SEARCH[member])


def suggest_params(member: str, trial, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """One trial's parameters: every searched parameter not pinned in `fixed`, then `fixed` on top."""
    fixed = fixed or {}
    out = {}
    for k, (kind, lo, hi, log) in SEARCH[member].items():
        if k not in fixed:
            out[k] = (
                trial.suggest_int(k, int(lo), int(hi), log=log)
                if kind == "int"
                else trial.suggest_float(k, lo, hi, log=log)
            )
    return {**out, **fixed}


def member_matrix(member: str) -> str:
    """Which feature matrix a member reads: the reduced one (trees) or the full one (ridge, kernel)."""
    return "full" if member in FULL else "reduced"


# ----------------------------------------------------------------------------- making one


def make_member(member: str, params: dict[str, Any], seed: int, threads: int = 1, device: str = "cpu"):
    """A fresh regressor with deterministic seeds and silent logs."""
    if member == "xgboost":
        import xgboost

        return xgboost.XGBRegressor(
            **params,
            tree_method="hist",
            n_jobs=threads,
            random_state=seed,
            verbosity=0,
            device="cuda" if str(device).startswith("cuda") else "cpu",
        )
    if member == "lightgbm":
        import lightgbm

        return lightgbm.LGBMRegressor(
            **params,
            subsample_freq=1,
            n_jobs=threads,
            random_state=seed,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
    if member == "catboost":
        import catboost

        return catboost.CatBoostRegressor(
            **params, random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False
        )
    if member in FULL:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # the full (unreduced) blocks: a missing video's row gets the training mean plus a 0/1 flag
        # per gappy column, every column standardised on the training rows, then one ridge (linear or RBF
        # kernel)
        imputer = SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True)
        head = (
            Ridge(alpha=float(params["alpha"]))
            if member == "ridge"
            else RBFKernelRidge(float(params["alpha"]), float(params["gamma"]))
        )
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

    def fit(self, X: np.ndarray, y: np.ndarray) -> RBFKernelRidge:
        from sklearn.kernel_ridge import KernelRidge

        self.offset_ = float(np.mean(y))  # the kernel has no intercept: centre the target instead
        self.model_ = KernelRidge(alpha=self.alpha, kernel="rbf", gamma=self.gamma / max(1, X.shape[1])).fit(
            X, y - self.offset_
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X) + self.offset_


# ----------------------------------------------------------------------------- why a member predicts


def member_contributions(
    member: str, model, F: np.ndarray, names: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(N, F') per-feature contributions of one fitted member on its matrix F, (N,) its base value, and the
    F' names; None for the kernel (no per-feature split). Each row plus its base is the member's
    prediction: the libraries' own contributions for the trees (XGBoost pred_contribs, LightGBM
    pred_contrib, CatBoost ShapValues), coefficient x standardised value for the ridge (a missing-value
    flag counts for its column)."""
    if member == "xgboost":
        import xgboost

        C = model.get_booster().predict(xgboost.DMatrix(F, missing=np.nan), pred_contribs=True)
        return C[:, :-1], C[:, -1], list(names)
    if member == "lightgbm":
        C = np.asarray(model.predict(F, pred_contrib=True))
        return C[:, :-1], C[:, -1], list(names)
    if member == "catboost":
        from catboost import Pool

        C = model.get_feature_importance(data=Pool(F), type="ShapValues")
        return C[:, :-1], C[:, -1], list(names)
    if member == "ridge":
        imputer, scaler, head = model[0], model[1], model[-1]
        Z = scaler.transform(imputer.transform(F))  # (N, F + flags)
        flags = (
            [names[j] for j in getattr(imputer.indicator_, "features_", [])] if imputer.add_indicator else []
        )
        return Z * head.coef_, np.full(len(F), float(head.intercept_)), [*names, *flags]
    return None


# ----------------------------------------------------------------------------- tuning on the inner folds


def inner_predict(
    member: str,
    params: dict[str, Any],
    yt: np.ndarray,
    inner,
    seed: int,
    threads: int = 1,
    device: str = "cpu",
) -> np.ndarray:
    """(N,) out-of-fold predictions of one member on the inner folds (every row; NaN targets are not trained
    on)."""
    oof = np.full(len(yt), np.nan)
    for tr, va, m in inner:
        Ftr, Fva = m[member_matrix(member)]
        ok = np.isfinite(yt[tr])
        oof[va] = make_member(member, params, seed, threads, device).fit(Ftr[ok], yt[tr][ok]).predict(Fva)
    return oof


def tune_grid(member: str, yt: np.ndarray, inner, fixed: dict[str, Any]) -> dict[str, Any]:
    """The GRIDS point with the best mean inner Spearman (parameters pinned in `fixed` are not searched)."""
    grid = {k: v for k, v in GRIDS[member].items() if k not in fixed}
    # the member's imputer and scaler do not depend on the grid point: fit them once per inner fold and
    # fit only the ridge head per point (the same numbers as refitting the whole pipeline, at a third of the
    # cost)
    folds = []
    for tr, va, m in inner:
        Gtr, Gva = m["full"]
        ok_tr, ok_va = np.isfinite(yt[tr]), np.isfinite(yt[va])
        prep = make_member(member, default_params(member), 0)[:-1].fit(Gtr[ok_tr])
        # (n_tr, F'), (n_tr,), (n_va, F'), (n_va,)
        folds.append((prep.transform(Gtr[ok_tr]), yt[tr][ok_tr], prep.transform(Gva[ok_va]), yt[va][ok_va]))
    best, best_score = default_params(member), -np.inf
    for values in itertools.product(*grid.values()):
        params = {**default_params(member), **dict(zip(grid, values)), **fixed}
        scores = []
        for Ztr, ytr, Zva, yva in folds:
            s = spearman(yva, make_member(member, params, 0)[-1].fit(Ztr, ytr).predict(Zva))
            scores.append(s if np.isfinite(s) else 0.0)
        if np.mean(scores) > best_score:  # ties keep the earlier (smaller) grid point
            best, best_score = params, float(np.mean(scores))
    return {**best, **fixed}


def open_study(study_name: str, study_dir: str | None):
    """The Optuna study of that name, resumed from <study_dir>/gbt.sqlite3 when it is there (in memory without
    a study_dir)."""
    import optuna

    storage = None
    if study_dir:
        Path(study_dir).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(study_dir).resolve() / 'gbt.sqlite3'}"
    try:
        return optuna.create_study(
            study_name=study_name,
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
    # sqlalchemy's DatabaseError wraps sqlite3's: a damaged, foreign or busy study file
    except Exception as e:
        import sqlite3

        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, (SQLAlchemyError, sqlite3.DatabaseError)):
            raise
        path = Path(study_dir).resolve() / "gbt.sqlite3"
        cause = str(getattr(e, "orig", None) or e).splitlines()[0]
        if "locked" in cause:
            raise MemoError(
                f"the Optuna study file {path} is locked by another process ({cause}); wait for it to "
                "finish, then run again."
            ) from e
        raise MemoError(
            f"the Optuna study file {path} cannot be opened ({cause}); "
            "delete it to start tuning over (nothing else is lost), or restore it from a backup."
        ) from e


def tune_trees(
    member: str,
    yt: np.ndarray,
    inner,
    seed: int,
    *,
    n_trials: int,
    timeout: float,
    study_name: str,
    study_dir: str | None = None,
    fixed: dict[str, Any] | None = None,
    threads: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """A tree member's best parameters by Optuna TPE on the inner folds (`fixed` pinned), within n_trials and
    timeout seconds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = fixed or {}
    study = open_study(study_name, study_dir)

    def objective(trial):
        params = {**default_params(member), **suggest_params(member, trial, fixed)}
        scores = []
        for step, (tr, va, m) in enumerate(inner):
            Ftr, Fva = m["reduced"]
            ok_tr, ok_va = np.isfinite(yt[tr]), np.isfinite(yt[va])
            model = make_member(member, params, seed, threads, device).fit(Ftr[ok_tr], yt[tr][ok_tr])
            s = spearman(yt[va][ok_va], model.predict(Fva[ok_va]))
            scores.append(s if np.isfinite(s) else 0.0)
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    done = lambda: [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]  # noqa: E731
    start = time.monotonic()
    while len(done()) < n_trials and time.monotonic() - start < timeout:
        # one trial at a time, its sampler seeded by the trial count: resuming draws what an unbroken run
        # draws
        study.sampler = optuna.samplers.TPESampler(
            seed=seed * 7919 + len(done()), n_startup_trials=min(8, max(2, n_trials // 3))
        )
        study.optimize(objective, n_trials=1)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return {**default_params(member), **fixed}
    best = max(complete, key=lambda t: (t.value, -t.number))
    return {**default_params(member), **best.params, **fixed}
