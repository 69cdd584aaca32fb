"""`memo demo`: the whole pipeline, offline, on the synthetic sample dataset, in a few minutes on a CPU.

It writes the sample dataset (real MP4s with sound, a planted signal), a project configured for
models that need no hub (`memo init --offline`), and then runs each stage with budgets sized
for a laptop: features, rationales for two aspects, brand-grouped evaluation beside the simple
baselines, run file 1, and the report. Every stage is the same code a real project runs.

The budgets are written into the demo's memo.toml when the demo creates it, and every stage reads
them from there with no override in code: so `memo rationale`, `memo evaluate` or `memo submit`
typed in the demo folder afterwards find the demo's work in their caches instead of redoing it.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from memo.progress import say

# Small budgets so the demo finishes in minutes on 2 CPU cores; written into the demo's memo.toml.
DEMO_ASPECTS = ["humor", "emotion"]
DEMO_SETTINGS = {
    # `memo init --offline` writes the real gemma3-270m (the memo[offline] extra); the demo checks the
    # machinery in minutes with the tiny random Gemma-3 of the same architecture, which needs no extra
    "models.llm": "tiny:gemma3",
    "rationale.aspects": DEMO_ASPECTS,
    # untuned members, as `memo init` sets under 2,000 videos: tuning took 69% of the demo and did not pay on
    # VIDEM
    "gbt.n_trials": 0,
    "mindmem.width": 64,
    "mindmem.heads": 4,
    "mindmem.epochs": 40,
    "rationale.max_new_tokens": 24,
    "rationale.few_shot": 1,
    "evaluate.bootstrap": 200,
    # one split: the demo's evaluation always scored one; run 1's search (six candidates on inner folds of
    # each
    # outer fold) over the 5 repeats `memo init` sets on small data would double the demo's time
    "evaluate.repeats": 1,
}


class StageClock:
    """Times the demo's stages and says where its minutes went.

    clock = StageClock()
    with clock("features", "features: ViT frames, E5 texts, ..."):
        run_features(project)
    clock.table()   # one line per stage: seconds and share of the total
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str, title: str):
        say(f"\n== {title}")
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0
        say(f"({self.seconds[name]:.1f}s)")

    def table(self) -> str:
        total = sum(self.seconds.values()) or 1.0
        rows = [f"  {name:12s} {s:7.1f}s  {100 * s / total:3.0f}%" for name, s in self.seconds.items()]
        return "\n".join(["Time per stage:", *rows, f"  {'total':12s} {total:7.1f}s"])


def demo_project(folder: str | Path = "memo-demo", fresh: bool = False):
    """The demo's project: the sample dataset under <folder>/data and <folder>/memo.toml, written once.

    A new memo.toml gets `memo init --offline`'s settings with DEMO_SETTINGS on top, saved to the
    file; an existing one is used as it stands (your edits stay; --fresh starts over). Returns
    the Project opened from the file, so what the stages run is what memo.toml says.
    """
    from memo.config import set_option
    from memo.project import Project, init_project
    from memo.samplekit.videm import write_sample_dataset

    folder = Path(folder).resolve()
    if fresh and folder.exists():
        shutil.rmtree(folder)
    data = folder / "data"
    if not (data / "devset").is_dir():
        write_sample_dataset(data, seed=0)
    config = folder / "memo.toml"
    if not config.is_file():
        init_project(folder, data, team="demo", offline=True)
        project = Project.open(config)
        for key, value in DEMO_SETTINGS.items():
            set_option(project.config, key, value)
        project.save()
    return Project.open(config)


@dataclass
class Demo:
    """What `run_demo` returns: where its outputs are and where its minutes went."""

    outputs: dict[str, Path]  # project, evaluation, report, run file 1
    clock: StageClock


def run_demo(folder: str | Path = "memo-demo", fresh: bool = False) -> Demo:
    """Every stage on the sample dataset in `folder` (made once; --fresh starts over); says each stage as it
    starts."""
    folder = Path(folder).resolve()
    clock = StageClock()
    with clock("data", f"sample dataset -> {folder / 'data'}, settings -> {folder / 'memo.toml'}"):
        project = demo_project(folder, fresh=fresh)
        ds = project.dataset
        say(
            f"{len(ds.splits['dev'].table)} dev videos in {ds.splits['dev'].table['group'].nunique()} "
            "brands, "
            f"{len(ds.splits['test'].table)} test videos in new brands"
        )

    from memo.features import run_features

    with clock("features", "features: ViT frames, E5 texts, audio, video statistics, organiser features"):
        run_features(project)

    from memo.rationales import run_rationales

    with clock("rationales", f"rationales: {', '.join(project.config.rationale.aspects)}"):
        run_rationales(project)  # its summary says what a tiny random writer means for the ratings

    from memo.evaluation import evaluate_models

    with clock(
        "evaluation",
        "evaluation: brand-grouped 5-fold CV of the GBT ensemble and MindMem beside simple baselines",
    ):
        # one split: a pipeline check on synthetic data in seconds (`memo evaluate` repeats it over [evaluate]
        # repeats seeds)
        say(evaluate_models(project, ["gbt", "mindmem"], repeats=1).text())

    from memo.submission import submit_runs

    with clock("run file 1", "run file 1: train on all dev videos, predict the test videos, validate"):
        run_files = submit_runs(project, runs=["1"])

    from memo.evaluation.report import build_report

    with clock("report", "report"):
        report = build_report(project)

    outputs = {"project": folder / "memo.toml", "evaluation": project.workdir / "eval", "report": report}
    outputs.update({f"run file {i + 1}": p for i, p in enumerate(run_files)})
    return Demo(outputs, clock)
