"""A sample project in one call, for tests that need a whole memo project on the synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def sample_project(root: Path, settings: dict[str, Any] | None = None, **dataset: Any):
    """Write the synthetic VIDEM-layout dataset under root/data (`dataset`: write_sample_dataset's
    keywords), `memo init --offline` in root, apply `settings` ({"gbt.n_trials": 1, ...}) and save
    them to memo.toml (so the CLI reads the same), and return the opened Project."""
    from memo.config import set_option
    from memo.samplekit.dataset import write_sample_dataset
    from memo.project import Project, init_project

    write_sample_dataset(root / "data", **dataset)
    init_project(root, root / "data", offline=True)
    project = Project.open(root / "memo.toml")
    if not settings:
        return project
    for key, value in settings.items():
        set_option(project.config, key, value)
    return Project.open(project.save())
