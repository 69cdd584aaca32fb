"""The GBT ensemble: XGBoost + LightGBM + CatBoost over a feature matrix built from the store, tuned
with Optuna on grouped inner cross-validation, beside two members on the full (unreduced) matrix,
a ridge and an RBF kernel ridge, combined by rank averaging, a stacked ridge or the best member.

    model = GBTEnsemble.from_config(project.config, n_trials=10)
    model.fit(X, y)            # X: memo.store.Features, y: DataFrame ids x targets
    model.predict(X)           # DataFrame ids x targets, in [0, 1]
    model.save(folder); GBTEnsemble.load(folder)

Its parts live beside it: memo.baselines.blocks turns streams into matrices (`BlockBuilder`),
memo.baselines.members makes, and tunes, each member. How one `fit` reads top to bottom (every
step sees the training data it was given, nothing else; memo.evaluation.compare calls it once per
outer fold, so the outer fold never reaches any of it):
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
its percentile among that member's inner out-of-fold predictions, the percentiles are averaged
(memo.metrics.rank_average), and the average is mapped back to a score through the training
targets' quantiles, so the output is on the target's scale (MSE stays meaningful) and one video
alone gets the same score as in a batch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd

from memo.baselines.blocks import BlockBuilder

# The public names of these two classes in saved models (baselines/persist.py SAFE_CLASSES) are
# memo.baselines.gbt.BlockBuilder and memo.baselines.gbt.RBFKernelRidge, so saved GBTs keep loading.
from memo.baselines.members import (
    FULL,
    MEMBERS,
    SEARCH_VERSION,
    RBFKernelRidge,  # noqa: F401, E402
    default_params,
    inner_predict,
    make_member,
    member_contributions,
    member_matrix,
    searched,
    tune_grid,
    tune_trees,
)
from memo.config import Ensemble, GBTConfig, Reduce
from memo.errors import ConfigError, MemoError
from memo.metrics import rank_average, spearman
from memo.predictors import PREDICTORS, Predictor, contribution_table, explanation_frame
from memo.splits import grouped_kfold
from memo.store import Features, library_versions

# what the GBT reads when nothing narrower is asked for ([gbt] streams' default); a stream these videos
# lack is skipped with a note
DEFAULT_STREAMS = tuple(GBTConfig().streams)
REDUCERS = get_args(Reduce)  # [gbt] reduce, from memo.config's Literal
ENSEMBLES = get_args(Ensemble)  # [gbt] ensemble


@PREDICTORS.register("gbt")
class GBTEnsemble(Predictor):
    """XGBoost + LightGBM + CatBoost (Optuna-tuned on grouped inner CV) + ridge and RBF kernel ridge on the
    full blocks; rank-averaged, stacked or the best."""

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

    config_section = "gbt"

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        return super().config_params(config, overrides) | {
            "fixed": dict(config.gbt.fixed) or None,
            "study_dir": str(config.resolve(config.project.workdir) / "studies"),
        }

    # -- checks
    def _check_params(self) -> None:
        bad = [m for m in self.members if m not in MEMBERS]
        if bad or not self.members:
            raise ConfigError(f"[gbt] members has {bad or '[]'}; choose one or more of {', '.join(MEMBERS)}.")
        if self.reduce not in REDUCERS:
            raise ConfigError(f"[gbt] reduce is {self.reduce!r}; choose one of {', '.join(REDUCERS)}.")
        if self.ensemble not in ENSEMBLES:
            raise ConfigError(f"[gbt] ensemble is {self.ensemble!r}; choose one of {', '.join(ENSEMBLES)}.")
        unknown = {
            f"{m}.{k}"
            for m, kv in (self.fixed or {}).items()
            for k in kv
            if m not in MEMBERS or k not in {*searched(m), *default_params(m)}
        }
        if unknown:
            known = "; ".join(f"{m}: {', '.join(searched(m))}" for m in MEMBERS)
            raise ConfigError(
                f"[gbt] fixed names {', '.join(sorted(unknown))}, which no member takes; pin one of "
                f"these instead ({known})."
            )
        if self.inner_folds < 2:
            raise ConfigError(
                f"[gbt] inner_folds is {self.inner_folds}; tuning needs at least 2 inner folds."
            )

    # -- fit
    def fit(self, X: Features, y: pd.DataFrame) -> GBTEnsemble:
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
        self.full_builder_ = (
            BlockBuilder(list(self.streams), "none", 0, seed).fit(X)
            if set(FULL) & set(self.members)
            else None
        )
        mats = self._matrices(X)  # {"reduced": (N, F), "full": (N, F_full)}
        inner = self._inner_folds(X, mats, seed)

        self.params_: dict[str, dict[str, dict[str, Any]]] = {}
        self.models_: dict[str, dict[str, Any]] = {}
        self.inner_scores_: dict[str, dict[str, float]] = {}
        self.combiner_: dict[str, dict[str, Any]] = {}
        self.y_sorted_: dict[str, np.ndarray] = {}
        steps = tqdm(
            total=len(self.targets_) * len(self.members), desc="gbt: tune + fit", leave=False, disable=None
        )
        for t_i, target in enumerate(self.targets_):
            yt = pd.to_numeric(y[target], errors="coerce").to_numpy(float)
            keep = np.isfinite(yt)
            if keep.sum() < 4:
                raise MemoError(
                    f"target {target} has {int(keep.sum())} labelled videos; the GBT ensemble needs at "
                    "least 4."
                )
            self.y_sorted_[target] = np.sort(yt[keep])
            self.params_[target], self.models_[target], self.inner_scores_[target] = {}, {}, {}
            oof = {}
            for m_i, member in enumerate(self.members):
                oof[member] = self._fit_member(
                    member, target, yt, keep, inner, mats, X, member_seed=seed * 1000 + 17 * t_i + m_i
                )
                steps.update()
            self.combiner_[target] = self._choose_combiner(target, oof, yt, keep, inner)
        steps.close()
        return self

    def _matrices(self, X: Features) -> dict[str, np.ndarray]:
        out = {"reduced": self.builder_.transform(X)}
        if getattr(self, "full_builder_", None) is not None:
            # float64: a video alone scores as in a batch
            out["full"] = self.full_builder_.transform(X).astype(np.float64)
        return out

    def _inner_folds(self, X: Features, mats: dict[str, np.ndarray], seed: int) -> list:
        """Inner folds grouped by brand: (train rows, validation rows, {matrix: (train, validation)}),
        builders refitted on each inner training part."""
        n_groups = len(np.unique(X.groups))
        k = min(self.inner_folds, n_groups)
        if k < 2:
            raise MemoError(
                f"the training data has {n_groups} group(s); the GBT ensemble needs at least 2 for its "
                "inner folds."
            )
        inner = []
        for tr, va in grouped_kfold(X.groups, n_splits=k, seed=seed):
            Xtr, Xva = X.take(tr), X.take(va)
            b = BlockBuilder(list(self.streams), self.reduce, self.components, seed).fit(Xtr)
            m = {"reduced": (b.transform(Xtr), b.transform(Xva))}
            # no reducer: the full matrix is the same whichever rows fit it
            if self.full_builder_ is not None:
                m["full"] = (mats["full"][tr], mats["full"][va])
            inner.append((tr, va, m))
        return inner

    def _fit_member(self, member, target, yt, keep, inner, mats, X, member_seed) -> np.ndarray:
        """Tune one member for one target, record its inner score, refit it on every labelled row; returns its
        (N,) inner out-of-fold predictions."""
        fixed = (self.fixed or {}).get(member, {})
        if member in FULL:  # a small fixed grid per target: cheap, so always searched
            params = tune_grid(member, yt, inner, fixed)
        elif self.n_trials > 0:
            params = tune_trees(
                member,
                yt,
                inner,
                member_seed,
                n_trials=self.n_trials,
                timeout=self.timeout,
                study_name=self._study_name(member, target, X, inner),
                study_dir=self.study_dir,
                fixed=fixed,
                threads=self.threads,
                device=self.device,
            )
        else:
            params = {**default_params(member), **fixed}
        self.params_[target][member] = params
        # (N,), NaN where unlabelled
        oof = inner_predict(member, params, yt, inner, member_seed, self.threads, self.device)
        self.inner_scores_[target][member] = spearman(yt[keep], oof[keep])
        F = mats[member_matrix(member)]
        self.models_[target][member] = make_member(
            member, params, member_seed, self.threads, self.device
        ).fit(F[keep], yt[keep])
        return oof

    def _study_name(self, member: str, target: str, X: Features, inner) -> str:
        """Same data, folds and settings -> same study, so a killed run resumes; anything else -> a new
        one."""
        blob = json.dumps(
            [
                SEARCH_VERSION,
                member,
                target,
                sorted(X.ids),
                [sorted(map(int, va)) for _, va, _ in inner],
                self.feature_names_,
                list(self.streams),
                self.reduce,
                self.components,
                int(self.random_state),
                self.fixed,
            ],
            default=str,
        )
        return f"gbt-{member}-{target}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    # -- combining the members
    def _choose_combiner(self, target, oof, yt, keep, inner) -> dict[str, Any]:
        """Rank average or stacked ridge, whichever scores better on the inner folds (or as configured)."""
        from sklearn.linear_model import Ridge

        names = list(oof)
        P = np.stack([oof[m] for m in names], axis=1)[keep]  # (n, M) inner out-of-fold predictions
        yk = yt[keep]
        refs = {m: np.sort(P[:, j]) for j, m in enumerate(names)}
        rank_pred = rank_average(P.T, references=[refs[m] for m in names], scale="percentile")  # (n,)
        rank_score = spearman(yk, rank_pred)
        # the stack's own score is cross-validated on the same inner folds (a ridge scored on its training
        # rows flatters itself)
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
        # the first of rank, stack, best with the highest inner score (ties keep the earlier)
        if choice == "auto":
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
            # (N, M)
            P = np.stack(
                [self.models_[target][m].predict(mats[member_matrix(m)]) for m in c["members"]], axis=1
            )
            if c["kind"] == "stack":
                pred = c["ridge"].predict(P)
            elif c["kind"] == "best":
                pred = P[:, c["members"].index(c["best"])]
            # each member's percentile among its inner out-of-fold predictions, averaged, onto the targets'
            # quantiles
            else:
                # (N,)
                pct = rank_average(P.T, references=[c["refs"][m] for m in c["members"]], scale="percentile")
                pred = np.quantile(self.y_sorted_[target], pct)
            out[target] = np.clip(np.nan_to_num(pred, nan=float(np.median(self.y_sorted_[target]))), 0.0, 1.0)
        return pd.DataFrame(out, index=pd.Index(list(X.ids), name="id"))

    def explain(self, X: Features) -> pd.DataFrame:
        """The members' own per-feature contributions (memo.baselines.members.member_contributions) combined
        as the ensemble combines their predictions (memo.predictors' explanation protocol): the stacked
        ridge's weights, the best member alone, or for the rank average the plain mean of the members
        (approximate: attrs["exact"] is False). Members without contributions (the kernel) are left out of
        the mean; a stack or best that needs one leaves that target unexplained."""
        mats = self._matrices(X)
        names = {"reduced": self.feature_names_}
        if getattr(self, "full_builder_", None) is not None:
            names["full"] = self.full_builder_.feature_names_
        parts, exact = [], True
        for target in self.targets_:
            c = self.combiner_[target]
            weights = (
                dict(zip(c["members"], c["ridge"].coef_))
                if c["kind"] == "stack"
                else {c["best"]: 1.0}
                if c["kind"] == "best"
                else dict.fromkeys(c["members"], 1.0)
            )
            got = {}
            for m, w in weights.items():
                if w != 0:
                    mat = member_matrix(m)
                    got[m] = member_contributions(m, self.models_[target][m], mats[mat], names[mat])
            if c["kind"] != "rank" and any(v is None for v in got.values()):
                continue  # the stack or the best member needs a member with no contributions
            got = {m: v for m, v in got.items() if v is not None}
            if not got and c["kind"] == "stack":  # every weight 0: the stack predicts its intercept
                parts.append(
                    contribution_table(X.ids, target, [], np.zeros((len(X), 0)), c["ridge"].intercept_)
                )
            if not got:
                continue
            if c["kind"] == "rank":
                weights, exact = {m: 1.0 / len(got) for m in got}, False
            base = float(c["ridge"].intercept_) if c["kind"] == "stack" else 0.0
            for m, (C, b, cols) in got.items():
                part = contribution_table(X.ids, target, cols, weights[m] * C, weights[m] * b + base)
                parts.append(part)
                base = 0.0  # the stack's intercept once
        out = explanation_frame(parts, exact)
        # one row per (id, target, feature): members that read the same column add up
        grouped = out.groupby(["id", "target", "feature"], sort=False, as_index=False)["contribution"].sum()
        grouped.attrs["exact"] = out.attrs["exact"]
        return grouped

    def member_predict(self, X: Features, member: str) -> pd.DataFrame:
        """One member's own predictions (to compare the ensemble with its parts)."""
        F = self._matrices(X)[member_matrix(member)]
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
            "ensemble": {
                t: c["kind"] + (f" ({c['best']})" if c["kind"] == "best" else "")
                for t, c in getattr(self, "combiner_", {}).items()
            },
            "inner_cv_spearman": getattr(self, "inner_scores_", {}),
            "versions": library_versions(),
        }

    def save(self, folder: str | Path) -> Path:
        """model.npz: every member in its library's own format, the rest as JSON and arrays (no pickle;
        memo.baselines.persist)."""
        from memo.baselines.persist import save_state

        return save_state(self, folder)

    @classmethod
    def load(cls, folder: str | Path) -> GBTEnsemble:
        from memo.baselines.persist import load_state

        return load_state(cls, folder)
