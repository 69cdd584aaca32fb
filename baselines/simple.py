"""Simple baselines, measured on the same folds as every real model so each number has its context.

    duration      a line through log duration (the strongest single metadata cue on VIDEM)
    metadata_gbt  one untuned LightGBM on the numeric metadata only
    text_ridge    TF-IDF (words and bigrams) of the table's text fields + ridge, the penalty chosen
                  by grouped inner CV (a leave-one-out choice would reward brand-specific words)

All three are registered predictors with the scikit-learn shape (memo.predictors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.baselines.blocks import table_metadata
from memo.baselines.gbt import GBTEnsemble
from memo.baselines.persist import load_state, save_state
from memo.errors import MemoError
from memo.metrics import spearman
from memo.predictors import BASE, EXPLANATION_COLUMNS, PREDICTORS, Predictor, explanation_frame
from memo.splits import grouped_kfold
from memo.store import Features, library_versions
from memo.streams import ABSOLUTE_STREAM


class _Simple(Predictor):
    """save/load/describe shared by the simple baselines."""

    def describe(self) -> dict[str, Any]:
        return {
            "predictor": self.name,
            "params": self.get_params(),
            "targets": getattr(self, "targets_", []),
            "notes": getattr(self, "notes_", []),
            "versions": library_versions(),
        }

    def save(self, folder: str | Path) -> Path:
        return save_state(self, folder)  # JSON and arrays, never a pickle

    @classmethod
    def load(cls, folder: str | Path):
        return load_state(cls, folder)

    def _frame(self, X: Features, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        return pd.DataFrame(
            {t: np.clip(v, 0.0, 1.0) for t, v in columns.items()}, index=pd.Index(list(X.ids), name="id")
        )


def duration_column(X: Features) -> np.ndarray:
    """(N,) log duration from the `metadata.absolute` stream (a column named *duration*), else from the
    table."""
    s = X.streams.get(ABSOLUTE_STREAM)
    if s is not None and s.names:
        j = next((j for j, n in enumerate(s.names) if "duration" in n), None)
        if j is not None:
            v = s.values[:, 0, j].astype(float)
            v[~s.present] = np.nan
            # memo.features names logged columns log1p_duration; a plain `duration` is in seconds
            return v if s.names[j].startswith("log") else np.log1p(np.clip(v, 0, None))
    M, names = table_metadata(X.table)
    return (
        M[:, names.index("log_duration")].astype(float)
        if "log_duration" in names
        else np.full(len(X), np.nan)
    )


@PREDICTORS.register("duration")
class DurationBaseline(_Simple):
    """Least-squares line through log duration; videos without a duration get the training median."""

    name = "duration"

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    streams = (ABSOLUTE_STREAM,)

    def fit(self, X: Features, y: pd.DataFrame) -> DurationBaseline:
        x = duration_column(X)
        self.targets_ = list(y.columns)
        self.notes_ = (
            []
            if np.isfinite(x).any()
            else ["no video has a duration; the baseline predicts the training mean."]
        )
        self.fill_ = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
        x = np.where(np.isfinite(x), x, self.fill_)
        self.coef_ = {}
        for t in self.targets_:
            yt = pd.to_numeric(y.loc[X.ids, t], errors="coerce").to_numpy(float)
            ok = np.isfinite(yt)
            if np.ptp(x[ok]) > 0:
                slope, intercept = np.polyfit(x[ok], yt[ok], 1)
            else:
                slope, intercept = 0.0, float(np.mean(yt[ok]))
            self.coef_[t] = (float(slope), float(intercept))
        return self

    def predict(self, X: Features) -> pd.DataFrame:
        x = duration_column(X)
        x = np.where(np.isfinite(x), x, self.fill_)
        return self._frame(X, {t: a * x + b for t, (a, b) in self.coef_.items()})


@PREDICTORS.register("metadata_gbt")
class MetadataGBT(GBTEnsemble):
    """The GBT machinery on the `metadata` block alone, one untuned LightGBM: what metadata buys."""

    name = "metadata_gbt"

    def __init__(
        self,
        members=("lightgbm",),
        n_trials: int = 0,
        inner_folds: int = 3,
        threads: int = 1,
        fixed=None,
        random_state: int = 0,
    ):
        self.members = members
        self.fixed = fixed
        self.n_trials = n_trials
        self.inner_folds = inner_folds
        self.threads = threads
        self.random_state = random_state
        # fixed, not hyperparameters of this baseline
        self.streams, self.reduce, self.components, self.timeout = [ABSOLUTE_STREAM], "none", 0, 0.0
        self.ensemble, self.study_dir, self.device = "rank", None, "cpu"

    config_section = ""  # not [gbt]'s members or trials: it is one untuned LightGBM

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        return {
            "threads": config.gbt.threads,
            "inner_folds": config.gbt.inner_folds,
            "random_state": config.project.seed,
        }


def table_text(X: Features) -> list[str]:
    """One document per video: every text field of the table, field name first (a title word is not a tag
    word)."""
    from memo.data import TEXT_FIELDS

    fields = [c for c in TEXT_FIELDS if c in X.table]
    docs = []
    for _, row in X.table[fields].iterrows():
        parts = [f"{c}: {row[c]}" for c in fields if isinstance(row[c], str) and row[c].strip()]
        docs.append(" \n ".join(parts))
    return docs


@PREDICTORS.register("text_ridge")
class TextRidge(_Simple):
    """TF-IDF of title, description, tags, transcript, captions + ridge; alpha by grouped inner CV."""

    name = "text_ridge"

    def __init__(
        self,
        alphas=(0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
        min_df: int = 2,
        max_features: int = 50000,
        inner_folds: int = 3,
        random_state: int = 0,
    ):
        self.alphas = alphas
        self.min_df = min_df
        self.max_features = max_features
        self.inner_folds = inner_folds
        self.random_state = random_state

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        return super().config_params(config, overrides) | {"inner_folds": config.gbt.inner_folds}

    def _vectorizer(self, n_docs: int):
        from sklearn.feature_extraction.text import TfidfVectorizer

        # min_df cannot exceed what a small training part holds
        return TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=min(self.min_df, max(1, n_docs // 10)),
            max_features=self.max_features,
            strip_accents="unicode",
        )

    def fit(self, X: Features, y: pd.DataFrame) -> TextRidge:
        from sklearn.linear_model import Ridge

        docs = table_text(X)
        if not any(d.strip() for d in docs):
            raise MemoError(
                "text_ridge found no text (title, description, tags, transcript, captions) in the "
                "table; it needs some."
            )
        self.targets_ = list(y.columns)
        Y = y.loc[X.ids].apply(pd.to_numeric, errors="coerce").to_numpy(float)  # (N, targets)
        k = min(self.inner_folds, len(np.unique(X.groups)))
        scores = np.zeros((len(self.alphas), Y.shape[1]))
        if k >= 2 and len(self.alphas) > 1:
            for tr, va in grouped_kfold(X.groups, n_splits=k, seed=self.random_state):
                vec = self._vectorizer(len(tr))
                A, B = vec.fit_transform([docs[i] for i in tr]), vec.transform([docs[i] for i in va])
                for a_i, alpha in enumerate(self.alphas):
                    for t in range(Y.shape[1]):
                        ok = np.isfinite(Y[tr, t])
                        pred = Ridge(alpha=alpha).fit(A[ok], Y[tr, t][ok]).predict(B)
                        okv = np.isfinite(Y[va, t])
                        s = spearman(Y[va, t][okv], pred[okv])
                        scores[a_i, t] += s if np.isfinite(s) else 0.0
        self.alpha_ = {
            t: float(self.alphas[int(np.argmax(scores[:, j]))]) for j, t in enumerate(self.targets_)
        }
        self.vectorizer_ = self._vectorizer(len(docs)).fit(docs)
        A = self.vectorizer_.transform(docs)
        self.ridges_ = {}
        for j, t in enumerate(self.targets_):
            ok = np.isfinite(Y[:, j])
            self.ridges_[t] = Ridge(alpha=self.alpha_[t]).fit(A[ok], Y[ok, j])
        self.notes_ = []  # the chosen penalties are in alpha_; notes are for what the user must know
        return self

    def predict(self, X: Features) -> pd.DataFrame:
        A = self.vectorizer_.transform(table_text(X))
        return self._frame(X, {t: r.predict(A) for t, r in self.ridges_.items()})

    def explain(self, X: Features) -> pd.DataFrame:
        """Coefficient x TF-IDF weight of each word (or bigram) a video's texts hold, named "text:WORD", and
        the intercept (memo.predictors' explanation protocol): they add up to the prediction before
        clipping."""
        A = self.vectorizer_.transform(table_text(X)).tocoo()  # (N, V) sparse
        terms = self.vectorizer_.get_feature_names_out()
        ids = np.asarray(list(X.ids), dtype=object)
        parts = []
        for t, r in self.ridges_.items():
            words = pd.DataFrame(
                {
                    "id": ids[A.row],
                    "target": t,
                    "feature": [f"text:{terms[j]}" for j in A.col],
                    "contribution": A.data * r.coef_[A.col],
                }
            )
            base = pd.DataFrame(
                {"id": ids, "target": t, "feature": BASE, "contribution": float(r.intercept_)}
            )
            parts.append(pd.concat([base, words], ignore_index=True)[EXPLANATION_COLUMNS])
        return explanation_frame(parts)
