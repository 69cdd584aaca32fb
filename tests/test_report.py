"""`memo report`: the page is self-contained, every figure decodes, every table is there, and a
real headless Chromium renders it from disk with no server."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _PageParser(HTMLParser):
    """Collects <img> sources, data-table names, section ids and links of a rendered DOM."""

    def __init__(self):
        super().__init__()
        self.images: dict[str, str] = {}
        self.tables: list[str] = []
        self.sections: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images[a.get("data-figure", "?")] = a.get("src", "")
        if tag == "table" and a.get("data-table"):
            self.tables.append(a["data-table"])
        if tag == "section":
            self.sections.append(a.get("id", ""))
        for key in ("src", "href"):
            v = a.get(key) or ""
            if v.startswith(("http:", "https:", "//")):
                self.external.append(v)

    def handle_data(self, data):
        self.text.append(data)


def parse(html_text: str) -> _PageParser:
    p = _PageParser()
    p.feed(html_text)
    return p


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render(path: Path, tmp: Path, screenshot: Path | None = None) -> str:
    """The DOM headless Chromium builds from file:// (scripts run, nothing fetched)."""
    exe = chromium()
    flags = CHROMIUM_FLAGS + [f"--user-data-dir={tmp / 'chromium-profile'}"]
    url = path.resolve().as_uri()
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    if screenshot is not None:
        subprocess.run(
            [exe, *flags, "--window-size=1200,3000", f"--screenshot={screenshot}", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return dom


def check_figures(p: _PageParser, folder: Path) -> None:
    """Every <img> is an inlined PNG that decodes, and the same PNG is saved beside the page."""
    assert p.images, "the page has no figures"
    for name, src in p.images.items():
        assert src.startswith("data:image/png;base64,"), f"figure {name} is not inlined"
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"figure {name} is not a PNG"
        assert (folder / "figures" / f"{name}.png").read_bytes() == data


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    from tests.projects import sample_project

    return sample_project(
        tmp_path_factory.mktemp("report"), seed=0, n_brands_dev=4, videos_per_brand=3, n_brands_test=1
    )


def test_bare_project_report_says_what_is_missing(sample_project, tmp_path):
    from memo.evaluation.report import build_report

    path = build_report(sample_project, out=tmp_path / "r")
    text = path.read_text()
    p = parse(text)
    assert {"overview", "dataset"} <= set(p.sections)
    assert {"project", "dataset-summary"} <= set(p.tables)
    check_figures(p, path.parent)
    assert "targets" in p.images
    assert not p.external, f"the page must not fetch anything: {p.external}"
    index = json.loads((path.parent / "report.json").read_text())
    assert set(index["figures"]) == set(p.images)
    # nothing trained yet: those sections exist and name the command that fills them, with no numbers
    body = " ".join(p.text)
    assert "tiny randomly initialised models" in body


@pytest.fixture(scope="module")
def full_project(tmp_path_factory, _offline_single_thread):
    """A small project after every stage the report reads: stats, evaluation, a trained GBT, the ablation, run
    1."""
    from memo.evaluation.ablation import ablate_mindmem
    from memo.evaluation.compare import evaluate_models
    from memo.features import run_features
    from memo.submission import submit_runs
    from memo.submission.models import train_model
    from tests.projects import sample_project

    settings = {
        "gbt.n_trials": 1,
        "gbt.timeout": 10.0,
        "gbt.members": ["lightgbm", "xgboost"],
        "gbt.streams": ["metadata", "stats"],
        "gbt.inner_folds": 2,
        "evaluate.folds": 3,
        "evaluate.repeats": 2,
        "evaluate.bootstrap": 50,
        "evaluate.baselines": ["duration"],
        "mindmem.use": ["metadata"],
        "mindmem.width": 8,
        "mindmem.heads": 2,
        "mindmem.epochs": 2,
        "mindmem.valid_fraction": 0.0,
    }
    p = sample_project(
        tmp_path_factory.mktemp("full"), settings, seed=2, n_brands_dev=5, videos_per_brand=4, n_brands_test=2
    )
    run_features(p, extractors=["stats"])
    evaluate_models(p, ["gbt"])
    train_model(p, "gbt")
    ablate_mindmem(p, device="cpu")
    submit_runs(p, runs=["1"])
    return p


def test_full_report_renders_every_figure_and_table_in_chromium(full_project, tmp_path):
    from memo.evaluation.report import build_report

    path = build_report(full_project, out=tmp_path / "r")
    index = json.loads((path.parent / "report.json").read_text())
    assert not [s["id"] for s in index["sections"] if s["missing"]], index["sections"]
    want_figures = {
        "targets",
        "cv-spearman",
        "scatter-gbt",
        "scatter-duration",
        "ablation",
        "stats-vs-targets",
        "gbt-importance",
        "brand-spearman-memorability-score",
        "brand-spearman-brand-memorability",
    }
    want_tables = {
        "dataset-summary",
        "cv-summary",
        "cv-per-fold",
        "ablation",
        "stats-vs-targets",
        "gbt-importance",
        "gbt-importance-by-stream",
        "runs-config",
        "manifest-me25mem-myteam-subtask2-run1",
        "run-cv-me25mem-myteam-subtask2-run1",
    }
    assert want_figures <= set(index["figures"]) and want_tables <= set(index["tables"])
    if chromium() is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium): the page was checked as HTML only"
        )
    shot = tmp_path / "shot.png"
    p = parse(render(path, tmp_path, screenshot=shot))
    # what the browser built from the file: every section, figure and table, every image an inlined PNG
    assert [s["id"] for s in index["sections"]] == p.sections
    assert set(p.images) == set(index["figures"]) and set(p.tables) == set(index["tables"])
    check_figures(p, path.parent)
    assert not p.external
    assert shot.stat().st_size > 10_000
    # the numbers on the page are the evaluation's own
    summary = pd.read_csv(full_project.workdir / "eval" / "summary.csv")
    gbt = summary[(summary["model"] == "gbt") & (summary["target"] == "memorability_score")]["spearman"].iloc[
        0
    ]
    assert f"{gbt:.3f}" in " ".join(p.text)


