"""Scoring new ads with a run's trained model: `memo score`.

    ads = read_ads("ads.csv")                                     # memo.submission.ads: validated
    df = score_ads(project, "1", ads, explain=True)                # the model `memo submit --run 1` trained
    df = score_ads_from_folder("run1-export", ads)                 # a folder `memo export --run 1` wrote
    df["memorability_score"], df["memorability_score_percentile"], df["reasons"]

One path for both: a ScoringModel (the fitted predictor, the streams it reads, the run's config,
the row a new ad starts from, the run's cross-validated predictions) is made from the project
(`run_model`) or read back from an exported folder (`folder_model`), and `score_with` computes the
ads' features (memo.submission.ads.ads_features), predicts each ad alone and adds:
- `<target>_percentile`: where the ad's score falls among the run's own out-of-fold predictions on
  the labelled videos (every CV repeat), 0-100 by mid-rank. Those are the model's scores of videos
  it did not train on, as a new ad is; its in-sample predictions are more spread out than that,
  and the targets themselves far more spread out than any prediction (a ridge shrinks to the
  mean), so against either a new ad would look more average, or more extreme, than it is.
- with `explain`: `reasons`, per target the 3 largest contributions (memo.predictors' explanation
  protocol), named in words (memo.baselines.blocks.feature_words), with the base value and the
  rest, which add up to the score before clipping. A model without `explain` gives none, and
  `attrs["explain_note"]` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import memo
from memo.errors import MemoError
from memo.predictors import BASE, explains
from memo.submission.ads import ads_features, base_features, predict_each, read_ads, validate_ads

__all__ = ["ScoringModel", "read_ads", "score_ads", "score_ads_from_folder", "scores_text", "write_scores"]

if TYPE_CHECKING:
    from memo.config import Config
    from memo.project import Project
    from memo.store import Features

# an exported folder (memo.submission.export writes it, `folder_model` reads it)
FORMAT = 1
SCORING, BASE_ARRAYS, REFERENCE, MODEL_DIR = "scoring.json", "base.npz", "reference.csv", "model"
TOP = 3  # reasons per ad and target


@dataclass
class ScoringModel:
    """What scoring a new ad needs, from a project's run or an exported folder."""

    run: str
    source: str  # for people: "run 1 (<model folder>)" or "<export folder> (run 1)"
    est: Any  # the fitted predictor (memo.predictors contract)
    predictor: str
    targets: list[str]
    streams: list[str]  # what the model reads
    config: Config  # the run's: its encoder and extractors settings
    base: Features  # the one row a new ad starts from (memo.submission.ads.base_features)
    # (repeat, id) x targets: the run's out-of-fold predictions on the labelled videos
    reference: pd.DataFrame
    cache: Path  # where the ads' own stores go
    notes: list[str] = field(default_factory=list)
    extractors: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # the model's meta.json


def score_ads(
    project: Project, run: str, ads: pd.DataFrame, explain: bool = False, device: str = "auto"
) -> pd.DataFrame:
    """Scores of ads in no split by the model `memo submit --run RUN` trained (the module docstring): index =
    ad id; each target, `<target>_percentile` and, with `explain`, `reasons`."""
    return score_with(run_model(project, str(run), device), ads, explain, device)


def score_ads_from_folder(
    folder: str | Path,
    ads: pd.DataFrame,
    explain: bool = False,
    device: str = "auto",
    workdir: str | Path | None = None,
) -> pd.DataFrame:
    """score_ads with a folder `memo export` wrote, no project needed; the ads' features are kept under
    `workdir` (default: <folder>/.cache)."""
    return score_with(folder_model(folder, workdir), ads, explain, device)


# ----------------------------------------------------------------------------- the model, two ways


