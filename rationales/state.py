"""Whether a rationale run is up to date: a fingerprint of everything it read and wrote, saved in
<workdir>/rationales/state.json when it finishes.

    saved = up_to_date(keyed, writer, ["dev", "test"], limit=None)   # the saved summary, or None
    save_state(keyed, writer, ["dev", "test"], None, summary)        # after the log and store are written

The fingerprint holds the data files, the run's [rationale] section, the writer's identity, the
templates, the log file and the feature-store tables the run writes (stat calls and a few small
files: no model, log or array is read), so a run whose fingerprint matches does nothing, in about
a second. `keyed` is the project as the run's store keys see it (memo.rationales.settings.store_view).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo.rationales.log import log_file
from memo.rationales.prompts import load_template

if TYPE_CHECKING:
    from memo.project import Project
    from memo.rationales.writer import Writer


def _state_file(project: Project) -> Path:
    return log_file(project.workdir).with_name("state.json")


def _fingerprint(project: Project, writer: Writer, names: list[str], limit: int | None) -> str:
    """A hash of everything a run reads and writes: memo and library versions, the rationale config and
    aspect definitions, the writer's identity, both templates, the splits and limit, seed and folds,
    the data files, the log file and the feature-store tables of its streams (stat calls and a few
    small files: no model, log or array is read)."""
    import dataclasses

    from memo.features.text import ratings_table, rationale_source, text_table
    from memo.store import file_signature, library_versions, stable_hash

    cfg = project.config.rationale
    source = rationale_source(project)
    tables = [text_table(project, f"rationale.{a}", source) for a in cfg.aspects] + [ratings_table(project)]
    log = log_file(project.workdir)
    parts = {
        "versions": library_versions(),
        "config": {"rationale": dataclasses.asdict(cfg), "source": source, "e5": project.config.models.e5},
        "writer": writer.identity(),
        "templates": [load_template(cfg.prompt).hash, load_template("rating").hash],
        "scope": {
            "splits": names,
            "limit": limit,
            "seed": project.seed,
            "folds": project.config.evaluate.folds,
            "targets": project.targets,
        },
        "data": project.data_signature(),
        "log": [file_signature(p) for p in (log, log.with_name(log.name + "-wal")) if p.is_file()],
        "store": [
            [
                t.key,
                file_signature(t.dir / "manifest.json") if (t.dir / "manifest.json").is_file() else None,
                sum(1 for _ in t.arrays_dir.iterdir()) if t.arrays_dir.is_dir() else 0,
            ]
            for t in tables
        ],
    }
    return stable_hash(parts, 16)


def up_to_date(
    project: Project, writer: Writer, names: list[str], limit: int | None
) -> dict[str, Any] | None:
    """The saved summary when nothing the run reads changed since it was saved, else None."""
    from memo.store import read_saved

    if not _state_file(project).is_file():  # no fingerprint to compute for a first run
        return None
    saved = read_saved(_state_file(project), _fingerprint(project, writer, names, limit))
    if saved is None or not isinstance(saved.get("summary"), dict):
        return None  # changed, or a damaged state file: a full (cached) run
    return {
        **saved["summary"],
        "generated": 0,
        "rated": 0,
        "up_to_date": True,
        "written": saved.get("written", ""),
    }


def save_state(
    project: Project, writer: Writer, names: list[str], limit: int | None, summary: dict[str, Any]
) -> None:
    """Written after the log is closed and the store written, so the fingerprint sees their final state."""
    from memo.store import atomic_write_json

    atomic_write_json(
        _state_file(project),
        {
            "fingerprint": _fingerprint(project, writer, names, limit),
            "summary": summary,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
