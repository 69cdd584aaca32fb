"""The sections of `memo report` that show what was trained and submitted: the GBT ensemble's feature
importance (split gain and TreeSHAP), and the runs of memo.toml with their run files and
manifests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memo.evaluation.report_page import Block, Folded, Heading, Page, Paragraph, Section, missing, new_figure

if TYPE_CHECKING:
    from memo.project import Project


TREE_MEMBERS = ("xgboost", "lightgbm", "catboost")  # the members with split gain and TreeSHAP


def _member_gain(member, name: str, n_features: int) -> np.ndarray:
    """(F,) importance of one fitted member, normalised to sum 1: total gain (CatBoost: prediction-value
    change)."""
    if name == "xgboost":
        # {"f12": gain}; absent = never split on
        score = member.get_booster().get_score(importance_type="total_gain")
        v = np.zeros(n_features)
        for k, g in score.items():
            v[int(k[1:])] = g
    elif name == "lightgbm":
        v = np.asarray(member.booster_.feature_importance(importance_type="gain"), float)
    else:
        v = np.asarray(member.get_feature_importance(), float)
    total = v.sum()
    return v / total if total > 0 else v


def _member_shap(member, name: str, F: np.ndarray) -> np.ndarray:
    """(F,) mean |SHAP value| per feature over the rows of F, from each library's own TreeSHAP."""
    if name == "xgboost":
        import xgboost

        contrib = member.get_booster().predict(xgboost.DMatrix(F, missing=np.nan), pred_contribs=True)
    elif name == "lightgbm":
        contrib = member.predict(F, pred_contrib=True)
    else:
        import catboost

        contrib = member.get_feature_importance(catboost.Pool(F), type="ShapValues")
    return np.abs(np.asarray(contrib)[:, :-1]).mean(axis=0)  # last column is the expected value


def _block_of(feature: str) -> str:
    """'e5.title:pc3' -> 'e5.title'; the stream a feature column came from."""
    return re.split(r"[:\[]", feature, maxsplit=1)[0]


def gbt_section(project: Project, page: Page) -> Section:
    """Gain importance of the trained GBT ensemble and, on the training videos, mean |SHAP| (TreeSHAP)."""
    from memo.errors import MemoError
    from memo.submission.models import trained_model

    s = Section("importance", "GBT feature importance")
    try:
        found = trained_model(project, "gbt", run=page.run)
    except MemoError as e:
        s.missing = True
        s.parts.append(missing(str(e)[0].upper() + str(e)[1:]))
        return s
    folder, model = found.folder, found.predictor
    n = len(model.feature_names_)
    F = _training_matrix(project, model, s)
    other = sorted({m for t in model.targets_ for m in model.models_[t] if m not in TREE_MEMBERS})
    gain_rows, shap_rows = _member_importances(model, F)
    if not gain_rows or any(not any(k[0] == t for k in gain_rows) for t in model.targets_):
        s.missing = True
        s.parts.append(
            missing(
                f"The GBT ensemble of {found.source} has no tree member for every target "
                f"(its members: {', '.join(model.members)}); gain and TreeSHAP exist for xgboost, "
                "lightgbm and catboost only."
            )
        )
        return s
    if other:
        s.parts.append(
            Paragraph(
                f"The {' and '.join(other)} member{'s' if len(other) > 1 else ''} of the ensemble "
                f"{'have' if len(other) > 1 else 'has'} no split gain or TreeSHAP and "
                f"{'are' if len(other) > 1 else 'is'} left out here.",
                "note",
            )
        )
    summary = _importance_table(model, gain_rows, shap_rows)
    key = summary.columns[0]
    desc = json.loads((folder / "model.json").read_text()) if (folder / "model.json").is_file() else {}
    s.parts.append(
        Paragraph(
            f"The ensemble of {found.source} ({', '.join(model.members)}; {n} feature columns; ensemble "
            f"{', '.join(f'{t}: {k}' for t, k in (desc.get('ensemble') or {}).items()) or '?'}). "
            "Gain is each member's total split gain (CatBoost: prediction-value change), "
            "normalised per member and averaged; SHAP is the mean absolute TreeSHAP value over the "
            "training videos, "
            "from each library's own TreeSHAP, averaged over members.",
            "caption",
        )
    )
    s.parts.append(_importance_figure(page, summary))
    blocks = summary.groupby(summary.index.map(_block_of)).sum().sort_values(key, ascending=False)
    blocks.index.name = "stream"
    s.parts.append(
        page.table(
            "gbt-importance-by-stream",
            blocks,
            caption="Importance summed over the columns of each feature stream.",
        )
    )
    s.parts.append(Folded("every feature column", [page.table("gbt-importance", summary, digits=4)]))
    if getattr(model, "notes_", None):
        s.parts.append(Paragraph("Notes from training: " + "; ".join(model.notes_), "note"))
    return s


def _training_matrix(project: Project, model, s: Section) -> np.ndarray | None:
    """(N, F) the training videos' feature columns exactly as the members were trained on them (for
    TreeSHAP), or None after saying in `s` why they could not be read."""
    from memo.errors import MemoError

    try:
        from memo.features import load_features

        streams = [p["stream"] for p in model.builder_.parts_ if not p["stream"].startswith("<")]
        X = load_features(
            project, project.dataset.train_split, ["metadata"] + [x for x in streams if x != "metadata"]
        )
        return model.builder_.transform(X)
    except MemoError as e:
        s.parts.append(missing(f"SHAP values need the training features, which could not be read: {e}"))
        return None