def run_model(project: Project, run: str, device: str = "auto") -> ScoringModel:
    """Run `run`'s fitted model, its CV predictions and the row a new ad starts from; one sentence naming
    `memo submit --run RUN` when the run has not trained for the current memo.toml."""
    from memo.submission.models import trained_model
    from memo.submission.plan import run_folder, run_settings
    from memo.submission.runs import CV_PREDICTIONS, _read_cv

    found = trained_model(project, run=run)
    plan = found.plan
    cv = run_folder(project, plan) / CV_PREDICTIONS
    if not cv.is_file():
        raise MemoError(
            f"run {run} has no cross-validation predictions for the current memo.toml; run `memo submit "
            f"--run {run}` first."
        )
    reading = run_settings(project, plan)
    base, notes = base_features(reading, found.predictor, None, None, list(plan.streams))
    # through the export's own form, so a run and its exported folder score from the very same row
    base = base_from_saved(*base_to_saved(base))
    return ScoringModel(
        run=run,
        source=found.source,
        est=found.predictor,
        predictor=plan.run.predictor,
        targets=list(plan.targets),
        streams=list(plan.streams),
        config=reading.config,
        base=base,
        reference=_read_cv(cv)[list(plan.targets)],
        cache=project.workdir / "ads",
        notes=notes,
        extractors=list(plan.extractors),
        meta=found.meta,
    )


