"""Planning a run: from a [runs.N] table to what it will read and its fingerprint; computes nothing.

    plan = resolve_run(project, "1")   # predictor, targets, usable streams, models, fingerprint
    plan.fingerprint, plan.inputs      # the hash of everything that changes its predictions, per part
    run_folder(project, plan)          # where its work is kept: <workdir>/runs/<run>/<fingerprint>/

What a run may read is decided from the data (memo.submission.coverage: the streams both splits
have); the rest is dropped and the plan says why. The fingerprint hashes the resolved predictor
parameters, streams, targets, model revisions, feature-store keys, the dataset files' contents
(memo.store.content_signature: a copied or touched dataset keeps its runs), the CV setup and memo's
version, so an unchanged run finds its work and a changed one gets a new folder.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import memo
from memo.config import RunConfig
from memo.crossval import build_predictor
from memo.errors import ConfigError, MemoError
from memo.features.load import EXTRACTOR_STREAMS
from memo.predictors import PREDICTORS
from memo.store import stable_hash
from memo.streams import TABLE_STREAMS
from memo.submission.coverage import expand_streams, usable_candidates, usable_streams
from memo.submission.runfile import RUN_NAME


@dataclass
class Plan:
    """A run resolved against the project and its data: what it computes, and its fingerprint."""

    name: str
    run: RunConfig
    targets: list[str]
    fingerprint: str
    streams: list[str] = field(default_factory=list)  # concrete stream names the predictor is given
    dropped: dict[str, str] = field(default_factory=dict)  # stream -> why it is not used
    extractors: list[str] = field(default_factory=list)
    aspects: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # the predictor's resolved hyperparameters
    models: dict[str, str] = field(default_factory=dict)  # role -> model name
    store_keys: dict[str, str] = field(default_factory=dict)  # stream -> feature-store key
    components: list[Plan] = field(default_factory=list)  # blend runs
    # a search's candidates, on the streams the data has
    candidates: list[dict[str, Any]] = field(default_factory=list)
    # what the fingerprint hashes, one short hash per part
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def is_blend(self) -> bool:
        return self.run.predictor == "blend"

    def describe(self) -> dict[str, Any]:
        """The resolved run, as the manifest records it."""
        d = {
            "run": self.name,
            "config": dataclasses.asdict(self.run),
            "predictor": self.run.predictor,
            "targets": self.targets,
            "fingerprint": self.fingerprint,
        }
        if self.is_blend:
            d["components"] = {c.name: c.fingerprint for c in self.components}
            d["blend"] = (
                "chosen on grouped CV"
                if self.run.choose
                else "weighted mean"
                if self.run.weights
                else "rank average"
            )
        else:
            d.update(
                streams=self.streams,
                dropped_streams=self.dropped,
                extractors=self.extractors,
                aspects=self.aspects,
                params=self.params,
            )
        return d

    @property
    def is_search(self) -> bool:
        return self.run.predictor == "search"


@dataclass
class RunResult:
    """What computing a plan gives (memo.submission.runs, memo.submission.blends): its grouped-CV
    out-of-fold predictions and scores and, after the full fit, its test predictions."""

    plan: Plan
    # test ids x targets; None when computed for its CV alone (compute_run(test=False))
    test: pd.DataFrame | None
    cv: pd.DataFrame  # (repeat, labelled id) x targets, out-of-fold
    cv_scores: dict[str, dict[str, float]]  # target -> spearman, spearman_lo, spearman_hi, ...
    folds: int
    # stream -> columns the full fit (else the CV's folds) read; blends: {}
    consumed: dict[str, int] = field(default_factory=dict)
    # chosen blends: target -> what its test predictions are
    chosen: dict[str, str] = field(default_factory=dict)
    # blends: the blended runs' results (their CV at least)
    components: list[RunResult] = field(default_factory=list)
    # searches: {"folds": [repeat][fold] picks, "final": the full fit's}
    choices: dict[str, Any] = field(default_factory=dict)
    # what the CV's fold models said about their inputs (streams left out, blocks skipped)
    notes: list[str] = field(default_factory=list)


def _model_roles(project, plan_streams: list[str], predictor: str) -> dict[str, str]:
    m = project.config.models
    roles: dict[str, str] = {}
    for s in plan_streams:
        p = s.partition(".")[0]
        if p in ("vit", "audio"):
            roles[p] = getattr(m, p)
        elif p in ("e5", "rationale"):
            roles["e5"] = m.e5
        if p in ("rationale", "ratings"):
            roles["llm"] = project.config.rationale.model or m.llm
    if predictor == "llm":
        roles["llm_backbone"] = project.config.llm.backbone or m.llm
    return roles


def make_predictor(project, plan: Plan, device: str = "auto"):
    """A fresh, unfitted predictor for a run: its section of memo.toml, the run's params, the device.

    A predictor that selects streams (`streams` parameter) reads exactly the run's streams, so a
    run trains on what its description and manifest say; MindMem sorts them into its modalities.
    """
    params = dict(plan.run.params)
    if plan.streams and "streams" in PREDICTORS.get(plan.run.predictor).param_names():
        params["streams"] = list(plan.streams)
    if plan.is_search:  # resolved to the streams the data has once the plan knows them
        params["candidates"] = plan.candidates or list(plan.run.candidates)
    return build_predictor(project, plan.run.predictor, device=device, params=params)


def resolve_run(project, name: str, device: str = "auto", _stack: tuple[str, ...] = ()) -> Plan:
    """Resolve [runs.NAME]: predictor, targets, usable streams, models and the fingerprint; computes
    nothing."""
    cfg = project.config
    if name not in cfg.runs:
        defined = ", ".join(cfg.runs) or "none"
        raise ConfigError(
            f"run {name!r} is not defined in memo.toml (defined: {defined}); add a [runs.{name}] table "
            "or run `memo init`."
        )
    if name in _stack:
        raise ConfigError(
            f"run {name} blends itself (through {' -> '.join(_stack + (name,))}); remove the cycle "
            f"from [runs.{name}] blend."
        )
    if not re.fullmatch(RUN_NAME, name):
        raise ConfigError(
            f"run name {name!r} cannot be part of a file name; use letters, digits, '_' or '-' in "
            "[runs.NAME]."
        )
    return _resolve(project, name, cfg.runs[name], device, _stack)


def plan_model(
    project, predictor: str, params: dict[str, Any] | None = None, repeats: int = 0, device: str = "auto"
) -> Plan:
    """`memo evaluate --model NAME` as an ad hoc run, planned and cached like a configured one.

    The run a user would write as `[runs.X] predictor = NAME`: the predictor's own streams that both
    splits have, `params` over its section of memo.toml, `repeats` CV repeats (0: [evaluate] repeats,
    as for a configured run, so `memo evaluate --model M` and `memo train M` share one run). It reads the
    rationales `memo rationale` already wrote ([rationale] aspects in the store) and never starts
    the LLM itself. Its work lives in <workdir>/runs/model-NAME/<fingerprint>/.
    """
    run = RunConfig(predictor=predictor, params=dict(params or {}), repeats=repeats)
    run.aspects = _stored_aspects(project, make_predictor(project, Plan("", run, [], ""), device).streams)
    return _resolve(project, f"model-{predictor}", run, device, ())


def _stored_aspects(project, streams) -> list[str]:
    """The [rationale] aspects whose rationales are in the feature store, where `streams` select any."""
    from memo.features.load import catalog
    from memo.rationales.aspects import resolve_aspects
    from memo.streams import canonical

    if not any(canonical(s).partition(".")[0] in ("rationale", "ratings") for s in streams):
        return []
    names = [a.name for a in resolve_aspects(project.config.rationale.aspects, project.config)]
    stored = catalog(project.with_settings(rationale={"aspects": names}), ["rationale"])
    return [a for a in names if f"rationale.{a}" in stored and stored[f"rationale.{a}"][0].read_manifest()]


def _resolve(project, name: str, run: RunConfig, device: str, stack: tuple[str, ...]) -> Plan:
    """Targets and the inputs every fingerprint holds, then a blend's or a predictor run's plan."""
    cfg = project.config
    targets = list(run.targets or project.targets)
    labelled = project.dataset.labelled()
    missing = [t for t in targets if t not in labelled.target_columns]
    if missing:
        raise ConfigError(
            f"[runs.{name}] targets {', '.join(missing)} are not in the {labelled.name} split; it has: "
            f"{', '.join(labelled.target_columns)}."
        )
    base = {
        "memo": memo.__version__,
        "run": run_view(run),
        "targets": targets,
        "seed": cfg.project.seed,
        "cv": {"folds": cfg.evaluate.folds, "bootstrap": cfg.evaluate.bootstrap},
        "groups": project.groups_signature(),
    }
    # a blend's repeats are its runs'. Left out at 1, so a run CV'd once (run 2, hours of Gemma-3)
    # keeps its fingerprint and work
    if run.predictor != "blend" and run_repeats(project, run) != 1:
        base["cv"]["repeats"] = run_repeats(project, run)
    if run.predictor == "blend":
        return _resolve_blend(project, name, run, targets, base, device, stack)
    return _resolve_single(project, name, run, targets, base, device)


def _resolve_blend(project, name, run, targets, base, device, stack) -> Plan:
    """A blend's plan: its runs resolved (no cycles), weights checked; the fingerprint hashes theirs."""
    if not run.blend:
        raise ConfigError(f'[runs.{name}] is a blend without runs; set blend = ["1", "2"].')
    if run.weights and len(run.weights) != len(run.blend):
        raise ConfigError(
            f"[runs.{name}] has {len(run.weights)} weights for {len(run.blend)} runs; give one "
            "weight per run, or none for rank averaging."
        )
    if run.weights and run.choose:
        raise ConfigError(
            f"[runs.{name}] has both weights and choose = true; choose picks per target on grouped "
            "CV, so remove one of them."
        )
    if run.weights and (min(run.weights) < 0 or sum(run.weights) <= 0):
        raise ConfigError(f"[runs.{name}] weights = {run.weights} must be non-negative with a positive sum.")
    comps = [resolve_run(project, c, device, stack + (name,)) for c in run.blend]
    for c in comps:
        lacking = [t for t in targets if t not in c.targets]
        if lacking:
            raise ConfigError(
                f"run {c.name} does not predict {', '.join(lacking)}, which blend run {name} "
                f"needs; add it to [runs.{c.name}] targets."
            )
    inputs = _parts({**base, "components": {c.name: c.fingerprint for c in comps}})
    return Plan(name, run, targets, stable_hash(inputs, 16), components=comps, inputs=inputs)


