"""Cross-validation every stage shares: build a predictor, load what it reads, predict out of fold.

    make = lambda: build_predictor(project, "gbt")
    X, notes = load_available(project, "dev", make().streams)     # memo.features.load_available
    oof = cross_val_predict(make, X, target_frame(X, targets), grouped_kfold(X.groups, 5))
    oof = repeated_cross_val(project, make, X, y, "gbt")         # [evaluate] repeats, (repeat, id) rows
    cv_scores(project, targets, oof)                              # expected Spearman over the repeats

Honesty rules the driver enforces, not just documents:
- folds come from memo.splits.grouped_kfold (by brand, seeded by [project] seed) and every fold
  passes memo.splits.check_disjoint: no brand and no id on both sides;
- each fold gets a fresh predictor from `make_predictor()` and sees only its training rows, so
  everything the predictor fits (scalers, PCA, tuning, stacking) never meets the held-out fold;
- the reported score is the outer one; a predictor's inner tuning score is never reported as CV.

Evaluation (memo.evaluation), runs (memo.submission.runs), MindMem's ablation and MindMem-ReAd
all cross-validate through these functions, so their figures are comparable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.metrics import score_table, spearman
from memo.predictors import PREDICTORS, Predictor
from memo.progress import say
from memo.splits import Fold, check_disjoint, grouped_kfold
from memo.store import Features, atomic_write_text


def build_predictor(
    project, name: str, device: str = "auto", params: dict[str, Any] | None = None
) -> Predictor:
    """PREDICTORS[name].from_config(config, **params). A command's --device other than "auto" wins over
    [models] device (which from_config reads), where the predictor takes a device."""
    cls = PREDICTORS.get(name)
    overrides = dict(params or {})
    if device != "auto" and "device" in cls.param_names():
        overrides.setdefault("device", device)
    return cls.from_config(project.config, **overrides)


def labelled_targets(project, split: str | None = None) -> tuple[str, list[str]]:
    """(split, targets) after checking that `split` (default: the labelled one) has every target."""
    split = split or project.dataset.train_split
    sp = project.dataset.splits.get(split)
    if sp is None:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(project.dataset.splits)}.")
    targets = project.targets
    missing = [t for t in targets if t not in sp.target_columns]
    if missing:
        raise MemoError(
            f"split {split!r} has no labels for {', '.join(missing)}; evaluate on a labelled split."
        )
    return split, targets


def target_frame(X: Features, targets: list[str]) -> pd.DataFrame:
    """y: DataFrame indexed by X.ids, one float column per target."""
    return X.table.loc[X.ids, targets].apply(pd.to_numeric, errors="coerce")


def cross_val_predict(
    make_predictor: Callable[[], Predictor],
    X: Features,
    y: pd.DataFrame,
    folds: list[Fold],
    desc: str = "cv",
    cache: Path | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions: DataFrame indexed by X.ids, one column per target.

    Each fold: check that no brand or id is on both sides, fit a fresh predictor on the training
    rows only, predict the held-out rows. Rows no fold holds out stay NaN. What the fold models
    said about their inputs (`notes_`: streams left out, blocks skipped) is in `out.attrs["notes"]`;
    what a model that chooses (memo.search: `describe_choice()`) chose in each fold, in
    `out.attrs["choices"]`.

    With `cache` (a folder), each fold's predictions are written there as soon as they exist
    (fold{k}.json, atomically, with the fold's held-out ids and notes) and read back instead of
    refitting, so a killed cross-validation of slow models (an LLM fit takes minutes to hours)
    resumes at the first unfinished fold. The caller keys the folder by everything that changes
    the predictions; a file whose held-out ids are not this fold's is refitted.
    """
    from tqdm.auto import tqdm

    y = y.loc[X.ids]
    out = pd.DataFrame(np.nan, index=pd.Index(list(X.ids), name="id"), columns=list(y.columns))
    notes: list[str] = []
    consumed: dict[str, int] = {}
    choices: list[Any] = []
    kept = sum(
        _saved_fold(cache, k, [X.ids[i] for i in te], list(y.columns)) is not None
        for k, (_, te) in enumerate(folds)
    )
    if 0 < kept < len(folds):  # a resumed CV of slow fits: say what is reused before the hours start
        say(
            f"{desc}: {kept} of {len(folds)} folds kept from an earlier run; fitting the other "
            f"{len(folds) - kept}"
        )
    for k, (tr, te) in enumerate(tqdm(folds, desc=desc, leave=False, disable=None)):
        check_disjoint(X.ids, X.groups, tr, te)
        held = [X.ids[i] for i in te]
        saved = _saved_fold(cache, k, held, list(y.columns))
        if saved is None:
            model = make_predictor()
            model.fit(X.take(tr), y.iloc[tr])
            pred = model.predict(X.take(te))
            if list(pred.index) != held:
                raise MemoError(
                    f"{type(model).__name__}.predict returned rows out of order in fold {k}; "
                    "predictions must align to X.ids."
                )
            choice = model.describe_choice() if hasattr(model, "describe_choice") else None
            saved = (
                pred[list(y.columns)].to_numpy(float),
                list(getattr(model, "notes_", [])),
                model.consumed(),
                choice,
            )
            if cache is not None:
                rows = {
                    "ids": held,
                    "columns": list(y.columns),
                    "values": saved[0].tolist(),
                    "notes": saved[1],
                    "consumed": saved[2],
                    "choice": choice,
                }
                atomic_write_text(Path(cache) / f"fold{k}.json", json.dumps(rows))
        out.iloc[te] = saved[0]
        notes += [n for n in saved[1] if n not in notes]
        consumed = widest(consumed, saved[2])
        choices.append(saved[3])
    out.attrs["notes"] = notes
    out.attrs["consumed"] = consumed
    if any(c is not None for c in choices):
        out.attrs["choices"] = choices
    return out


