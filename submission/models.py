"""The trained model a user means: the one a run trained (`memo submit --run N`) or `memo train`'s.

Two commands train a predictor on the whole labelled split and keep it (`train_model` is the first):

    memo train gbt         -> <workdir>/models/gbt/ (with meta.json)
    memo submit --run 1    -> <workdir>/runs/1/<fingerprint>/model/ (the run's cache; the fingerprint
                              hashes what the run reads, so a changed memo.toml means another folder)

Readers of a fitted model (MindMem-ReAd's scorer, the report's importance section) ask here:

    found = trained_model(project, "gbt")  # `memo train gbt`'s, else the first run that trained a GBT
    found = trained_model(project)  # `memo train`'s (gbt first), else the first run that trained
    found = trained_model(project, "gbt", run="1")     # exactly run 1's, for the current memo.toml
    found.predictor, found.meta["streams"], found.source   # "run 1 (.../runs/1/ab12cd/model)"

`meta` has the keys of `memo train`'s meta.json that readers use: predictor, targets, streams,
config, cv (None for a run; its CV is in its manifest).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from memo.crossval import build_predictor, labelled_targets, target_frame
from memo.errors import MemoError
from memo.features.load import load_available
from memo.launch import process_slot
from memo.progress import say
from memo.store import atomic_write_json, atomic_write_text, library_versions

if TYPE_CHECKING:
    from memo.project import Project


@dataclass
class TrainedModel:
    predictor: Any  # fitted, with the Predictor contract (memo.predictors)
    folder: Path
    source: str  # for people: "run 1 (<folder>)" or "`memo train gbt` (<folder>)"
    run: str | None = None  # the run's name, None for `memo train`'s model
    meta: dict[str, Any] = field(default_factory=dict)


def run_model_folder(project: Project, run: str):
    """(folder where run `run` keeps its fitted model for the current memo.toml, its resolved Plan); nothing
    is computed."""
    from memo.submission.plan import resolve_run, run_folder

    if run not in project.config.runs:
        have = ", ".join(sorted(project.config.runs)) or "none"
        raise MemoError(f"memo.toml has no [runs.{run}] (runs: {have}); pass one of them, or add it.")
    plan = resolve_run(project, run)
    if plan.is_blend:
        raise MemoError(
            f"run {run} blends runs {', '.join(plan.run.blend)}: it has no single model; pass one of "
            "those runs instead."
        )
    return run_folder(project, plan) / "model", plan


def _from_run(project: Project, run: str, predictor: str | None) -> TrainedModel | None:
    from memo.predictors import PREDICTORS

    folder, plan = run_model_folder(project, run)
    name = plan.run.predictor
    if predictor and name != predictor:
        raise MemoError(
            f"run {run} trains {name}, not {predictor}; pass a run whose predictor is {predictor}, or "
            f"{name} as the model."
        )
    note = ""
    if not folder.is_dir() or not any(folder.iterdir()):
        # memo.toml, the data or memo itself changed since the run trained (another fingerprint):
        # the newest model the run trained is still the one behind its run file
        older = sorted(
            (m for m in folder.parent.parent.glob("*/model") if m.is_dir() and any(m.iterdir())),
            key=lambda m: m.stat().st_mtime,
        )
        if not older:
            return None
        folder = older[-1]
        note = (
            f"; trained before memo.toml, the data or memo changed, `memo submit --run {run}` trains it again"
        )
    try:
        est = PREDICTORS.get(name).load(folder)
    # an older model memo can no longer read counts as missing; the current one must load
    except Exception:
        if not note:
            raise
        return None
    meta = {
        "predictor": name,
        "targets": list(plan.targets),
        "streams": list(plan.streams or getattr(est, "streams", []) or []),
        "config": project.config.to_dict(),
        "cv": None,
        "run": run,
    }
    return TrainedModel(est, folder, f"run {run} ({folder}{note})", run, meta)


def _from_train(project: Project, predictor: str) -> TrainedModel | None:
    folder = project.workdir / "models" / predictor
    if not (folder / "meta.json").is_file():
        return None
    from memo.predictors import PREDICTORS

    meta = json.loads((folder / "meta.json").read_text())
    est = PREDICTORS.get(meta.get("predictor", predictor)).load(folder)
    return TrainedModel(est, folder, f"`memo train {predictor}` ({folder})", None, meta)


def trained_model(project: Project, predictor: str | None = None, run: str | None = None) -> TrainedModel:
    """The fitted model of run `run` (for the current memo.toml); without a run, `memo train`'s model
    of `predictor` (any predictor when None, gbt first), else the first run in memo.toml that has
    trained one (of `predictor`, when given).

    Raises one MemoError that says which command trains the missing model.
    """
    from memo.predictors import PREDICTORS

    if predictor:
        PREDICTORS.get(predictor)  # an unknown name lists the valid ones
    if run is not None:
        run = str(run)
        found = _from_run(project, run, predictor)
        if found is None:
            raise MemoError(
                f"run {run} has not trained its model for the current memo.toml yet; run `memo submit "
                f"--run {run}` first."
            )
        return found
    names = (
        [predictor]
        if predictor
        else list(
            dict.fromkeys(
                [
                    "gbt",
                    *sorted(
                        p.name for p in (project.workdir / "models").glob("*") if (p / "meta.json").is_file()
                    ),
                ]
            )
        )
    )
    for name in names:
        found = _from_train(project, name)
        if found is not None:
            return found
    candidates = [
        name
        for name, r in sorted(project.config.runs.items())
        if r.predictor != "blend" and (predictor is None or r.predictor == predictor)
    ]
    for name in candidates:
        try:
            found = _from_run(project, name, predictor)
        except MemoError:
            continue  # a run this data cannot resolve has no model to offer
        if found is not None:
            return found
    what = f"{predictor} model" if predictor else "model"
    train = f"`memo train {predictor or 'gbt'}`"
    runs = f" or `memo submit --run {candidates[0]}`" if candidates else ""
    raise MemoError(f"no trained {what} in {project.workdir}; run {train}{runs} first.")


# ----------------------------------------------------------------------------- `memo train` and `memo
# predict`


def _cv_scores(project, model: str) -> dict[str, Any] | None:
    """Pooled CV Spearman of `model` from the last `memo evaluate`, if it evaluated this model."""
    p = project.workdir / "eval" / "summary.csv"
    if not p.is_file():
        return None
    s = pd.read_csv(p)
    s = s[s["model"] == model]
    return {
        r.target: {"spearman": r.spearman, "ci95": r.ci95, "fold_mean": r.fold_mean} for r in s.itertuples()
    } or None


def train_model(project, model: str, device: str = "auto", params: dict[str, Any] | None = None) -> Path:
    """Fit `model` on the whole labelled split; save it with its metadata under <workdir>/models/<model>/."""
    train_split, targets = labelled_targets(project)
    est = build_predictor(project, model, device, params)
    X, notes = load_available(project, train_split, est.streams)
    y = target_frame(X, targets)
    est.fit(X, y)
    folder = project.workdir / "models" / model
    rank, world = process_slot()
    # under a launch every process trains (DDP) and the main one saves: two saves would swap one folder
    if rank > 0:
        say(f"process {rank + 1} of {world}: {model} trained; the main process saves it to {folder}")
        return folder
    # save beside, then swap: a killed save never leaves a half-written model where predict looks
    partial = folder.parent / f".{model}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    est.save(partial)
    described = est.describe() if hasattr(est, "describe") else {}
    atomic_write_json(
        partial / "meta.json",
        {
            "predictor": model,
            "class": type(est).__name__,
            "params": est.get_params(),
            "targets": targets,
            "train_split": train_split,
            "n_videos": len(X),
            "streams": sorted(X.streams),
            "features": described.get("features") or sorted(X.streams),
            "notes": notes + list(getattr(est, "notes_", [])),
            "inner_cv_spearman": described.get("inner_cv_spearman"),
            "cv": _cv_scores(project, model),
            "config": project.config.to_dict(),
            "versions": library_versions(),
            "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    if folder.exists():
        old = folder.parent / f".{model}.old"
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        partial.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(folder)
    return folder


def predict_model(
    project, model: str, split: str | None = None, out: str | Path | None = None, device: str = "auto"
) -> pd.DataFrame:
    """Predictions of a trained model for a split (default: the test split), written to `out` as CSV if
    given."""
    split = split or project.dataset.test_split
    if split is None:
        raise MemoError("the dataset has no test split; pass --split NAME to choose one.")
    if split not in project.dataset.splits:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(project.dataset.splits)}.")
    found = _from_train(project, model)
    if found is None:
        raise MemoError(
            f"no trained {model} in {project.workdir / 'models' / model}; run `memo train {model}` first."
        )
    est = found.predictor
    X, _ = load_available(project, split, est.streams)
    df = est.predict(X)
    if out is not None:
        atomic_write_text(Path(out), df.to_csv(index_label="id"))
    return df
