"""`memo readvise` and `memo report`: what a trained predictor says about ads, and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memo.cli.common import ConfigOpt, DeviceOpt, open_project


def readvise(
    title: Annotated[str | None, typer.Option(help="The ad's title.")] = None,
    message: Annotated[str | None, typer.Option(help="The ad's key message.")] = None,
    video: Annotated[
        str | None, typer.Option(help="Take title, message and texts from this dataset video id.")
    ] = None,
    candidates: Annotated[int, typer.Option(help="Candidates written per round.")] = 4,
    rounds: Annotated[int, typer.Option(help="Rounds at most; stops early when the score stops rising.")] = 3,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="Predictor that scores candidates (gbt, ridge, mindmem, llm); default: the model "
            "--run N trained, else `memo train`'s, else the first run's."
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Score with the model run N trained (`memo submit --run N`); default: `memo "
            "train`'s, else the first run's.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the JSON and Markdown report (default: <workdir>/readvise)."),
    ] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """MindMem-ReAd: rewrite an ad to be more memorable, scored by a trained predictor (a prediction, not
    measured recall)."""
    from memo.evaluation.readvise import readvise as run_readvise
    from memo.evaluation.readvise_output import terminal_table

    result = run_readvise(
        open_project(config),
        title=title,
        message=message,
        video=video,
        candidates=candidates,
        rounds=rounds,
        scorer=scorer,
        run=run,
        out=out,
        device=device,
    )
    typer.echo(terminal_table(result))


def report(
    out: Annotated[
        Path | None, typer.Option(help="Folder for report.html and its PNGs (default: <workdir>/report).")
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="GBT importance of the model run N trained; default: `memo train gbt`'s, else the "
            "first run's.",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """One self-contained HTML page: dataset, CV tables, scatter plots, ablations, importance, run
    manifests."""
    from memo.evaluation.report import build_report

    path = build_report(open_project(config), out=out, run=run)
    typer.echo(f"wrote {path}")