def _resolve_single(project, name, run, targets, base, device) -> Plan:
    """A predictor run's plan: parameters checked, the streams the data has, models and the fingerprint."""
    cfg = project.config
    accepted = PREDICTORS.get(run.predictor).param_names()
    unknown = sorted(set(run.params) - accepted)
    if unknown:
        raise ConfigError(
            f"[runs.{name}] params.{unknown[0]} is not a parameter of {run.predictor}; it takes: "
            f"{', '.join(sorted(accepted))}."
        )
    plan = Plan(name, run, targets, "")
    model = make_predictor(project, plan, device)
    params = model.prediction_params()  # a moved project must not look out of date
    wanted = list(run.streams) or list(model.streams)  # empty: the predictor reads only the table (texts)
    aspects = list(run.aspects)
    streams, dropped = usable_streams(
        project, expand_streams(project, wanted, aspects, strict=bool(run.streams))
    )
    if wanted and not streams:
        why = "; ".join(f"{s}: {r}" for s, r in dropped.items())
        raise MemoError(
            f"run {name} has no feature stream that both the labelled and the test split have ({why}); "
            f"add streams the data has to [runs.{name}] streams."
        )
    if plan.is_search:
        plan.candidates = usable_candidates(name, model.candidates, streams, dropped)
        params = make_predictor(project, plan, device).prediction_params()
    extractors = [p for p in EXTRACTOR_STREAMS if any(s.partition(".")[0] == p for s in streams)]
    models = _model_roles(project, streams, run.predictor)
    plan.streams, plan.dropped, plan.extractors = streams, dropped, extractors
    plan.aspects, plan.params, plan.models = aspects, params, models
    plan.store_keys = store_keys(project, plan)
    from memo.models import model_revision

    revisions = {role: model_revision(m) for role, m in models.items()}
    section = {"features": dataclasses.asdict(cfg.features)}
    if aspects:
        section["rationale"] = dataclasses.asdict(cfg.rationale) | {"aspects": aspects, "batch_size": 0}
    plan.inputs = _parts(
        {
            **base,
            "params": params,
            "streams": streams,
            "aspects": aspects,
            "models": models,
            "revisions": revisions,
            "store": plan.store_keys,
            "sections": section,
            "data": project.data_signature(),
        }
    )
    plan.fingerprint = stable_hash(plan.inputs, 16)
    return plan


