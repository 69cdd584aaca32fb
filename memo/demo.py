"""`memo demo`: the whole pipeline, offline, on the synthetic sample dataset, in a few minutes on a CPU.

It writes the sample dataset (real MP4s with sound, a planted signal), a project configured for
models that need no hub (`memo init --offline`), and then runs each stage with budgets sized
for a laptop: features, rationales for two aspects, brand-grouped evaluation beside the simple
baselines, run file 1, and the report. Every stage is the same code a real project runs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

# Small budgets so the demo finishes in minutes on 2 CPU cores; a real project keeps memo.toml's.
DEMO_SETTINGS = {
    "gbt.n_trials": 4,
    "gbt.timeout": 900.0,  # never reached by 4 trials on 48 videos: the trial budget ends tuning, so the figures repeat
    "mindmem.width": 64,
    "mindmem.heads": 4,
    "mindmem.epochs": 40,
    "rationale.max_new_tokens": 24,
    "rationale.few_shot": 1,
    "evaluate.bootstrap": 200,
}
DEMO_ASPECTS = ["humor", "emotion"]


def _step(title: str):
    typer.secho(f"\n== {title}", bold=True)
    return time.perf_counter()


def run_demo(folder: str | Path = "memo-demo", fresh: bool = False) -> dict[str, Path]:
    from memo.config import set_option
    from memo.demo_data import write_sample_dataset
    from memo.project import Project, init_project

    folder = Path(folder).resolve()
    if fresh and folder.exists():
        shutil.rmtree(folder)
    data = folder / "data"
    t = _step(f"sample dataset -> {data}")
    if not (data / "devset").is_dir():
        write_sample_dataset(data, seed=0)
    if not (folder / "memo.toml").is_file():
        init_project(folder, data, team="demo", offline=True)
    project = Project.open(folder / "memo.toml")
    for key, value in DEMO_SETTINGS.items():
        set_option(project.config, key, value)
    ds = project.dataset
    typer.echo(f"{len(ds.splits['dev'].table)} dev videos in {ds.splits['dev'].table['group'].nunique()} brands, "
               f"{len(ds.splits['test'].table)} test videos in new brands ({time.perf_counter() - t:.1f}s)")

    from memo.features import run_features

    t = _step("features: ViT frames, E5 texts, audio, video statistics, organiser features")
    run_features(project)
    typer.echo(f"({time.perf_counter() - t:.1f}s)")

    from memo.rationales import run_rationales

    t = _step(f"rationales: {', '.join(DEMO_ASPECTS)} (tiny random Gemma-3: checks the machinery, the texts are noise)")
    run_rationales(project, aspects=DEMO_ASPECTS)
    typer.echo(f"({time.perf_counter() - t:.1f}s)")

    from memo.evaluate import evaluate_models

    t = _step("evaluation: brand-grouped 5-fold CV of the GBT ensemble and MindMem beside simple baselines")
    evaluate_models(project, ["gbt", "mindmem"])
    typer.echo(f"({time.perf_counter() - t:.1f}s)")

    from memo.submission import submit_runs

    t = _step("run file 1: train on all dev videos, predict the test videos, validate")
    run_files = submit_runs(project, runs=["1"])
    typer.echo(f"({time.perf_counter() - t:.1f}s)")

    from memo.report import build_report

    t = _step("report")
    report = build_report(project)
    typer.echo(f"({time.perf_counter() - t:.1f}s)")

    outputs = {"project": folder / "memo.toml", "evaluation": project.workdir / "eval", "report": report}
    outputs.update({f"run file {i + 1}": p for i, p in enumerate(run_files)})
    typer.secho("\nDone. Outputs:", bold=True)
    for name, path in outputs.items():
        typer.echo(f"  {name:12s} {path}")
    return outputs