def folder_model(folder: str | Path, workdir: str | Path | None = None) -> ScoringModel:
    """The ScoringModel of a folder `memo export` wrote; one sentence when it is not one, is damaged, or
    comes from another memo version."""
    from memo.config import Config, from_dict
    from memo.submission.runs import _read_cv

    folder = Path(folder)
    info = _read_info(folder)
    try:
        config = from_dict(Config, info["config"])
        est = _load_model(folder, info["predictor"])
        with np.load(folder / BASE_ARRAYS, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        base = base_from_saved(info["base"], arrays)
        reference = _read_cv(folder / REFERENCE)[list(info["targets"])]
        meta = json.loads((folder / MODEL_DIR / "meta.json").read_text())
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise MemoError(
            f"{folder} is a damaged model folder ({type(e).__name__}: {e}); export it again with `memo "
            "export --run N DIR`."
        ) from None
    return ScoringModel(
        run=str(info["run"]),
        source=f"{folder} (run {info['run']}, exported {info.get('exported', '?')})",
        est=est,
        predictor=info["predictor"],
        targets=list(info["targets"]),
        streams=list(info["streams"]),
        config=config,
        base=base,
        reference=reference,
        cache=Path(workdir) if workdir else folder / ".cache",
        notes=list(info.get("notes", [])),
        extractors=list(info.get("extractors", [])),
        meta=meta,
    )


def _load_model(folder: Path, predictor: str):
    """The exported model, through its predictor's own loader (JSON and arrays, never a pickle)."""
    from memo.predictors import PREDICTORS

    try:
        return PREDICTORS.get(predictor).load(folder / MODEL_DIR)
    except MemoError as e:
        raise MemoError(
            f"the model in {folder} cannot be loaded ({str(e).rstrip('.')}); export the run again with "
            "`memo export --run N DIR`."
        ) from None


def _read_info(folder: Path) -> dict[str, Any]:
    path = folder / SCORING
    if not path.is_file():
        raise MemoError(
            f"{folder} is not a model folder memo exported (it has no {SCORING}); write one with `memo "
            "export --run N DIR`."
        )
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("format") != FORMAT or "memo" not in info:
        raise MemoError(
            f"{path} is damaged or not from memo; export the run again with `memo export --run N DIR`."
        )
    if info["memo"] != memo.__version__:
        raise MemoError(
            f"{folder} was exported by memo {info['memo']} and this is memo {memo.__version__}; install memo "
            f"{info['memo']}, or export the run again with this memo."
        )
    return info


def base_to_saved(base: Features) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The base row as JSON (its table row, stream names) and arrays (values and masks), no pickle."""
    row = base.table.iloc[0]
    table = {str(c): (None if _missing(v) else v.item() if hasattr(v, "item") else v) for c, v in row.items()}
    streams = [{"name": n, "names": s.names} for n, s in base.streams.items()]
    arrays = {}
    for k, s in enumerate(base.streams.values()):
        arrays[f"values{k}"], arrays[f"mask{k}"] = s.values, s.mask
    return {"id": base.ids[0], "group": str(base.groups[0]), "table": table, "streams": streams}, arrays


def base_from_saved(info: dict[str, Any], arrays: dict[str, np.ndarray]) -> Features:
    from memo.store import Features, Stream

    table = pd.DataFrame({c: [v] for c, v in info["table"].items()}, index=pd.Index([info["id"]], name="id"))
    streams = {
        s["name"]: Stream(
            arrays[f"values{k}"].astype(np.float32), arrays[f"mask{k}"].astype(bool), s["names"]
        )
        for k, s in enumerate(info["streams"])
    }
    return Features([info["id"]], np.array([info["group"]]), table, streams)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


# ----------------------------------------------------------------------------- scoring


def score_with(
    model: ScoringModel, ads: pd.DataFrame, explain: bool = False, device: str = "auto"
) -> pd.DataFrame:
    """The ads scored by `model` (the module docstring); attrs: run, source, notes, percentile_of and, with
    explain, explain_note where the model gives no reasons."""
    ads = validate_ads(ads)
    X = ads_features(model.config, model.base, ads, model.streams, device, model.cache)
    pred = predict_each(model.est, X)
    out = pd.DataFrame(index=pd.Index(list(X.ids), name="id"))
    for t in model.targets:
        out[t] = pred[t].to_numpy(float)
        out[f"{t}_percentile"] = percentile(model.reference[t].to_numpy(float), out[t].to_numpy())
    n = model.reference.index.get_level_values("id").nunique()
    out.attrs.update(
        run=model.run,
        source=model.source,
        notes=list(model.notes),
        percentile_of=f"the run's cross-validated predictions on its {n} labelled videos",
    )
    if explain:
        if explains(model.est):
            E = model.est.explain(X)
            out["reasons"] = reasons(E, X, model.targets)
            if not E.attrs.get("exact", True):
                out.attrs["notes"].append(
                    "the reasons of a rank-averaged ensemble are the mean of its members' contributions, "
                    "not an exact split of the score."
                )
        else:
            out["reasons"] = [{} for _ in range(len(out))]
            out.attrs["explain_note"] = (
                f"the {model.predictor} model gives no reasons (it has no explain); linear models and the "
                "GBT ensemble do."
            )
    return out


def percentile(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N,) mid-rank percentile, 0-100, of each score among `reference` (NaN left out)."""
    ref = np.sort(reference[np.isfinite(reference)])
    if not len(ref):
        return np.full(len(scores), np.nan)
    below = np.searchsorted(ref, scores, side="left")
    upto = np.searchsorted(ref, scores, side="right")
    return 100.0 * (below + upto) / (2 * len(ref))


def grouped_contributions(E: pd.DataFrame) -> pd.DataFrame:
    """An explanation (memo.predictors' protocol) by reason: (id, target, feature, words, contribution), the
    columns of an embedding added up under their stream (memo.baselines.blocks.feature_words)."""
    from memo.baselines.blocks import feature_words

    words = {f: feature_words(f) for f in E["feature"].unique()}
    E = E.assign(feature=E["feature"].map(lambda f: words[f][0]))
    said = dict(words.values())
    out = E.groupby(["id", "target", "feature"], sort=False, as_index=False)["contribution"].sum()
    out.insert(3, "words", out["feature"].map(said))
    return out


def reasons(E: pd.DataFrame, X: Features, targets: list[str], top: int = TOP) -> list[dict[str, Any]]:
    """Per ad, per target: {"base", "top": the `top` largest contributions by size (feature, words,
    contribution, value where the column has one), "rest"}; base + top + rest is the score before
    clipping."""
    G = grouped_contributions(E)
    out = []
    for i in X.ids:
        per = {}
        for t in targets:
            mine = G[(G["id"] == i) & (G["target"] == t)]
            if mine.empty:
                continue
            parts = mine[mine["feature"] != BASE]
            ranked = parts.iloc[np.argsort(-parts["contribution"].abs().to_numpy(), kind="stable")[:top]]
            per[t] = {
                "base": float(mine.loc[mine["feature"] == BASE, "contribution"].sum()),
                "top": [
                    _reason(r.feature, r.words, float(r.contribution), X, i) for r in ranked.itertuples()
                ],
                "rest": float(parts["contribution"].sum() - ranked["contribution"].sum()),
            }
        out.append(per)
    return out


def _reason(group: str, words: str, contribution: float, X: Features, ad: str) -> dict[str, Any]:
    """One reason; `value` where its column has a name and the ad has it, `missing` where the ad lacks its
    stream (a tree routes a missing value down a branch of its own, which counts too)."""
    r: dict[str, Any] = {"feature": group, "words": words, "contribution": contribution}
    stream, _, column = group.partition(":")
    s = X.streams.get(stream)
    if s is None:
        return r
    k = X.ids.index(ad)
    if not s.mask[k].any():
        r["missing"] = True
    elif s.names and column in s.names:
        r["value"] = float(s.values[k, 0, s.names.index(column)])
    return r


# ----------------------------------------------------------------------------- what `memo score` prints


def scores_text(df: pd.DataFrame) -> str:
    """The table `memo score` prints, the reasons (with --explain), where the percentiles come from, the
    notes."""
    from memo.progress import table_text

    scores = df.drop(columns=["reasons"], errors="ignore").copy()
    for c in scores.columns:
        scores[c] = scores[c].map("{:.0f}".format if c.endswith("_percentile") else "{:.3f}".format)
    lines = [table_text(scores.reset_index())]
    if "reasons" in df:
        for i, per in df["reasons"].items():
            for t, r in per.items():
                lines.append(f"{i} {t} {df.at[i, t]:.3f}: base {r['base']:.3f}")
                lines += [f"  {_signed(x)}" for x in r["top"]]
                lines.append(f"  {r['rest']:+.3f} everything else")
    a = df.attrs
    if a.get("explain_note"):
        lines.append(a["explain_note"])
    lines.append(f"percentiles: among {a.get('percentile_of')}; model: {a.get('source')}.")
    lines += [f"note: {n}" for n in a.get("notes", [])]
    return "\n".join(lines)


def _signed(r: dict[str, Any]) -> str:
    value = f" ({r['value']:.3g})" if "value" in r else " (missing for this ad)" if r.get("missing") else ""
    return f"{r['contribution']:+.3f} {r['words']}{value}"


def scores_json(df: pd.DataFrame) -> dict[str, Any]:
    """What --json writes: per ad its scores, percentiles and reasons, and where they come from."""
    targets = [c for c in df.columns if f"{c}_percentile" in df.columns]
    ads = []
    for i, row in df.iterrows():
        ad = {
            "id": i,
            "scores": {t: float(row[t]) for t in targets},
            "percentiles": {t: float(row[f"{t}_percentile"]) for t in targets},
        }
        if "reasons" in df:
            ad["reasons"] = row["reasons"]
        ads.append(ad)
    keep = ("run", "source", "percentile_of", "notes", "explain_note")
    return {**{k: v for k, v in df.attrs.items() if k in keep}, "ads": ads}


def write_scores(
    df: pd.DataFrame, json_path: str | Path | None = None, csv_path: str | Path | None = None
) -> None:
    """--json FILE (scores, percentiles, reasons) and --out FILE.csv (scores and percentiles per ad)."""
    from memo.store import atomic_write_json, atomic_write_text

    if json_path:
        atomic_write_json(Path(json_path), scores_json(df))
    if csv_path:
        flat = df.drop(columns=["reasons"], errors="ignore")
        atomic_write_text(Path(csv_path), flat.to_csv(float_format="%.10g"))
