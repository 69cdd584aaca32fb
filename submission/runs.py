"""Runs: from a [runs.N] table to test predictions and grouped-CV scores, computing only what is missing.

    plan = resolve_run(project, "1")          # predictor, targets, usable streams, fingerprint
    result = compute_run(project, plan)       # features, rationales, CV, fit, predict (cached)
    result.test  # DataFrame: test ids x targets, in [0, 1] (None with test=False)
    result.cv                                 # out-of-fold predictions on the labelled split

What a run may read is decided from the data, before anything is computed
(memo.submission.coverage: the streams both splits have); the rest is dropped and the manifest
says why.

Caching: a run's work lives in <workdir>/runs/<run>/<fingerprint>/, where the fingerprint hashes
everything that changes its predictions (resolved predictor parameters, streams, targets, model
revisions, feature-store keys, the dataset files' contents (memo.store.content_signature: a copied or
touched dataset keeps its runs), the CV setup, memo's version).
An unchanged run finds its predictions there and computes nothing; a changed one gets a new folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import memo
from memo.config import RunConfig
from memo.crossval import build_predictor, cv_scores, grouping, n_folds, repeated_cross_val, repeats_of
from memo.errors import ConfigError, MemoError
from memo.metrics import blend_predictions
from memo.progress import say
from memo.store import atomic_write_json, atomic_write_text, stable_hash
from memo.streams import TABLE_STREAMS
from memo.submission.coverage import EXTRACTOR_PREFIXES, expand_streams, usable_candidates, usable_streams
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


@contextlib.contextmanager
def rationale_aspects(project, aspects: list[str]):
    """Let the rationale stage and the store keys see the run's aspects, then put the config back."""
    cfg = project.config.rationale
    old = list(cfg.aspects)
    if aspects:
        cfg.aspects = list(aspects)
    try:
        yield
    finally:
        cfg.aspects = old


@contextlib.contextmanager
def only_text_fields(project, fields: list[str]):
    """Let the e5 extractor embed only the fields the run reads (a dropped test-only transcript is
    the longest text of all); the store keys each field on its own, so nothing else changes."""
    cfg = project.config.features
    old = list(cfg.text_fields)
    cfg.text_fields = [f for f in old if f in fields]
    try:
        yield
    finally:
        cfg.text_fields = old


# ----------------------------------------------------------------------------- resolving


def _predictor_class(name: str):
    from memo.predictors import PREDICTORS

    return PREDICTORS.get(name)


def _init_params(cls) -> set[str]:
    return {k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "args", "kwargs")}


def make_predictor(project, plan: Plan, device: str = "auto"):
    """A fresh, unfitted predictor for a run: its section of memo.toml, the run's params, the device.

    A predictor that selects streams (`streams` parameter) reads exactly the run's streams, so a
    run trains on what its description and manifest say; MindMem sorts them into its modalities.
    """
    params = dict(plan.run.params)
    if plan.streams and "streams" in _init_params(_predictor_class(plan.run.predictor)):
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
    run = cfg.runs[name]
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
    # a blend's repeats are its runs'. Left out at 1, so a run
    if run.predictor != "blend" and run_repeats(project, run) != 1:
        # CV'd once (run 2, hours of Gemma-3) keeps its fingerprint and work
        base["cv"]["repeats"] = run_repeats(project, run)

    if run.predictor == "blend":
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
            raise ConfigError(
                f"[runs.{name}] weights = {run.weights} must be non-negative with a positive sum."
            )
        comps = [resolve_run(project, c, device, _stack + (name,)) for c in run.blend]
        for c in comps:
            lacking = [t for t in targets if t not in c.targets]
            if lacking:
                raise ConfigError(
                    f"run {c.name} does not predict {', '.join(lacking)}, which blend run {name} "
                    f"needs; add it to [runs.{c.name}] targets."
                )
        inputs = _parts({**base, "components": {c.name: c.fingerprint for c in comps}})
        return Plan(name, run, targets, stable_hash(inputs, 16), components=comps, inputs=inputs)

    cls = _predictor_class(run.predictor)
    accepted = _init_params(cls)
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
    extractors = [p for p in EXTRACTOR_PREFIXES if any(s.partition(".")[0] == p for s in streams)]
    models = _model_roles(project, streams, run.predictor)
    plan.streams, plan.dropped, plan.extractors, plan.aspects, plan.params, plan.models = (
        streams,
        dropped,
        extractors,
        aspects,
        params,
        models,
    )
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
    with rationale_aspects(project, plan.aspects):
        cat = catalog(project, prefixes)
    return {s: cat[s][0].key for s in plan.streams if s in cat}


