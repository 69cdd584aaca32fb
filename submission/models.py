"""Trained models: one home (a run's folder), one lookup.

Two commands train a predictor on the whole labelled split and keep it, both as a run's full fit:

    memo submit --run 1    -> <workdir>/runs/1/<fingerprint>/model/
    memo train gbt         -> <workdir>/runs/model-gbt/<fingerprint>/model/ (the ad hoc run of gbt,
                              memo.submission.plan.plan_model: `memo evaluate --model gbt`'s run)

The fingerprint hashes what the run reads, so a changed memo.toml means another folder. Readers of
a fitted model (`memo predict`, MindMem-ReAd's scorer, the report's importance section) ask here:

    found = trained_model(project, "gbt")           # `memo train gbt`'s, else the first run that trained one
    found = trained_model(project)                  # `memo train`'s (gbt first), else the first run's
    found = trained_model(project, "gbt", run="1")  # exactly run 1's, for the current memo.toml
    found.predictor, found.meta["streams"], found.source   # "run 1 (.../runs/1/ab12cd/model)"
    found = fit_run_model(project, "1")             # run 1's full fit as `memo submit` makes it; its model
    predict_split(project, found, "test")           # its predictions for a split (`memo predict`, the API)

`meta` is the model's meta.json (memo.submission.runs): predictor, run, targets, streams, params, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from memo.errors import MemoError
from memo.features.load import load_available
from memo.store import atomic_write_text, read_saved
from memo.submission.plan import Plan, changed_inputs, plan_model, resolve_run, run_folder, run_settings
from memo.submission.runs import MODEL, fit_run

if TYPE_CHECKING:
    from memo.project import Project


@dataclass
class TrainedModel:
    predictor: Any  # fitted, with the Predictor contract (memo.predictors)
    folder: Path
    source: str  # for people: "run 1 (<folder>)" or "`memo train gbt` (<folder>)"
    run: str | None = None  # the run's name, None for `memo train`'s model
    meta: dict[str, Any] = field(default_factory=dict)
    plan: Plan | None = None  # the run that trained it


def run_model_folder(project: Project, run: str, device: str = "auto"):
    """(folder where run `run` keeps its fitted model for the current memo.toml, its resolved Plan); nothing
    is computed."""
    if run not in project.config.runs:
        have = ", ".join(sorted(project.config.runs)) or "none"
        raise MemoError(f"memo.toml has no [runs.{run}] (runs: {have}); pass one of them, or add it.")
    plan = resolve_run(project, run, device)
    if plan.is_blend:
        raise MemoError(
            f"run {run} blends runs {', '.join(plan.run.blend)}: it has no single model; pass one of "
            "those runs instead."
        )
    return run_folder(project, plan) / MODEL, plan


def _from_run(project: Project, run: str, predictor: str | None) -> TrainedModel | None:
    folder, plan = run_model_folder(project, run)
    if predictor and plan.run.predictor != predictor:
        raise MemoError(
            f"run {run} trains {plan.run.predictor}, not {predictor}; pass a run whose predictor is "
            f"{predictor}, or {plan.run.predictor} as the model."
        )
    return _load(project, plan, folder, f"run {run}", run)


def _from_train(project: Project, predictor: str, device: str = "auto") -> TrainedModel | None:
    """`memo train PREDICTOR`'s model: its ad hoc run's full fit, for the current memo.toml."""
    return _from_plan(project, plan_model(project, predictor, device=device))


def _from_plan(project: Project, plan: Plan) -> TrainedModel | None:
    """The full fit of `plan`, an ad hoc `memo train` run, if it has been made."""
    who = f"`memo train {plan.run.predictor}`"
    return _load(project, plan, run_folder(project, plan) / MODEL, who, None)


def _what_changed(project, plan: Plan) -> str:
    """', though one was trained with other inputs (changed: params, streams)' when `memo train` left
    one for other settings than `plan`'s, else ''."""
    # a meta.json sits in <run>/<fingerprint>/model/; a damaged one only says nothing
    found = (project.workdir / "runs" / plan.name).glob(f"*/{MODEL}/meta.json")
    metas = [m for m in (read_saved(f, f.parent.parent.name) for f in found) if m is not None]
    changed = sorted({k for m in metas for k in changed_inputs(m.get("inputs", {}), plan.inputs)})
    return f", though one was trained with other inputs (changed: {', '.join(changed)})" if changed else ""