def _member_importances(model, F: np.ndarray | None) -> tuple[dict, dict]:
    """{(target, member): (F,) importance} of each tree member: gain, and mean |SHAP| over the rows of F
    when there are any. Ridge and kernel ridge members have no split gain and no TreeSHAP."""
    n = len(model.feature_names_)
    gain_rows, shap_rows = {}, {}
    for t in model.targets_:
        for m, est in model.models_[t].items():
            if m not in TREE_MEMBERS:
                continue
            gain_rows[(t, m)] = _member_gain(est, m, n)
            if F is not None:
                shap_rows[(t, m)] = _member_shap(est, m, F)
    return gain_rows, shap_rows


def _importance_table(model, gain_rows: dict, shap_rows: dict) -> pd.DataFrame:
    """One row per feature column: gain per target averaged over the members, then mean |SHAP| per target
    (when computed); largest first by the first column."""
    names = list(model.feature_names_)
    gain = pd.DataFrame(gain_rows, index=names)
    summary = pd.DataFrame({f"gain {t}": gain.xs(t, axis=1, level=0).mean(axis=1) for t in model.targets_})
    if shap_rows:
        shap = pd.DataFrame(shap_rows, index=names)
        for t in model.targets_:
            summary[f"mean |SHAP| {t}"] = shap.xs(t, axis=1, level=0).mean(axis=1)
    return summary.sort_values(summary.columns[0], ascending=False)


def _importance_figure(page: Page, summary: pd.DataFrame) -> Block:
    """Bars of the 20 most important feature columns, one panel per column of `summary`."""
    top = summary.head(20)
    cols = [c for c in summary.columns]
    fig, axes = new_figure(3.6 * len(cols) + 2.0, 0.24 * len(top) + 1.2, ncols=len(cols))
    for ax, c in zip(axes[0], cols):
        ax.barh(
            list(top.index[::-1]),
            top[c].to_numpy()[::-1],
            color="#4c72b0" if c.startswith("gain") else "#dd8452",
        )
        ax.set_title(c, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    return page.figure(
        "gbt-importance", fig, f"The {len(top)} most important feature columns of the GBT ensemble."
    )


# ----------------------------------------------------------------------------- runs and their manifests


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj if not isinstance(obj, list) else ", ".join(map(str, obj))
    return out


def runs_section(project: Project, page: Page) -> Section:
    """The runs of memo.toml, the run files in the submission folder, and the manifest beside each."""
    import dataclasses

    cfg = project.config
    s = Section("runs", "Runs and run files")
    if cfg.runs:
        runs = pd.DataFrame(
            {
                name: {
                    k: (
                        ", ".join(map(str, v))
                        if isinstance(v, list)
                        else (json.dumps(v) if isinstance(v, dict) else v)
                    )
                    for k, v in dataclasses.asdict(r).items()
                    if v not in ("", [], {})
                }
                for name, r in cfg.runs.items()
            }
        ).T
        runs.index.name = "run"
        s.parts.append(page.table("runs-config", runs, caption="Runs defined in memo.toml."))
    else:
        s.parts.append(missing("memo.toml defines no runs; add [runs.1] (see `memo init`)."))
    folder = cfg.resolve(cfg.submission.out)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        s.missing = True
        s.parts.append(missing(f"No run files in {folder} yet; run `memo submit --run 1` (or --all)."))
        return s
    for f in files:
        manifest = _manifest_of(f)
        s.parts.append(Heading(f.name))
        if manifest is None:
            s.parts.append(
                missing(
                    f"{f.name} has no manifest beside it; rewrite it with `memo submit --force` to "
                    "record how it was made."
                )
            )
            continue
        path, data = manifest
        cv = data.get("cv") or {}
        scores = cv.get("scores") or {}
        if scores:
            tab = pd.DataFrame(scores).T
            tab.index.name = "target"
            s.parts.append(
                Paragraph(
                    cv.get("scheme", "cross-validation")
                    + (f", {cv['videos']} videos" if cv.get("videos") else ""),
                    "caption",
                )
            )
            s.parts.append(page.table(f"run-cv-{f.stem}", tab))
        brief = {
            k: v
            for k, v in _flatten({k: v for k, v in data.items() if k not in ("config", "versions")}).items()
        }
        flat = pd.DataFrame({"value": {k: str(v)[:300] for k, v in brief.items()}})
        flat.index.name = f"manifest ({path.name})"
        s.parts.append(Folded("manifest", [page.table(f"manifest-{f.stem}", flat)]))
    return s


def _manifest_of(run_file: Path) -> tuple[Path, dict] | None:
    """The JSON manifest written beside a run file, if any."""
    for cand in (
        run_file.with_suffix(".json"),
        run_file.with_name(run_file.name + ".json"),
        run_file.with_suffix(".manifest.json"),
        run_file.with_name(run_file.stem + ".manifest.json"),
    ):
        if cand.is_file():
            try:
                return cand, json.loads(cand.read_text())
            except ValueError:
                return None
    return None
