"""What every CLI user types first: `memo --version`, `memo -h`, and the README's validate line."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from memo.cli import app
from memo.errors import MemoError


def test_version_and_short_help():
    import memo

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"memo {memo.__version__}"
    for args in (["-h"], ["--help"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "Usage: memo" in res.output and "validate" in res.output
    # subcommands and sub-apps inherit -h
    for args in (["validate", "-h"], ["data", "-h"], ["rationale", "-h"], ["features", "-h"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
        assert "Usage: memo" in res.output


def test_installed_entry_point_answers_version_and_h():
    """The real console script, as a shell runs it (exit status and output, no traceback)."""
    for args in (["--version"], ["-h"]):
        res = subprocess.run(
            [sys.executable, "-m", "memo", *args], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert "Traceback" not in res.stderr
        assert ("memo " in res.stdout) if args == ["--version"] else ("Usage:" in res.stdout)


def test_validate_finds_a_runs_file_from_the_config(tmp_path, monkeypatch):
    """`memo init --team newcomer` then `memo validate --run 1` (the README's FILE form keeps working)."""
    from memo.submission import render_run_file, run_file_name
    from tests.projects import sample_project

    project = sample_project(tmp_path, n_brands_dev=3, videos_per_brand=3, n_brands_test=1)
    project.config.project.team = "newcomer"
    project.save()
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    # MemoErrors reach main(), which prints them as one line with exit status 2
    res = runner.invoke(app, ["validate", "--run", "1"])
    # not submitted yet
    assert isinstance(res.exception, MemoError) and "memo submit --run 1" in str(res.exception)
    res = runner.invoke(app, ["validate", "--run", "7"])
    assert isinstance(res.exception, MemoError) and "no [runs.7]" in str(res.exception)
    res = runner.invoke(app, ["validate"])
    assert isinstance(res.exception, MemoError) and "--run N" in str(res.exception)

    test = project.dataset.splits[project.dataset.test_split]
    preds = pd.DataFrame({t: 0.5 for t in project.targets}, index=pd.Index(test.ids, name="id"))
    folder = tmp_path / "run_files"
    folder.mkdir()
    name = run_file_name(project.config, "1")
    assert name == "me25mem-newcomer-subtask2-run1.csv"
    (folder / name).write_text(render_run_file(preds, project, project.targets))

    res = runner.invoke(app, ["validate", "--run", "1"])
    assert res.exit_code == 0, res.output
    assert f"{name} is a valid run file" in res.output
    res = runner.invoke(app, ["validate", f"run_files/{name}"])
    assert res.exit_code == 0, res.output

    (folder / name).write_text(render_run_file(preds, project, project.targets).replace("0.5", "1.5", 1))
    res = runner.invoke(app, ["validate", "--run", "1"])
    assert res.exit_code == 1  # a defect is found in the file --run picked


def test_ctrl_c_in_any_command_says_how_to_resume(monkeypatch, capsys):
    """Typer turns Ctrl-C into a silent exit 130; memo's entry point says what to do next."""
    import memo.cli.commands as cli

    def interrupted():
        raise SystemExit(130)

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 130 and "rerun the same command to resume" in capsys.readouterr().err
