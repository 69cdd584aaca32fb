"""The Python API (memo.api): docs/python.md run as written, a light `import memo`, one-sentence errors,
and the same caches as the command line (a fit made once, a run file submit and `memo submit` share)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import memo
from memo.errors import ConfigError, MemoError
from memo.samplekit.videm import write_sample_dataset
from memo.submission import validate_run_file

ROOT = Path(__file__).resolve().parents[1]
# a run that reads only the table (no extractor, no model): fits and cross-validates in a second
CHEAP_RUN = '\n[runs.5]\npredictor = "ridge"\nstreams = ["metadata"]\ndescription = "ridge on metadata"\n'
FAST = {"evaluate.repeats": 1, "evaluate.bootstrap": 50}


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


def test_the_python_page_runs_as_written(tmp_path, monkeypatch):
    """Every ```python block of docs/python.md, in order, in an empty folder: the walk-through on the
    sample dataset (open, evaluate run 1, fit, score 3 ads, submit, read the run file)."""
    blocks = _python_blocks(ROOT / "docs" / "python.md")
    assert len(blocks) >= 8 and any("memo.open(" in b for b in blocks)
    monkeypatch.chdir(tmp_path)
    log = logging.getLogger("memo")
    handlers, level = list(log.handlers), log.level
    ns: dict = {"__name__": "python_md"}
    try:
        for k, code in enumerate(blocks):
            exec(compile(code, f"docs/python.md, block {k + 1}", "exec"), ns)
    finally:  # the page turns the progress messages on; leave the logger as other tests expect it
        log.handlers[:], log.level = handlers, level
    assert (tmp_path / "memo.toml").is_file() and (tmp_path / ".memo").is_dir()
    table = ns["table"]
    assert table.index.names == ["model", "target"] and ("run 1", "memorability_score") in table.index
    assert table.attrs["predictor"] == "search" and table.attrs["scheme"].startswith("5-fold")
    scores = ns["scores"]
    assert list(scores.index) == ["jingle", "statement", "story"]
    assert {"memorability_score", "memorability_score_percentile"} <= set(scores.columns)
    path, project = ns["path"], ns["project"]
    assert path.is_file() and validate_run_file(path, project.core) == []
    # the page's claim: the command line in the same folder finds the same work
    from memo.cli import app

    r = CliRunner().invoke(app, ["submit", "--run", "1", "--set", "evaluate.repeats=1"])
    assert r.exit_code == 0 and "run 1 is up to date" in r.output, r.output


def test_import_memo_loads_nothing_heavy():
    code = (
        "import sys, memo\n"
        "heavy = ('pandas', 'torch', 'sklearn', 'numpy', 'typer')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "memo.open, memo.Project, memo.FittedRun\n"
        "after = [m for m in heavy if m in sys.modules]\n"
        "print(before, after, 'open' in dir(memo))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]", "True"], out.stdout + out.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        memo.nothing_here  # noqa: B018 - the lookup is the test


def test_open_errors_are_one_sentence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = [
        (lambda: memo.open("missing.toml"), "no memo.toml at missing.toml; pass the path of an existing one"),
        (lambda: memo.open(), f"no memo.toml in {tmp_path}; pass data="),
        (lambda: memo.open("memo.toml", folder=tmp_path), "not both"),
    ]
    for call, expected in cases:
        with pytest.raises(ConfigError) as e:
            call()
        message = str(e.value)
        assert expected in message and "\n" not in message and message.endswith("."), message


@pytest.fixture(scope="module")
def videm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("api-videm")
    return write_sample_dataset(
        root / "data", n_brands_dev=6, videos_per_brand=4, n_brands_test=2, seconds=1.0, size=32, fps=4
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory, videm) -> Path:
    """A project folder: memo.toml as memo.open(data=...) writes it, plus the cheap run 5."""
    where = tmp_path_factory.mktemp("api-project")
    memo.open(data=videm, offline=True, folder=where, team="demo")
    config = where / "memo.toml"
    config.write_text(config.read_text(encoding="utf-8") + CHEAP_RUN, encoding="utf-8")
    return where


def test_open_with_data_writes_memo_toml_once(folder, videm, tmp_path):
    config = folder / "memo.toml"
    before = config.stat().st_mtime_ns
    project = memo.open(data=videm, folder=folder, team="someone else")  # reused as it stands
    assert config.stat().st_mtime_ns == before and "5" in project.config.runs
    assert project.config.project.team == "demo" and project.config.path == config.resolve()
    assert project.workdir == folder / ".memo" and len(project.dataset.splits["dev"].table) == 24
    assert memo.open(folder).config.path == config.resolve()  # a folder opens its memo.toml
    other = write_sample_dataset(tmp_path / "other", n_brands_dev=2, videos_per_brand=2, n_brands_test=1)
    with pytest.raises(ConfigError, match="is for the dataset .*; open it without data="):
        memo.open(data=other, folder=folder)


def test_overrides_are_type_checked_and_never_saved(folder):
    project = memo.open(folder / "memo.toml", overrides={"evaluate.repeats": 2})
    assert project.config.evaluate.repeats == 2
    assert memo.open(folder, overrides=["evaluate.repeats=3"]).config.evaluate.repeats == 3
    assert memo.open(folder).config.evaluate.repeats == 5  # memo init's, as written
    with pytest.raises(ConfigError, match="evaluate.repeats"):
        memo.open(folder, overrides={"evaluate.repeats": "many"})
    with pytest.raises(MemoError, match="run= evaluates a configured run"):
        project.evaluate(run="5", model="gbt")


def test_fit_is_cached_where_submit_keeps_it(folder, monkeypatch):
    import memo.submission.runs as runs
    from memo.submission.plan import resolve_run, run_folder

    project = memo.open(folder, overrides=FAST)
    first = project.fit("5")
    meta = first.folder / "meta.json"
    stamp = meta.stat().st_mtime_ns
    assert first.folder == run_folder(project.core, resolve_run(project.core, "5")) / runs.MODEL
    assert first.run == "5" and first.plan.run.predictor == "ridge" and first.meta["n_videos"] == 24

    fits = []
    monkeypatch.setattr(runs, "_full_fit", lambda *a, **k: fits.append(a))
    again = memo.open(folder, overrides=FAST).fit(run=5)
    assert fits == [] and again.folder == first.folder and meta.stat().st_mtime_ns == stamp
    # its test predictions are the ones the full fit wrote for the run file
    written = pd.read_csv(first.folder.parent / runs.TEST_PREDICTIONS, index_col=0, dtype={0: str})
    pd.testing.assert_frame_equal(
        again.predict().loc[written.index, written.columns], written, check_names=False, atol=1e-8
    )


def test_submit_returns_the_run_file_memo_submit_shares(folder):
    project = memo.open(folder, overrides=FAST)
    path = project.submit(run="5")
    assert path == folder / "run_files" / "me25mem-demo-subtask2-run5.csv"
    assert path.is_file() and validate_run_file(path, project.core) == []
    assert len(pd.read_csv(path)) == len(project.dataset.splits["test"].table)
    stamp = path.stat().st_mtime_ns
    assert project.submit("5") == path and path.stat().st_mtime_ns == stamp  # up to date: untouched
    from memo.cli import app

    config = str(folder / "memo.toml")
    r = CliRunner().invoke(
        app,
        [
            "submit",
            "--run",
            "5",
            "--config",
            config,
            "--set",
            "evaluate.repeats=1",
            "--set",
            "evaluate.bootstrap=50",
        ],
    )
    assert r.exit_code == 0 and "run 5 is up to date" in r.output, r.output


def test_features_is_memo_features(folder):
    project = memo.open(folder)
    first = project.features(extractors=["stats"], splits=["test"])["stats"]
    again = project.features(extractors=["stats"], splits=["test"])["stats"]
    n = len(project.dataset.splits["test"].table)
    assert (first.computed + first.cached, again.computed, again.cached) == (n, 0, n)
