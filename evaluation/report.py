"""`memo report`: one self-contained HTML page (plus PNGs) of everything a project has produced.

    path = build_report(project)             # <workdir>/report/report.html, figures in .../figures/

The page reads what the stages left on disk and shows it; it computes nothing it could invent:
- dataset: `memo.data_check.summarize` and the target distributions of the labelled split;
- cross-validation: every table under `<workdir>/eval/` (Spearman with 95% intervals, baselines
  on the same folds), predicted-against-true scatter and per-brand Spearman from the
  out-of-fold predictions saved there;
- MindMem ablation bars from `<workdir>/ablation/`;
- GBT feature importance (gain, and mean |SHAP| from each library's own TreeSHAP) of the model `memo train
gbt`
  saved, else of the first run that trained a GBT (`memo submit --run N`; `memo report --run N` picks one);
- video statistics (pacing, complexity, emotion ...) from the feature store, against the targets;
- the runs of memo.toml and the manifest beside each run file.
A part whose inputs are missing says so and names the command that makes them.

Up to date: report.json keeps a fingerprint of what the page reads (memo.toml's settings, the
work folder's files but the report's own, the run files, the data files, memo and library
versions; stat calls only). With nothing changed the page is not drawn again: `build_report`
says so and returns the existing file (a second `memo demo` costs about a second here, not ten).

Three kinds of module share the work: this one lists the sections in page order and writes the
files; memo.evaluation.report_sections_data, _cv and _models prepare each section as data
(paragraphs, DataFrames, figures; memo.evaluation.report_sections says which holds which);
memo.evaluation.report_page holds those blocks and renders them through
templates/report.html.jinja. Figures are drawn with matplotlib's object API (no pyplot, no global
backend switch), saved as PNG beside the page and embedded as base64 data URIs, so the page opens
from disk, offline, without a server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from memo.evaluation.report_page import Page, Section, missing, render_page
from memo.evaluation.report_sections_cv import (
    ablation_section,
    brand_section,
    evaluation_section,
    scatter_section,
)
from memo.evaluation.report_sections_data import dataset_section, overview_section, stats_section
from memo.evaluation.report_sections_models import gbt_section, runs_section
from memo.store import atomic_write_json, atomic_write_text, read_saved

if TYPE_CHECKING:
    from memo.project import Project

__all__ = ["build_report", "build_sections", "report_title"]

# Page order: (anchor id, heading, the function that prepares it). A new section is a function and a line.
SECTIONS: list[tuple[str, str, Callable[[Project, Page], Section]]] = [
    ("overview", "Project", overview_section),
    ("dataset", "Dataset", dataset_section),
    ("evaluation", "Cross-validation", evaluation_section),
    ("scatter", "Predicted against true", scatter_section),
    ("brands", "Per-brand Spearman", brand_section),
    ("ablation", "MindMem ablation", ablation_section),
    ("stats", "Video statistics against the targets", stats_section),
    ("importance", "GBT feature importance", gbt_section),
    ("runs", "Runs and run files", runs_section),
]


def build_sections(project: Project, page: Page) -> list[Section]:
    """Every section in page order; one that fails to draw says why instead of sinking the page."""
    from memo.errors import MemoError

    out = []
    for sid, title, make in SECTIONS:
        try:
            out.append(make(project, page))
        except Exception as e:  # noqa: BLE001 - one broken input must not hide the rest of the page
            why = str(e) if isinstance(e, MemoError) else f"{type(e).__name__}: {e}"
            out.append(Section(sid, title, [missing(f"This part could not be drawn: {why}")], missing=True))
    return out


def report_title(project: Project) -> str:
    """'memo report: <project folder> (<layout> data <folder>, team <team>)': the project and the dataset, by
    name."""
    root = project.dataset.root
    data = root.name
    if data.lower() in {"data", "dataset", "datasets", "videm", "raw"} and root.parent.name:
        data = f"{root.parent.name}/{root.name}"  # 'data' alone names nothing
    name = project.config.root.name
    layout = project.dataset.layout
    team = project.config.project.team
    return (
        f"memo report: {name} ({layout} data {data}, team {team})"
        if name != data
        else f"memo report: {data} ({layout}, team {team})"
    )


def build_report(project: Project, out: str | Path | None = None, run: str | None = None) -> Path:
    """Write <out>/report.html (self-contained) and <out>/figures/*.png; return the HTML path.

    `out` defaults to <workdir>/report. Also writes <out>/report.json listing the sections, the
    figures and the tables, and which sections only say what is missing.
    """
    from memo.progress import say

    out = Path(out) if out else project.workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    fingerprint = report_fingerprint(project, out, run)
    if path.is_file() and read_saved(out / "report.json", fingerprint) is not None:
        say(f"report is up to date (nothing it reads changed): {path}")
        return path
    page = Page(out, run=run)
    sections = build_sections(project, page)
    atomic_write_text(path, render_page(report_title(project), sections))
    index = {
        "html": path.name,
        "sections": [{"id": s.id, "title": s.title, "missing": s.missing} for s in sections],
        "figures": {k: str(p.relative_to(out)) for k, p in page.figures.items()},
        "tables": page.tables,
        "fingerprint": fingerprint,  # written last, with the page done: a killed write is never up to date
    }
    atomic_write_json(out / "report.json", index)
    return path


def report_fingerprint(project: Project, out: Path, run: str | None) -> str:
    """A hash of everything the page reads: settings, the work folder's files (less the report's own
    folder, the rationale log, which no section reads, and the data's hash cache), the run files, the data,
    versions."""
    from memo.store import file_signature, library_versions, stable_hash

    cfg = project.config
    work = project.workdir.resolve()
    skip = [Path(out).resolve(), work / "rationales", work / "data_hashes.json"]
    files = (
        [f for f in file_signature(work) if not any((work / f[0]).is_relative_to(s) for s in skip)]
        if work.is_dir()
        else []
    )
    runs_dir = cfg.resolve(cfg.submission.out)
    parts = {
        "versions": library_versions(),
        "config": cfg.to_dict(),
        "run": run,
        "out": str(out),
        "work": files,
        "run_files": file_signature(runs_dir) if runs_dir.exists() else [],
        "data": project.data_signature() if project.data_path.exists() else [],
    }
    return stable_hash(parts, 16)