def _load(project, plan: Plan, folder: Path, who: str, run: str | None) -> TrainedModel | None:
    """The fitted model in `folder` (None when there is none) with its meta.json; a model saved before
    models had one (or whose meta.json is damaged) gets the plan's description instead."""
    from memo.predictors import PREDICTORS

    if not folder.is_dir() or not any(p.name != "meta.json" for p in folder.iterdir()):
        return None
    est = PREDICTORS.get(plan.run.predictor).load(folder)
    described = {"predictor": plan.run.predictor, "run": plan.name, "targets": plan.targets}
    meta = read_saved(folder / "meta.json", plan.fingerprint) or described | {"streams": plan.streams}
    return TrainedModel(est, folder, f"{who} ({folder})", run, meta, plan)


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
    trained = sorted(p.name.removeprefix("model-") for p in (project.workdir / "runs").glob("model-*"))
    for name in [predictor] if predictor else list(dict.fromkeys(["gbt", *trained])):
        try:
            found = _from_train(project, name)
        except MemoError:
            continue  # a predictor this data cannot plan has no model to offer
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


def fit_run_model(project: Project, run: str, device: str = "auto") -> TrainedModel:
    """Run `run`'s full fit exactly as `memo submit --run RUN` makes it (memo.submission.runs.fit_run: its
    folder, its fingerprint; nothing is done when the folder has it) and its fitted model."""
    folder, plan = run_model_folder(project, str(run), device)
    fit_run(project, plan, device)
    return _load(project, plan, folder, f"run {plan.name}", plan.name)


def predict_split(project: Project, found: TrainedModel, split: str | None = None) -> pd.DataFrame:
    """A trained model's predictions for a split of the dataset (default: the test split), from the
    features its run read: ids x targets in [0, 1]."""
    X, _ = load_available(run_settings(project, found.plan), _split(project, split), found.plan.streams)
    return found.predictor.predict(X)


def _split(project: Project, split: str | None) -> str:
    """The split to predict: `split`, else the test split; one that the dataset lacks is an error."""
    split = split or project.dataset.test_split
    if split is None:
        raise MemoError("the dataset has no test split; name the split to predict (--split NAME).")
    if split not in project.dataset.splits:
        raise MemoError(f"unknown split {split!r}; the dataset has: {', '.join(project.dataset.splits)}.")
    return split


# ----------------------------------------------------------------------------- `memo train`, `memo predict`


def train_model(project, model: str, device: str = "auto", params: dict[str, Any] | None = None) -> Path:
    """Fit `model` on the whole labelled split as its ad hoc run's full fit (memo.submission.runs.fit_run);
    returns the model's folder, <workdir>/runs/model-MODEL/<fingerprint>/model/ (with meta.json)."""
    return fit_run(project, plan_model(project, model, params, device=device), device)


def predict_model(
    project, model: str, split: str | None = None, out: str | Path | None = None, device: str = "auto"
) -> pd.DataFrame:
    """Predictions of `memo train MODEL`'s model for a split (default: the test split), written to `out`
    as CSV if given."""
    split = _split(project, split)
    plan = plan_model(project, model, device=device)
    found = _from_plan(project, plan)
    if found is None:
        raise MemoError(
            f"no {model} trained for the current memo.toml{_what_changed(project, plan)}; "
            f"run `memo train {model}` first (with the same --set as this command)."
        )
    df = predict_split(project, found, split)
    if out is not None:
        atomic_write_text(Path(out), df.to_csv(index_label="id"))
    return df
