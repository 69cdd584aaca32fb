"""`memo submit` and `memo validate`: run files written and checked; `memo score` and `memo export`: a run's
trained model on new ads, here or handed over."""

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


def score(
    ads: Annotated[
        Path,
        typer.Argument(help="CSV of ads: title, description, tags, transcript, optional id and video_path."),
    ],
    run: Annotated[
        str | None, typer.Option("--run", help="Score with the model `memo submit --run N` trained.")
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir", help="Score with a folder `memo export` wrote (no dataset, no memo.toml)."
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="The 3 largest reasons per ad and target (linear and tree models)."),
    ] = False,
    json_: Annotated[
        Path | None, typer.Option("--json", help="Write scores, percentiles and reasons as JSON.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write scores and percentiles as CSV.")] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="With --model-dir: where the ads' features are kept (default: DIR/.cache)."),
    ] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Score ads that are in no split with a run's trained model: each target, its percentile among the run's
    cross-validated predictions, and with --explain the reasons."""
    from memo.submission.ads import read_ads
    from memo.submission.scoring import score_ads, score_ads_from_folder, scores_text, write_scores

    if (run is None) == (model_dir is None):
        raise MemoError(
            "score needs one model: pass --run N (after `memo submit --run N`) or --model-dir DIR."
        )
    table = read_ads(ads)
    if model_dir is not None:
        df = score_ads_from_folder(model_dir, table, explain=explain, device=device, workdir=workdir)
    else:
        df = score_ads(open_project(config, sets=set_), run, table, explain=explain, device=device)
    write_scores(df, json_, out)
    typer.echo(scores_text(df))


def export(
    folder: Annotated[Path, typer.Argument(help="A new or empty folder to write the run into.")],
    run: Annotated[str, typer.Option("--run", help="The run whose trained model to export.")],
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a run's trained model, the extractors and settings its streams need, its manifest, the
    predictions percentiles are taken among and a MODEL_CARD.md, for `memo score --model-dir` elsewhere."""
    from memo.submission.export import export_run

    path = export_run(open_project(config, sets=set_), run, folder, device=device)
    typer.echo(
        f"wrote {path} (see {path / 'MODEL_CARD.md'}); score with `memo score --model-dir {path} ADS.csv`."
    )
