"""A sample project in one call, for tests that need a whole memo project on the synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# `memo init --offline` writes the real gemma3-270m for the llm role, whose weights come from an
# extra that CI does not install: tests run the tiny random Gemma-3 of the same architecture
TINY_MODELS = {"models.llm": "tiny:gemma3"}


def sample_project(root: Path, settings: dict[str, Any] | None = None, **dataset: Any):
    """Write the synthetic VIDEM-layout dataset under root/data (`dataset`: write_sample_dataset's
    keywords), `memo init --offline` in root, pin the tiny models (TINY_MODELS), apply `settings`
    ({"gbt.n_trials": 1, ...}) and save them to memo.toml (so the CLI reads the same), and return
    the opened Project."""
    from memo.config import set_option
    from memo.project import Project, init_project
    from memo.samplekit.videm import write_sample_dataset

    write_sample_dataset(root / "data", **dataset)
    init_project(root, root / "data", offline=True)
    project = Project.open(root / "memo.toml")
    for key, value in {**TINY_MODELS, **(settings or {})}.items():
        set_option(project.config, key, value)
    return Project.open(project.save())


class Killed(Exception):
    """Stands for a kill in the middle of a run (SIGKILL leaves the same files behind: writes are atomic)."""