# [runs.N] keys added after runs were first fingerprinted. At their default they stay out of the
# fingerprint, so a new key does not turn every existing run into a changed one (whose run file
# would then need --force).
LATER_RUN_KEYS = {"choose": False, "repeats": 0, "candidates": []}


def run_view(run) -> dict[str, Any]:
    """The [runs.N] table as the fingerprint sees it: no description, later keys only when set."""
    view = dataclasses.asdict(run) | {"description": ""}
    return {k: v for k, v in view.items() if not (k in LATER_RUN_KEYS and v == LATER_RUN_KEYS[k])}


def _parts(inputs: dict[str, Any]) -> dict[str, str]:
    """One short hash per input, kept in the manifest so a changed run can say what changed."""
    return {k: stable_hash(v, 16) for k, v in inputs.items()}


def changed_inputs(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Names of the inputs whose hash differs (e.g. ['params', 'streams'])."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def store_keys(project, plan: Plan) -> dict[str, str]:
    """stream -> the feature-store key of the current config (cheap: nothing is loaded or computed)."""
    from memo.features.load import catalog

    prefixes = sorted({s.partition(".")[0] for s in plan.streams if s not in TABLE_STREAMS})
    cat = catalog(run_settings(project, plan), prefixes)
    return {s: cat[s][0].key for s in plan.streams if s in cat}


def run_folder(project, plan: Plan) -> Path:
    """Where a run keeps its work for this fingerprint: test and CV predictions, the fitted model (model/),
    baselines."""
    return project.workdir / "runs" / plan.name / plan.fingerprint


def run_repeats(project, run: RunConfig) -> int:
    """How many CV repeats a run gets: its own `repeats`, else [evaluate] repeats."""
    return max(1, run.repeats or project.config.evaluate.repeats)


def run_settings(project, plan: Plan):
    """The project as the run's stages see it: its rationale aspects in place of [rationale] aspects
    (a view with its own config; the project a command loaded keeps what the user wrote)."""
    return project.with_settings(rationale={"aspects": list(plan.aspects)}) if plan.aspects else project
