"""The report page as data, and the one place it becomes HTML.

A section is a list of blocks (a paragraph, a heading, a table, a figure, a folded group); the
sections in memo.evaluation.report_sections only prepare these. templates/report.html.jinja turns
them into the page, with autoescaping on: every text is escaped there. The only HTML that arrives
already made is a table's markup, which pandas writes with its cells escaped and which `Page.table`
marks safe on purpose; a figure arrives as a PNG data URI, so the page fetches nothing.

    page = Page(out)
    section = Section("dataset", "Dataset", [Paragraph("..."), page.table("summary", df)])
    html_text = render_page("memo report: ...", [section])
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from memo.store import atomic_write_bytes

TEMPLATE = "report.html.jinja"  # in evaluation/templates/, shipped as package data


# ----------------------------------------------------------------------------- blocks: what a section holds


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; css_class "caption", "note", "warning" or "missing" (the yellow what-to-run box) styles
    it."""

    text: str
    css_class: str = ""
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section (one per target, one per run file)."""

    text: str
    kind: ClassVar[str] = "heading"


@dataclass(frozen=True)
class Table:
    """A named table; `markup` is pandas' own <table> HTML (cells escaped), already marked safe."""

    name: str
    markup: str
    caption: str = ""
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class Figure:
    """A named PNG figure, inlined as a data: URI."""

    name: str
    uri: str
    caption: str
    kind: ClassVar[str] = "figure"


@dataclass(frozen=True)
class Folded:
    """Blocks folded away under a one-line summary (a long table, many notes)."""

    summary: str
    parts: list[Block]
    kind: ClassVar[str] = "folded"


Block = Paragraph | Heading | Table | Figure | Folded
BLOCKS = (Paragraph, Heading, Table, Figure, Folded)


@dataclass
class Section:
    """One part of the page: an anchor id, a heading, and its blocks in order."""

    id: str
    title: str
    parts: list[Block] = field(default_factory=list)
    missing: bool = False  # True when the section could only say what is missing


def missing(text: str) -> Paragraph:
    """A plain statement of what is not there yet and the command that makes it."""
    return Paragraph(text, "missing")


# ----------------------------------------------------------------------------- figures and tables


class Page:
    """Collects figures and tables; figures go to <out>/figures/<name>.png and, inlined, into the page."""

    def __init__(self, out: Path, run: str | None = None):
        # whose trained model the importance section reads (None: memo.submission.models decides)
        self.run = run
        self.out = out
        self.figures: dict[str, Path] = {}
        self.tables: list[str] = []

    def figure(self, name: str, fig, caption: str) -> Figure:
        """Save a matplotlib Figure as PNG and return it as a block with the PNG inlined."""
        name = slug(name)
        if name in self.figures:
            raise ValueError(f"figure {name!r} is drawn twice")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = buf.getvalue()
        path = self.out / "figures" / f"{name}.png"
        atomic_write_bytes(path, data)
        return self._embed(name, path, data, caption)

    def png(self, name: str, draw: Callable[[Path], None], caption: str) -> Figure:
        """Let another stage's plot function (which writes a PNG to a path) draw into
        <out>/figures/<name>.png, then inline it."""
        name = slug(name)
        path = self.out / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        return self._embed(name, path, path.read_bytes(), caption)

    def _embed(self, name: str, path: Path, data: bytes, caption: str) -> Figure:
        """Record the PNG under its name and return it as a data: URI block (the page fetches nothing)."""
        self.figures[name] = path
        return Figure(name, "data:image/png;base64," + base64.b64encode(data).decode("ascii"), caption)

    def table(
        self, name: str, df: pd.DataFrame, caption: str = "", index: bool = True, digits: int = 3
    ) -> Table:
        """A DataFrame as a table block with a data-table name (the browser test looks for them)."""
        from markupsafe import Markup

        name = slug(name)
        self.tables.append(name)
        body = df.to_html(
            index=index, border=0, na_rep="–", float_format=lambda v: f"{v:.{digits}f}", escape=True
        )
        body = body.replace(
            '<table class="dataframe">', f'<table class="dataframe" id="table-{name}" data-table="{name}">', 1
        )
        # safe: pandas escaped every cell and label, the name is a slug
        return Table(name, Markup(body), caption)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def new_figure(width: float = 6.0, height: float = 3.6, ncols: int = 1, nrows: int = 1):
    """A matplotlib Figure with axes, without pyplot (so no GUI backend is ever touched)."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


# ----------------------------------------------------------------------------- the page


def render_page(title: str, sections: list[Section]) -> str:
    """The whole self-contained HTML page: CSS inline, figures inlined, no script, no link outside."""
    for section in sections:
        _check_blocks(section.id, section.parts)
    return _template().render(title=title, sections=sections)


def _check_blocks(section_id: str, parts: list) -> None:
    """Only blocks reach the template; a string of HTML put into a section is refused here, with what to use
    instead."""
    for part in parts:
        if not isinstance(part, BLOCKS):
            raise TypeError(
                f"section {section_id!r} holds a {type(part).__name__}, which the page cannot show; "
                f"use one of {', '.join(b.__name__ for b in BLOCKS)} from {__name__}"
            )
        if isinstance(part, Folded):
            _check_blocks(section_id, part.parts)


@functools.cache
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memo.evaluation", "templates"),  # works from an installed package too
        autoescape=True,  # this environment renders only the HTML page
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)
