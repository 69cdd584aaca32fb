"""Computing a run: features, rationales, grouped CV and the full fit, only what its folder lacks.

    plan = resolve_run(project, "1")      # memo.submission.plan: what it reads, its fingerprint
    result = compute_run(project, plan)   # features, rationales, CV, fit, predict (cached)
    result.test                           # DataFrame: test ids x targets in [0, 1] (None with test=False)
    result.cv                             # out-of-fold predictions on the labelled split

A run's work lives in <workdir>/runs/<run>/<fingerprint>/ (memo.submission.plan.run_folder): an
unchanged run finds its predictions there and computes nothing. Blends are computed from their
runs' results by memo.submission.blends.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from memo.crossval import cv_scores, grouping, n_folds, repeated_cross_val
from memo.errors import MemoError
from memo.launch import process_slot
from memo.progress import say
from memo.store import atomic_write_json, atomic_write_text, library_versions
from memo.submission.blends import compute_blend
from memo.submission.plan import (
    Plan,
    RunResult,
    make_predictor,
    run_folder,
    run_repeats,
    run_settings,
)

# a run folder's files: the CV's (predictions, how it was made), then the full fit's (what it read, what
# a search chose, the test predictions: written last, they mark the fit done) and the model
CV_PREDICTIONS, CV_INFO = "cv_predictions.csv", "cv.json"
CONSUMED, CHOICE, TEST_PREDICTIONS, MODEL = "consumed.json", "choice.json", "test_predictions.csv", "model"


def _read_frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0, dtype={0: str}).rename(index=str)


def _read_cv(path: Path) -> pd.DataFrame:
    """cv_predictions.csv: columns repeat, id, one per target -> frame indexed by (repeat, id)."""
    return pd.read_csv(path, dtype={"id": str}).set_index(["repeat", "id"])


def _features(project, plan: Plan, device: str, test: bool = True):
    """Compute what the run's streams still lack (features, rationales), then load the labelled split and,
    with `test`, the test split (None otherwise: a CV alone never reads it)."""
    from memo.features import load_features, run_features

    ds = project.dataset
    test = test and bool(ds.test_split)
    splits = [ds.train_split] + ([ds.test_split] if test else [])
    if plan.extractors:
        # e5 embeds only the fields the run reads (a dropped test-only transcript is the longest text
        # of all); the store keys each field on its own, so nothing else changes
        fields = {s.partition(".")[2] for s in plan.streams if s.startswith("e5.")}
        text_fields = [f for f in project.config.features.text_fields if f in fields]
        extracting = project.with_settings(features={"text_fields": text_fields})
        run_features(extracting, extractors=plan.extractors, splits=splits, device=device)
    reading = run_settings(project, plan)
    if plan.aspects:
        from memo.rationales import run_rationales

        run_rationales(reading, aspects=plan.aspects, splits=splits, device=device)
    X_train = load_features(reading, ds.train_split, plan.streams)
    X_test = load_features(reading, ds.test_split, plan.streams) if test else None
    return X_train, X_test


def labelled_rows(project, plan: Plan, X):
    """y for the labelled videos with every target present; rows with a missing target are left out."""
    y = project.dataset.labelled().table.loc[X.ids, plan.targets].apply(pd.to_numeric, errors="coerce")
    keep = np.flatnonzero(y.notna().all(axis=1).to_numpy())
    if len(keep) < len(y):
        say(
            f"run {plan.name}: {len(y) - len(keep)} labelled video(s) lack a target and are left out "
            "of training."
        )
    return X.take(keep), y.iloc[keep]


def compute_run(project, plan: Plan, device: str = "auto", test: bool = True) -> RunResult:
    """Grouped-CV out-of-fold predictions for a run and, with `test`, the full fit's test predictions;
    from its cache when there. The CV comes first: `memo evaluate --run` needs nothing else, and a
    chosen blend fits in full only the runs its choice takes."""
    if plan.is_blend:
        return compute_blend(project, plan, lambda p, t: compute_run(project, p, device, t), test)
    cache = run_folder(project, plan)
    test_csv, cv_csv, info_json = cache / TEST_PREDICTIONS, cache / CV_PREDICTIONS, cache / CV_INFO
    used_json = cache / CONSUMED
    need_cv = not (cv_csv.is_file() and info_json.is_file())
    need_fit = test and not (test_csv.is_file() and used_json.is_file())
    if need_cv or need_fit:
        X_train, X_test = _features(project, plan, device, test=need_fit)
        X_train, y = labelled_rows(project, plan, X_train)
        _say_if_slow(project, plan, len(X_train), device, need_cv, need_fit)
        if need_cv:
            oof, folds = _cross_val(project, plan, X_train, y, device)
            atomic_write_text(cv_csv, oof.to_csv(float_format="%.10g"))
            info = {
                "folds": folds,
                "videos": len(X_train),
                "grouping": grouping(project),
                "consumed": oof.attrs.get("consumed", {}),
                "notes": oof.attrs.get("notes", []),
            }
            if "choices" in oof.attrs:  # a search: what it picked in each fold
                info["choices"] = oof.attrs["choices"]
            atomic_write_json(info_json, info)
        if need_fit:
            _full_fit(project, plan, X_train, y, X_test, device)
    info = json.loads(info_json.read_text())
    oof = _read_cv(cv_csv)
    pred = _read_frame(test_csv) if test else None
    # what the full fit read; before it exists (`memo evaluate --run`), what the CV's fold models read
    consumed = json.loads(used_json.read_text()) if used_json.is_file() else info.get("consumed", {})
    choices = {}
    if plan.is_search:  # each outer fold's pick ([repeat][fold]) and, after the full fit, the final one
        choices = {
            "folds": info.get("choices", []),
            **({"final": json.loads((cache / CHOICE).read_text())} if (cache / CHOICE).is_file() else {}),
        }
    scores = cv_scores(project, plan.targets, oof)
    notes = list(info.get("notes", []))
    return RunResult(plan, pred, oof, scores, info["folds"], consumed, choices=choices, notes=notes)


def fit_run(project, plan: Plan, device: str = "auto") -> Path:
    """The run's full fit on every labelled video (and its test predictions), kept in its folder;
    returns the fitted model's folder. Nothing is done when the fit is there. `memo train M` is this
    for the ad hoc run of M (memo.submission.plan.plan_model), so every trained model has one home."""
    cache = run_folder(project, plan)
    done = [cache / TEST_PREDICTIONS, cache / CONSUMED, cache / MODEL / "meta.json"]
    if not all(p.is_file() for p in done):  # the model too: under a launch only the main process saves it
        X_train, X_test = _features(project, plan, device, test=True)
        X_train, y = labelled_rows(project, plan, X_train)
        _say_if_slow(project, plan, len(X_train), device, cv=False)
        _full_fit(project, plan, X_train, y, X_test, device)
    return cache / MODEL


def _full_fit(project, plan: Plan, X_train, y: pd.DataFrame, X_test, device: str) -> None:
    """Fit on every labelled video; keep the model (model/, with meta.json), what it read, what a
    search chose and the test predictions in the run's folder (the predictions last: they mark it done).

    Under a launch every process fits (DDP needs them all) and only the main one saves the model.
    """
    cache = run_folder(project, plan)
    say(
        f"run {plan.name}: training {plan.run.predictor} on {len(X_train)} "
        f"{project.dataset.train_split} videos ({', '.join(plan.streams) or 'texts only'})"
    )
    model = make_predictor(project, plan, device).fit(X_train, y)
    if process_slot()[0] == 0:
        _save_model(model, cache / MODEL, _model_meta(project, plan, model, len(X_train)))
    pred = (
        model.predict(X_test)[plan.targets]
        if X_test is not None
        else pd.DataFrame(columns=plan.targets, index=pd.Index([], name="id"))
    )
    if hasattr(model, "describe_choice"):  # a search: what it chose on all labelled videos
        atomic_write_json(cache / CHOICE, model.describe_choice())
    atomic_write_json(cache / CONSUMED, model.consumed())
    atomic_write_text(cache / TEST_PREDICTIONS, pred.to_csv(float_format="%.10g"))


def _model_meta(project, plan: Plan, model, n_videos: int) -> dict:
    """meta.json beside a fitted model: what it predicts, from what, and how it was made."""
    described = model.describe() if hasattr(model, "describe") else {}
    return {
        "predictor": plan.run.predictor,
        "run": plan.name,
        "fingerprint": plan.fingerprint,
        "inputs": plan.inputs,  # one short hash per input: a lookup can say what changed since
        "class": type(model).__name__,
        "params": model.prediction_params(),
        "targets": list(plan.targets),
        "train_split": project.dataset.train_split,
        "n_videos": n_videos,
        "streams": list(plan.streams),
        "features": described.get("features") or list(plan.streams),
        "notes": list(getattr(model, "notes_", [])),
        "inner_cv_spearman": described.get("inner_cv_spearman"),
        "versions": library_versions(),
        "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _save_model(model, folder: Path, meta: dict) -> None:
    """Save beside, then swap: a killed save never leaves a half-written model where readers look."""
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save(partial)
    atomic_write_json(partial / "meta.json", meta)
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        partial.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(folder)


def _say_if_slow(project, plan: Plan, n: int, device: str, cv: bool = True, full_fit: bool = True) -> None:
    """An LLM run on a CPU takes hours: say so before the first fit, with what it will do and where it
    resumes."""
    from memo.models import is_tiny, pick_device

    backbone = plan.models.get("llm_backbone", "")
    if (
        plan.run.predictor != "llm"
        or is_tiny(backbone)
        or pick_device(device if device != "auto" else project.config.models.device) != "cpu"
    ):
        return
    k = n_folds(project, project.dataset.labelled().table["group"])
    n_cv = k * run_repeats(project, plan.run)
    what = " then ".join(
        [
            *([f"{n_cv} CV fit{'s' * (n_cv != 1)} of about {round(n * (k - 1) / k)} videos"] if cv else []),
            *([f"the full fit on {n}"] if full_fit else []),
        ]
    )
    say(
        f"run {plan.name} fine-tunes {backbone} on the CPU: {what}. Each fit says its cost after its "
        "first step (on VIDEM one fit of 171 ads took 28 minutes on 2 shared cores, minutes on a GPU); "
        "each finished fit is kept, so a stopped run resumes at the next one."
    )


def _cross_val(project, plan: Plan, X, y, device: str) -> tuple[pd.DataFrame, int]:
    """The run's out-of-fold predictions over [evaluate] repeats (repeated_cross_val), a fresh predictor per
    fold."""
    k = n_folds(project, X.groups)
    if k < 2:
        raise MemoError(
            f"the {project.dataset.train_split} split has fewer than 2 groups, so run {plan.name} "
            "cannot be cross-validated; add labelled videos."
        )
    r = run_repeats(project, plan.run)
    say(
        f"run {plan.name}: {k}-fold {grouping(project)} cross-validation"
        + (f", repeated {r} times" if r > 1 else "")
    )
    # each fold's predictions are kept in the run's folder: a killed CV of slow fits resumes at the next fold
    oof = repeated_cross_val(
        project,
        lambda: make_predictor(project, plan, device),
        X,
        y[plan.targets],
        f"run {plan.name}",
        repeats=r,
        cache=run_folder(project, plan) / "cv_folds",
    )
    return oof, k