# ----------------------------------------------------------------------------- computing


def run_folder(project, plan: Plan) -> Path:
    """Where a run keeps its work for this fingerprint: test and CV predictions, the fitted model (model/),
    baselines."""
    return project.workdir / "runs" / plan.name / plan.fingerprint


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
        with only_text_fields(project, [s.partition(".")[2] for s in plan.streams if s.startswith("e5.")]):
            run_features(project, extractors=plan.extractors, splits=splits, device=device)
    if plan.aspects:
        from memo.rationales import run_rationales

        with rationale_aspects(project, plan.aspects):
            run_rationales(project, aspects=plan.aspects, splits=splits, device=device)
    with rationale_aspects(project, plan.aspects):
        X_train = load_features(project, ds.train_split, plan.streams)
        X_test = load_features(project, ds.test_split, plan.streams) if test else None
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
        return _compute_blend(project, plan, device, test)
    cache = run_folder(project, plan)
    test_csv, cv_csv, info_json = (
        cache / "test_predictions.csv",
        cache / "cv_predictions.csv",
        cache / "cv.json",
    )
    used_json = cache / "consumed.json"
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
            }
            if "choices" in oof.attrs:  # a search: what it picked in each fold
                info["choices"] = oof.attrs["choices"]
            atomic_write_json(info_json, info)
        if need_fit:
            say(
                f"run {plan.name}: training {plan.run.predictor} on {len(X_train)} "
                f"{project.dataset.train_split} videos ({', '.join(plan.streams) or 'texts only'})"
            )
            model = make_predictor(project, plan, device).fit(X_train, y)
            model.save(cache / "model")
            pred = (
                model.predict(X_test)[plan.targets]
                if X_test is not None
                else pd.DataFrame(columns=plan.targets, index=pd.Index([], name="id"))
            )
            if hasattr(model, "describe_choice"):  # a search: what it chose on all labelled videos
                atomic_write_json(cache / "choice.json", model.describe_choice())
            atomic_write_json(used_json, model.consumed())
            atomic_write_text(test_csv, pred.to_csv(float_format="%.10g"))
    info = json.loads(info_json.read_text())
    oof = _read_cv(cv_csv)
    pred = _read_frame(test_csv) if test else None
    # what the full fit read; before it exists (`memo evaluate --run`), what the CV's fold models read
    consumed = json.loads(used_json.read_text()) if used_json.is_file() else info.get("consumed", {})
    choices = {}
    if plan.is_search:  # each outer fold's pick ([repeat][fold]) and, after the full fit, the final one
        choices = {
            "folds": info.get("choices", []),
            **(
                {"final": json.loads((cache / "choice.json").read_text())}
                if (cache / "choice.json").is_file()
                else {}
            ),
        }
    return RunResult(
        plan, pred, oof, cv_scores(project, plan.targets, oof), info["folds"], consumed, choices=choices
    )


def run_repeats(project, run: RunConfig) -> int:
    """How many CV repeats a run gets: its own `repeats`, else [evaluate] repeats."""
    return max(1, run.repeats or project.config.evaluate.repeats)