def widest(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Two models' {stream: columns read}, merged: every stream either read, at the larger width (folds can
    differ when a stream has no rows in one fold's training videos)."""
    return {s: max(a.get(s, 0), b.get(s, 0)) for s in dict.fromkeys([*a, *b])}


def _saved_fold(
    cache: Path | None, k: int, held: list[str], columns: list[str]
) -> tuple[np.ndarray, list[str], dict[str, int], Any] | None:
    """(predictions (n_held, n_targets), notes, consumed, choice) of fold k from the cache, or None when
    absent, damaged or for other rows. A file from before folds recorded `consumed` reads as {} (nothing
    known, not nothing read)."""
    f = Path(cache) / f"fold{k}.json" if cache is not None else None
    if f is None or not f.is_file():
        return None
    try:
        rows = json.loads(f.read_text())
        values = np.asarray(rows["values"], float).reshape(len(held), len(columns))
    except (ValueError, KeyError, TypeError):
        return None  # a damaged file (the write is atomic, so only from outside): refit the fold
    if rows.get("ids") != held or rows.get("columns") != columns:
        return None
    used = rows.get("consumed")
    used = {str(s): int(w) for s, w in used.items() if isinstance(w, int)} if isinstance(used, dict) else {}
    return values, [str(n) for n in rows.get("notes", [])], used, rows.get("choice")


def score_predictions(
    oof: pd.DataFrame,
    y: pd.DataFrame,
    groups: np.ndarray,
    fold_of: np.ndarray,
    model: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of a result table: per fold and pooled, per target; intervals resample whole brands."""
    rows = []
    for target in oof.columns:
        yt, pt = y[target].to_numpy(float), oof[target].to_numpy(float)
        ok = np.isfinite(yt) & np.isfinite(pt)
        for k in [*sorted(set(fold_of[ok].tolist())), "pooled"]:
            sel = ok if k == "pooled" else ok & (fold_of == k)
            s = score_table(yt[sel], pt[sel], n_boot=n_boot, seed=seed, groups=groups[sel])
            rows.append({"model": model, "target": target, "fold": str(k), "n": int(sel.sum()), **s})
    return rows


# ----------------------------------------------------------------------------- repeated K-fold on the
# labelled split


def n_folds(project, groups) -> int:
    """[evaluate] folds, or fewer when the data has fewer groups (brands)."""
    return min(project.config.evaluate.folds, len(set(map(str, groups))))


def grouping(project) -> str:
    """How the labelled split's folds are grouped, in words: by brand, or plain (no brands)."""
    t = project.dataset.labelled().table
    return "brand-grouped" if t["group"].nunique() < len(t) else "plain (the data has no brands)"


def cv_scheme(project, folds: int, repeats: int) -> str:
    """The cross-validation in words, as manifests and tables print it, e.g. "5-fold brand-grouped
    cross-validation on dev, repeated 5 times (seeds 0..4)"."""
    seed = project.seed
    return f"{folds}-fold {grouping(project)} cross-validation on {project.dataset.train_split}" + (
        f", repeated {repeats} times (seeds {seed}..{seed + repeats - 1})"
        if repeats > 1
        else f" (seed {seed})"
    )


def unseen(project) -> str:
    """What a CV score predicts the score on: 'brands' (brand-grouped folds) or 'videos' (plain folds)."""
    return "brands" if grouping(project) == "brand-grouped" else "videos"


def repeated_cross_val(
    project,
    make,
    X,
    y: pd.DataFrame,
    desc: str,
    repeats: int | None = None,
    cache: Path | None = None,
    folds: int | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions on brand-grouped K-fold splits (cross_val_predict), repeated.

    Repeat i uses memo.splits.grouped_kfold with seed `[project] seed + i`, so every model
    cross-validated this way meets the same folds. One split of a few brands moves the score by
    about 0.15, the mean over repeats much less. Returns a frame indexed by (repeat, id), one
    column per target. With `cache`, each fold's predictions are kept in cache/repeat{i}/ and a
    rerun resumes where the last one stopped (cross_val_predict). `folds` overrides [evaluate] folds.
    """
    k = folds or n_folds(project, X.groups)
    r = max(1, project.config.evaluate.repeats if repeats is None else repeats)
    frames, notes, consumed, choices = [], [], {}, []
    for i in range(r):
        folds = grouped_kfold(X.groups, n_splits=k, seed=project.seed + i)
        oof = cross_val_predict(
            make,
            X,
            y,
            folds,
            desc=f"{desc} cv {i + 1}/{r}",
            cache=Path(cache) / f"repeat{i}" if cache is not None else None,
        )
        frames.append(
            oof.loc[X.ids, list(y.columns)]
            .assign(repeat=i)
            .set_index("repeat", append=True)
            .reorder_levels([1, 0])
        )
        notes = list(dict.fromkeys([*notes, *oof.attrs.get("notes", [])]))
        consumed = widest(consumed, oof.attrs.get("consumed", {}))
        if "choices" in oof.attrs:
            choices.append(oof.attrs["choices"])
    out = pd.concat(frames)
    out.attrs["notes"] = notes  # what the models said about their inputs, once
    out.attrs["consumed"] = consumed
    if choices:
        out.attrs["choices"] = choices  # [repeat][fold]: what a choosing model picked
    return out


def cv_scores(project, targets: list[str], oof: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per target: Spearman of the first repeat (95% interval by resampling brands), Pearson, Kendall,
    MSE, and `expected`: the mean pooled Spearman over the repeats, with `expected_min`/`expected_max`."""
    table = project.dataset.labelled().table
    first = oof.xs(0, level="repeat")
    y = table.loc[first.index, targets].apply(pd.to_numeric, errors="coerce")
    g = table.loc[first.index, "group"].astype(str).to_numpy()
    n_boot = project.config.evaluate.bootstrap
    out = {}
    per_repeat = repeat_scores(y, oof)
    for t in targets:
        out[t] = {**score_table(y[t], first[t], n_boot=n_boot, seed=project.seed, groups=g), **per_repeat[t]}
    return out


def repeat_scores(y: pd.DataFrame, oof: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per target of y: `expected`, the mean over the repeats of a (repeat, id) out-of-fold frame of the
    pooled Spearman (unlabelled rows left out), with `expected_min`, `expected_max` and the number of
    `repeats`."""
    out = {}
    for t in y.columns:
        known = y.index[y[t].notna().to_numpy()]
        per = [
            spearman(y.loc[known, t].to_numpy(float), oof.xs(r, level="repeat").loc[known, t].to_numpy(float))
            for r in repeats_of(oof)
        ]
        out[t] = {
            "expected": float(np.mean(per)),
            "expected_min": float(np.min(per)),
            "expected_max": float(np.max(per)),
            "repeats": len(per),
        }
    return out


def repeats_of(oof: pd.DataFrame) -> list[int]:
    """The repeat numbers of a (repeat, id)-indexed out-of-fold frame."""
    return sorted(set(oof.index.get_level_values("repeat")))
