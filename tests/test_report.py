"""`memo report`: the page is self-contained, every figure decodes, every table is there, and a
real headless Chromium renders it from disk with no server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
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
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    if screenshot is not None:
        subprocess.run([exe, *flags, "--window-size=1200,3000", f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
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
    from memo.demo_data import write_sample_dataset
    from memo.project import Project, init_project

    root = tmp_path_factory.mktemp("report")
    write_sample_dataset(root / "data", seed=0)
    init_project(root, root / "data", offline=True)
    return Project.open(root / "memo.toml")


def test_bare_project_report_says_what_is_missing(sample_project, tmp_path):
    from memo.report import build_report

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