def _say_if_slow(project, plan: Plan, n: int, device: str, cv: bool = True, full_fit: bool = True) -> None:
    """An LLM run on a CPU takes hours: say so before the first fit, with what it will do and where it
    resumes."""
    from memo.models import is_tiny, pick_device

    backbone = plan.models.get("llm_backbone", "")
    if (
        plan.run.predictor != "llm"
        or is_tiny(backbone)
        or pick_device(plan.params.get("device", device)) != "cpu"
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
        f"run {plan.name} fine-tunes {backbone} on the CPU: {what}. "
        "On VIDEM one fit of 171 ads took 28 minutes on 2 shared cores (docs/llm_fusion.md), minutes "
        "on a GPU; "
        f"each finished fit is kept, so a stopped run resumes at the next one."
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


# ----------------------------------------------------------------------------- blends


def _compute_blend(project, plan: Plan, device: str, test: bool = True) -> RunResult:
    # the runs' CV first: a chosen blend then fits in full only the runs its choice takes
    results = _on_shared_repeats(plan, [compute_run(project, c, device, test=False) for c in plan.components])
    common = results[0].cv.index
    for r in results[1:]:
        if list(r.cv.index) != list(common) or r.folds != results[0].folds:
            raise MemoError(
                f"runs {', '.join(plan.run.blend)} were cross-validated on different videos or folds, "
                f"so blend {plan.name} cannot be scored; give them the same targets."
            )
    if plan.run.choose:
        result = _chosen_blend(project, plan, results)
    else:
        # the same folds in every repeat: blending out-of-fold predictions repeat by repeat is an honest blend
        # score
        oof = pd.concat(
            [
                blend_predictions(
                    [r.cv.xs(i, level="repeat", drop_level=False)[plan.targets] for r in results],
                    list(plan.run.weights) or None,
                )
                for i in repeats_of(results[0].cv)
            ]
        )
        result = RunResult(
            plan, None, oof, cv_scores(project, plan.targets, oof), results[0].folds, components=results
        )
    return (
        dataclasses.replace(result, test=_test_of(project, result, plan.targets, device)) if test else result
    )


def _test_of(project, result: RunResult, targets: list[str], device: str) -> pd.DataFrame:
    """A run's test predictions: those its result has; a blend's from its components' results (nothing
    cross-validated
    or chosen is redone; a chosen blend fits in full only the runs its picks take); else its full fit, made
    now."""
    plan = result.plan
    if result.test is not None:
        return result.test[targets]
    if not plan.is_blend:
        return compute_run(project, plan, device).test[targets]
    if plan.run.choose:
        return _chosen_test(project, result, device)[targets]
    return blend_predictions(
        [_test_of(project, r, plan.targets, device) for r in result.components],
        list(plan.run.weights) or None,
    )[targets]


def _on_shared_repeats(plan: Plan, results: list[RunResult]) -> list[RunResult]:
    """The runs' CV restricted to the repeats they all have (repeat i is the same split in every run), so a
    run
    cross-validated once (an LLM, `repeats = 1`) blends with runs repeated five times on their first split."""
    shared = sorted(set.intersection(*(set(repeats_of(r.cv)) for r in results)))
    if not shared:
        raise MemoError(
            f"runs {', '.join(plan.run.blend)} share no cross-validation repeat, so blend {plan.name} "
            "cannot be scored; give them the same [runs.N] repeats."
        )
    if all(repeats_of(r.cv) == shared for r in results):
        return results
    say(
        f"run {plan.name}: scored on the {len(shared)} CV repeat(s) that runs "
        f"{', '.join(plan.run.blend)} all have"
    )
    return [
        dataclasses.replace(r, cv=r.cv.loc[r.cv.index.get_level_values("repeat").isin(shared)])
        for r in results
    ]


def blend_candidates(plan: Plan, preds: list[pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What a chosen blend picks from: the rank average of the runs (first, so it wins ties), then each run
    alone."""
    return {
        "rank average": blend_predictions(preds),
        **{f"run {c.name}": p for c, p in zip(plan.components, preds)},
    }


def _score(y: pd.Series, pred: pd.Series) -> float:
    """Spearman of pred against the labelled values of y (NaN labels left out); NaN when undefined."""
    from memo.metrics import spearman

    known = y.notna().to_numpy()
    return spearman(y.to_numpy(float)[known], pred.loc[y.index].to_numpy(float)[known])


def _best(scores: dict[str, float]) -> str:
    """The key with the highest finite score; the first key (the rank average) when none is finite or on
    ties."""
    return max(scores, key=lambda k: -np.inf if not np.isfinite(scores[k]) else scores[k])


def chosen_out_of_fold(cands: dict[str, pd.DataFrame], y: pd.DataFrame, folds) -> pd.DataFrame:
    """Out-of-fold predictions of choosing, per target, among candidate predictions (same ids and columns as
    y):
    each fold takes the candidate that scores best on the *other* folds' rows and labels, so a fold never
    helps choose for itself. The first candidate wins ties and undefined scores."""
    first = next(iter(cands))
    oof = cands[first].loc[y.index, list(y.columns)].copy()
    for _, held in folds:
        rest = np.setdiff1d(np.arange(len(y)), held)
        for j, t in enumerate(y.columns):
            pick = _best({k: _score(y[t].iloc[rest], c[t]) for k, c in cands.items()})
            oof.iloc[held, j] = cands[pick][t].loc[y.index].iloc[held].to_numpy()
    return oof


def _chosen_blend(project, plan: Plan, results: list[RunResult]) -> RunResult:
    """Per target, the rank average of the runs or one run alone: whichever scores best on grouped CV.

    The reported score pays for the choosing: in every repeat, each fold's pick is made on the other
    folds' out-of-fold predictions and labels (the folds of that repeat, so a brand never helps pick
    for itself). The test predictions take the pick with the best mean Spearman over all repeats; only
    the runs a pick takes are fitted in full (after the choice).
    """
    from memo.splits import grouped_kfold

    targets = plan.targets
    table = project.dataset.labelled().table
    oof_parts, totals = [], {}
    for i in repeats_of(results[0].cv):
        cands = blend_candidates(plan, [r.cv.xs(i, level="repeat")[targets] for r in results])
        ids = cands["rank average"].index
        y = table.loc[ids, targets].apply(pd.to_numeric, errors="coerce")
        folds = grouped_kfold(
            table.loc[ids, "group"].astype(str).to_numpy(), n_splits=results[0].folds, seed=project.seed + i
        )
        oof = chosen_out_of_fold(cands, y, folds)
        oof_parts.append(oof.assign(repeat=i).set_index("repeat", append=True).reorder_levels([1, 0]))
        for t in targets:
            for k, c in cands.items():
                totals.setdefault(t, {}).setdefault(k, []).append(_score(y[t], c[t]))
    with np.errstate(all="ignore"):
        mean = {
            t: {k: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for k, v in totals[t].items()}
            for t in targets
        }
    chosen = {t: _best(mean[t]) for t in targets}
    for t in targets:
        say(
            f"run {plan.name}: {t} takes the {chosen[t]} (mean grouped-CV Spearman "
            + ", ".join(f"{k} {v:.3f}" for k, v in mean[t].items())
            + ")"
        )
    oof = pd.concat(oof_parts)
    return RunResult(
        plan, None, oof, cv_scores(project, targets, oof), results[0].folds, chosen=chosen, components=results
    )


def _chosen_test(project, result: RunResult, device: str) -> pd.DataFrame:
    """Test predictions of a chosen blend: each target from its pick, fitting in full only the runs the picks
    take."""
    plan, chosen = result.plan, result.chosen
    picks = set(chosen.values())
    if "rank average" in picks:  # every run is needed
        cands = blend_candidates(
            plan, [_test_of(project, r, plan.targets, device) for r in result.components]
        )
    else:
        skipped = [c.name for c in plan.components if f"run {c.name}" not in picks]
        if skipped:
            say(
                f"run {plan.name}: no target takes run {', '.join(skipped)}, so its fit on all "
                f"{project.dataset.train_split} videos is not needed"
            )
        cands = {
            f"run {r.plan.name}": _test_of(project, r, plan.targets, device)
            for r in result.components
            if r.plan.name not in skipped
        }
    return pd.DataFrame({t: cands[chosen[t]][t] for t in plan.targets})
