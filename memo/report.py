"""`memo report`: one self-contained HTML page (plus PNGs) of everything a project has produced.

    path = build_report(project)             # <workdir>/report/report.html, figures in .../figures/

The page reads what the stages left on disk and shows it; it computes nothing it could invent:
- dataset: `memo.data.summarize` and the target distributions of the labelled split;
- cross-validation: every table under `<workdir>/eval/` (Spearman with 95% intervals, baselines
  on the same folds), predicted-against-true scatter and per-brand Spearman from the
  out-of-fold predictions saved there;
- MindMem ablation bars from `<workdir>/ablation/`;
- GBT feature importance (gain; SHAP when the `shap` package is installed) from `<workdir>/models/gbt/`;
- video statistics (pacing, complexity, emotion ...) from the feature store, against the targets;
- the runs of memo.toml and the manifest beside each run file.
A part whose inputs are missing says so and names the command that makes them.

Figures are drawn with matplotlib's object API (no pyplot, no global backend switch), saved as
PNG beside the page and embedded as base64 data URIs, so the page opens from disk, offline,
without a server.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from memo.store import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from memo.project import Project


# ----------------------------------------------------------------------------- page building blocks


@dataclass
class Section:
    """One part of the page: an anchor id, a heading, and HTML body pieces in order."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)
    missing: bool = False  # True when the section could only say what is missing

    def html(self) -> str:
        return f'<section id="{self.id}"><h2>{html.escape(self.title)}</h2>\n' + "\n".join(self.parts) + "\n</section>"


