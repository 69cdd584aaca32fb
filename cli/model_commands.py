"""`memo train`, `memo evaluate`, `memo predict`, `memo ablate`: predictors trained, scored and taken
apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memo.cli.common import ConfigOpt, DataOpt, DeviceOpt, SetOpt, echo_table, open_project, split_names
from memo.errors import MemoError

ModelArg = Annotated[str, typer.Argument(help="Predictor: gbt | mindmem | llm (see `memo train --help`).")]


def train(
    model: ModelArg,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train a predictor (gbt, mindmem, llm) on the whole labelled split and save it."""
    from memo.submission.models import train_model

    path = train_model(open_project(config, data, set_), model, device=device)
    typer.echo(f"saved {model} to {path}")


def evaluate(
    model: Annotated[
        str, typer.Option("--model", help="Comma list of predictors: gbt, mindmem, llm.")
    ] = "gbt",
    run: Annotated[
        str | None,
        typer.Option("--run", help="Evaluate [runs.N] as memo submit trains it (instead of --model)."),
    ] = None,
    folds: Annotated[
        int | None, typer.Option(help="Brand-grouped folds (default: [evaluate] folds).")
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(help="CV repeats with seeds seed, seed+1, ... (default: [evaluate] repeats)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Evaluate on a named labelled split (e.g. dev) instead of CV.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the table and plots (default: <workdir>/eval).")
    ] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """Brand-grouped cross-validation: Spearman with 95% intervals beside simple baselines on the same folds.

    With --run N: the run exactly as `memo submit --run N` trains it (its streams, its cache), repeated
    over [evaluate] repeats splits, beside the baselines on the same folds; submit then reuses the work
    (--folds and --repeats set [evaluate] folds and repeats for this command, as --set evaluate.folds=N
    does, and submit reuses that work when given the same settings).
    """
    if run is not None:
        from memo.evaluation import evaluate_run

        if split is not None:
            raise MemoError("--run evaluates the run on grouped cross-validation; leave out --split.")
        project = open_project(config, data, set_)
        table, info = evaluate_run(project, run, device=device, folds=folds, repeats=repeats)
        streams = info["streams"]
        used = (
            ", ".join(f"{k} ({v} columns)" for k, v in streams.items())
            if isinstance(streams, dict)
            else info["reads"]
        )
        typer.echo(f"run {run}: {info['predictor']} on {used}")
        for s, why in info["dropped"].items():
            typer.echo(f"  not used: {s}: {why}")
        for line in info["picks"]:  # a search: what it chose in the outer folds
            typer.echo(f"  picked for {line}")
        shown = table.assign(
            **{c: table[c].map(lambda v: f"{v:.3f}") for c in ("expected", "min", "max", "first_split")}
        )
        echo_table(
            shown.set_index(["model", "target"]),
            title=f"{info['scheme']}; 'expected' is the mean Spearman over the repeats, the score to expect "
            f"on unseen {info['unseen']}",
        )
        for n in info["notes"]:
            typer.echo(f"note: {n}", err=True)
        return
    from memo.evaluation import evaluate_models

    ev = evaluate_models(
        open_project(config, data, set_),
        split_names(model),
        folds=folds,
        split=split,
        out=out,
        device=device,
        repeats=repeats,
    )
    typer.echo(ev.text())


def predict(
    model: Annotated[str, typer.Option("--model", help="A trained predictor: gbt | mindmem | llm.")] = "gbt",
    split: Annotated[str | None, typer.Option(help="Split to predict (default: the test split).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write (default: print).")] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """Predict a split with the predictor `memo train` trained (with the same memo.toml and --set)."""
    from memo.submission.models import predict_model

    df = predict_model(open_project(config, data, set_), model, split=split, out=out, device=device)
    if out is None:
        echo_table(df)
    else:
        typer.echo(f"wrote {len(df)} predictions to {out}")


def ablate(
    model: Annotated[str, typer.Argument(help="Model to ablate: mindmem.")] = "mindmem",
    folds: Annotated[
        int | None, typer.Option(help="Brand-grouped folds (default: [evaluate] folds).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the table and bar plot (default: <workdir>/ablation).")
    ] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """MindMem ablations: modalities alone, in pairs and together; pooling; cross-attention; zeroed inputs."""
    import dataclasses

    from memo.evaluation.ablation import ablate_mindmem, shown

    if model != "mindmem":
        raise MemoError(f"only mindmem has an ablation study, not {model!r}; run `memo ablate mindmem`.")
    ev = ablate_mindmem(open_project(config, data, set_), folds=folds, out=out, device=device)
    typer.echo(dataclasses.replace(ev, summary=shown(ev.summary)).text())
