"""`memo submit` and `memo validate`: run files written and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memo.cli.common import ConfigOpt, DataOpt, DeviceOpt, SetOpt, open_project
from memo.errors import MemoError


def submit(
    run: Annotated[
        list[str] | None,
        typer.Option("--run", help="Run name(s) from [runs.N] in memo.toml (repeatable)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every run defined in memo.toml.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder for run files (default: [submission] out).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing run files (the old ones are kept as backups).")
    ] = False,
    zip_: Annotated[
        bool, typer.Option("--zip", help="Also write a zip of run files and manifests for upload.")
    ] = False,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Do whatever a run still needs (features, rationales, training, prediction) and write its validated run
    file."""
    from memo.submission import submit_runs

    submit_runs(
        open_project(config, sets=set_),
        runs=run or [],
        all_runs=all_,
        out=out,
        force=force,
        make_zip=zip_,
        device=device,
    )


def validate(
    file: Annotated[Path | None, typer.Argument(help="A run file to check (or --run N).")] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run", help="Check the run file `memo submit --run N` wrote ([submission] out and filename)."
        ),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check a run file against the test split: ids, values in [0, 1], columns, header, file name."""
    from memo.submission import validate_run_file
    from memo.submission.runfile import run_file_path

    if (file is None) == (run is None):
        raise MemoError(
            "validate needs one run file: pass its path, or --run N for the file `memo submit --run N` wrote."
        )
    project = open_project(config, data)
    if run is not None:
        file = run_file_path(project, run)
    defects = validate_run_file(file, project)
    for d in defects:
        typer.echo(d, err=True)
    if defects:
        raise typer.Exit(1)
    typer.echo(f"{file} is a valid run file.")