def test_bare_report_in_chromium_names_the_missing_commands(sample_project, tmp_path):
    from memo.evaluation.report import build_report

    if chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    path = build_report(sample_project, out=tmp_path / "r")
    body = " ".join(parse(render(path, tmp_path)).text)
    for command in (
        "memo evaluate",
        "memo ablate mindmem",
        "memo train gbt",
        "memo features --extractors stats",
        "memo submit --run 1",
    ):
        assert command in body


@pytest.fixture(scope="module")
def submitted_project(tmp_path_factory, _offline_single_thread):
    """A newcomer's path: features, rationales by the tiny writer (its ratings rarely parse), `memo submit
    --run 1`; no `memo train`."""
    from memo.features import run_features
    from memo.rationales import run_rationales
    from memo.submission import submit_runs
    from tests.projects import sample_project

    settings = {
        "gbt.n_trials": 1,
        "gbt.timeout": 10.0,
        "gbt.members": ["lightgbm", "ridge"],
        "gbt.inner_folds": 2,
        "evaluate.folds": 3,
        "evaluate.bootstrap": 50,
        "runs.1.predictor": "gbt",
        "runs.1.streams": ["metadata", "stats"],
        "rationale.aspects": ["humor"],
        "rationale.few_shot": 0,
        "rationale.max_new_tokens": 4,
    }
    root = tmp_path_factory.mktemp("newcomer") / "ads-project"
    p = sample_project(root, settings, seed=3, n_brands_dev=4, videos_per_brand=3, n_brands_test=1)
    run_features(p, extractors=["stats"], progress=False)
    run_rationales(p, device="cpu", progress=False)
    submit_runs(p, runs=["1"])
    return p


def test_report_after_a_submitted_run_has_no_error_text(submitted_project, tmp_path):
    from memo.evaluation.report import build_report

    path = build_report(submitted_project, out=tmp_path / "r")
    page = path.read_text()
    for bad in ("could not be drawn", "Traceback", "Error"):
        assert bad not in page, bad
    index = json.loads((path.parent / "report.json").read_text())
    missing = {s["id"] for s in index["sections"] if s["missing"]}
    assert "importance" not in missing and "stats" not in missing, index["sections"]
    assert "gbt-importance" in index["figures"] and "stats-vs-targets" in index["tables"]
    assert "of run 1 (" in page  # the importance section names the model it read: the run's
    # a linear member is left out, and it says so
    assert "ridge member of the ensemble has no split gain" in page
    assert "<title>memo report: ads-project (videm data ads-project/data, team myteam)</title>" in page


def test_page_escapes_every_text_and_keeps_table_markup(tmp_path):
    """The template escapes what sections say; only pandas' table markup (its cells escaped) goes in as
    HTML."""
    from memo.evaluation.report_page import Folded, Heading, Page, Paragraph, Section, render_page

    page = Page(tmp_path)
    evil = "<script>alert('x')</script> & co"
    table = page.table("brands <b>", pd.DataFrame({"brand": [evil]}), caption=evil)
    section = Section("s1", evil, [Paragraph(evil, "note"), Heading(evil), Folded(evil, [table])])
    html_text = render_page(evil, [section])
    # title, h1, nav, h2, p, h3, summary, caption, cell
    assert "<script>" not in html_text and html_text.count("&lt;script&gt;") == 9
    p = parse(html_text)
    assert p.tables == ["brands-b"] and p.sections == ["s1"]
    assert evil in "".join(p.text)  # escaped, not lost: the browser shows the text as it was
    with pytest.raises(TypeError, match="cannot show"):
        render_page("t", [Section("s2", "t", ["<p>raw html is not a block</p>"])])