class Page:
    """Collects sections and figures; figures go to <out>/figures/<name>.png and into the HTML."""

    def __init__(self, out: Path):
        self.out = out
        self.figures: dict[str, Path] = {}
        self.tables: list[str] = []
        self.sections: list[Section] = []

    def figure(self, name: str, fig, caption: str) -> str:
        """Save a matplotlib Figure as PNG and return an <img> in a <figure> with the PNG inlined."""
        name = _slug(name)
        if name in self.figures:
            raise ValueError(f"figure {name!r} is drawn twice")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = buf.getvalue()
        path = self.out / "figures" / f"{name}.png"
        atomic_write_bytes(path, data)
        self.figures[name] = path
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (
            f'<figure><img id="fig-{name}" data-figure="{name}" alt="{html.escape(caption)}" src="{uri}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def table(self, name: str, df: pd.DataFrame, caption: str = "", index: bool = True, digits: int = 3) -> str:
        """A DataFrame as an HTML table with a data-table name (the browser test looks for them)."""
        name = _slug(name)
        self.tables.append(name)
        body = df.to_html(index=index, border=0, na_rep="–", float_format=lambda v: f"{v:.{digits}f}", escape=True)
        body = body.replace('<table class="dataframe">', f'<table class="dataframe" id="table-{name}" data-table="{name}">', 1)
        cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
        return f'<div class="table-wrap">{cap}{body}</div>'


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{html.escape(text)}</p>' if cls else f"<p>{html.escape(text)}</p>"


def _missing(text: str) -> str:
    """A plain statement of what is not there yet and the command that makes it."""
    return f'<p class="missing">{html.escape(text)}</p>'


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _new_figure(width: float = 6.0, height: float = 3.6, ncols: int = 1, nrows: int = 1):
    """A matplotlib Figure with axes, without pyplot (so no GUI backend is ever touched)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


# ----------------------------------------------------------------------------- reading what stages wrote


def _read_table(path: Path) -> pd.DataFrame | None:
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".json":
            obj = json.loads(path.read_text())
            return pd.DataFrame(obj if isinstance(obj, list) else obj.get("rows", []))
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    return None


def _labelled_table(project: "Project") -> pd.DataFrame:
    return project.dataset.labelled().table


def _targets(project: "Project") -> list[str]:
    try:
        return project.targets
    except Exception:  # a project whose configured targets are wrong still gets a report
        return list(project.dataset.labelled().target_columns)


# ----------------------------------------------------------------------------- sections


def overview_section(project: "Project", page: Page) -> Section:
    import importlib.metadata as md

    cfg = project.config
    s = Section("overview", "Project")
    rows = {
        "memo.toml": str(cfg.path) if cfg.path else "(defaults; no memo.toml)",
        "dataset": str(project.data_path),
        "layout": project.dataset.layout,
        "targets": ", ".join(_targets(project)),
        "work folder": str(project.workdir),
        "seed": str(project.seed),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "memo version": md.version("memo") if _installed("memo") else "unknown",
    }
    models = {role: getattr(cfg.models, role) for role in ("vit", "e5", "audio", "llm")}
    for role, name in models.items():
        rows[f"model: {role}"] = name
    df = pd.DataFrame({"value": rows})
    s.parts.append(page.table("project", df))
    tiny = [f"{role} = {name}" for role, name in models.items() if str(name).startswith("tiny:")]
    if tiny:
        s.parts.append(
            _p(
                "This project uses tiny randomly initialised models (" + ", ".join(tiny) + "): they check the pipeline "
                "end to end; numbers that rest on them carry no knowledge.",
                "warning",
            )
        )
    s.parts.append(
        _p(
            "Every score on this page is a prediction or a cross-validated measurement of a model against the "
            "dataset's human scores; nothing here is measured human recall of new material.",
            "note",
        )
    )
    return s


def _installed(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def dataset_section(project: "Project", page: Page) -> Section:
    """Per-split counts and modalities, and the distribution of each target."""
    from memo.data import summarize

    ds = project.dataset
    s = Section("dataset", "Dataset")
    summary = summarize(ds)
    s.parts.append(page.table("dataset-summary", summary.T, caption="One column per split: videos, brands, targets (mean ± sd [min, max]), videos with each modality."))
    if ds.problems:
        s.parts.append(_p(f"{len(ds.errors)} defect(s) and {len(ds.problems) - len(ds.errors)} note(s) in the dataset; `memo data check` lists them.", "note"))
    table = _labelled_table(project)
    targets = _targets(project)
    if targets:
        fig, axes = _new_figure(3.2 * len(targets) + 0.4, 2.8, ncols=len(targets))
        for ax, t in zip(axes[0], targets):
            v = pd.to_numeric(table[t], errors="coerce").dropna()
            ax.hist(v, bins=min(30, max(5, len(v) // 5)), color="#4c72b0", edgecolor="white")
            ax.set_title(t, fontsize=10)
            ax.set_xlabel("score")
            ax.set_ylabel("videos")
        s.parts.append(page.figure("targets", fig, f"Distribution of the targets on the {ds.train_split} split ({len(table)} videos)."))
        groups = table["group"].value_counts()
        per_brand = pd.DataFrame({"videos": groups})
        for t in targets:
            per_brand[f"mean {t}"] = pd.to_numeric(table[t], errors="coerce").groupby(table["group"]).mean()
        per_brand.index.name = "brand"
        s.parts.append(
            f"<details><summary>{len(per_brand)} brands of the {html.escape(ds.train_split)} split</summary>"
            + page.table("brands", per_brand.sort_values("videos", ascending=False))
            + "</details>"
        )
    return s


def build_sections(project: "Project", page: Page) -> list[Section]:
    """Every section in page order; one that fails to draw says why instead of sinking the page."""
    makers: list[tuple[str, str, Callable[["Project", Page], Section]]] = [
        ("overview", "Project", overview_section),
        ("dataset", "Dataset", dataset_section),
    ]
    out = []
    for sid, title, make in makers:
        try:
            out.append(make(project, page))
        except Exception as e:  # noqa: BLE001 - one broken input must not hide the rest of the page
            from memo.errors import MemoError

            sec = Section(sid, title, missing=True)
            why = str(e) if isinstance(e, MemoError) else f"{type(e).__name__}: {e}"
            sec.parts.append(_missing(f"This part could not be drawn: {why}"))
            out.append(sec)
    return out


# ----------------------------------------------------------------------------- the page

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0; color: #222; }
header { background: #23395d; color: white; padding: 14px 28px; }
header h1 { margin: 0; font-size: 1.5em; }
nav { padding: 8px 28px; background: #eef2f7; font-size: 0.92em; }
nav a { margin-right: 14px; color: #23395d; }
main { padding: 0 28px 40px; max-width: 1200px; }
section { border-bottom: 1px solid #ddd; padding-bottom: 14px; }
h2 { color: #23395d; margin-top: 28px; }
table.dataframe { border-collapse: collapse; font-size: 0.85em; margin: 6px 0 12px; }
table.dataframe th, table.dataframe td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
table.dataframe th { background: #f1f3f6; }
.table-wrap { overflow-x: auto; }
.caption { font-size: 0.9em; color: #555; margin-bottom: 2px; }
figure { display: inline-block; margin: 8px 14px 8px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
.missing { background: #fff6e0; border-left: 4px solid #e0a800; padding: 6px 10px; }
.warning { background: #fdecea; border-left: 4px solid #d9534f; padding: 6px 10px; }
.note { color: #555; font-style: italic; }
pre { background: #f7f7f9; padding: 8px; font-size: 0.8em; overflow-x: auto; }
"""


def render_page(title: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(s.html() for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{html.escape(title)}</h1></header><nav>{nav}</nav>\n<main>{body}</main></body></html>\n"
    )


def build_report(project: "Project", out: str | Path | None = None) -> Path:
    """Write <out>/report.html (self-contained) and <out>/figures/*.png; return the HTML path.

    `out` defaults to <workdir>/report. Also writes <out>/report.json listing the sections, the
    figures and the tables, and which sections only say what is missing.
    """
    out = Path(out) if out else project.workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    page = Page(out)
    sections = build_sections(project, page)
    name = project.dataset.root.name
    path = out / "report.html"
    atomic_write_text(path, render_page(f"memo report: {name}", sections))
    index = {
        "html": path.name,
        "sections": [{"id": s.id, "title": s.title, "missing": s.missing} for s in sections],
        "figures": {k: str(p.relative_to(out)) for k, p in page.figures.items()},
        "tables": page.tables,
    }
    from memo.store import atomic_write_json

    atomic_write_json(out / "report.json", index)
    return path
