"""`memo features` and `memo rationale` (generate, show, finetune): the stages that fill the feature
store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memo.cli.common import ConfigOpt, DataOpt, DeviceOpt, SetOpt, open_project, split_names


def features(
    extractors: Annotated[
        str | None,
        typer.Option(help="Comma list, e.g. vit,e5,audio,stats,organiser (default: [features] extractors)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Comma list of splits, e.g. dev,test (default: all).")
    ] = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int | None, typer.Option(help="Videos or texts per model call.")] = None,
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """Compute feature arrays for every video into the resumable feature store (nothing twice)."""
    from memo.features import run_features

    project = open_project(config, data, set_)
    run_features(
        project,
        extractors=split_names(extractors),
        splits=split_names(split),
        device=device,
        batch_size=batch_size,
    )


def rationale(
    ctx: typer.Context,
    aspects: Annotated[
        str | None,
        typer.Option(
            help="Comma list of aspects (humor,emotion,...) or 'all' (default: [rationale] aspects)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Causal LM id or folder with a chat template (default: [rationale] model, else "
            "[models] llm)."
        ),
    ] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="LoRA adapter folder from `memo rationale finetune`.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Comma list of splits (default: all).")] = None,
    few_shot: Annotated[
        int | None, typer.Option(help="Exemplars per prompt from the training fold; 0 = zero-shot.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N videos per split (a quick look).")
    ] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a short rationale and a 1-10 rating per video and aspect; cached, resumable, logged."""
    if ctx.invoked_subcommand is not None:
        return
    from memo.rationales import run_rationales

    project = open_project(config, data, set_)
    run_rationales(
        project,
        aspects=split_names(aspects),
        model=model,
        adapter=str(adapter) if adapter else None,
        splits=split_names(split),
        few_shot=few_shot,
        limit=limit,
        device=device,
    )


def rationale_show(
    video_id: Annotated[str, typer.Argument(help="A video id.")],
    config: ConfigOpt = None,
) -> None:
    """Print an ad's rationales and ratings from the log."""
    from memo.rationales import show_rationales

    typer.echo(show_rationales(open_project(config), video_id))


def rationale_finetune(
    data_file: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="JSONL of curated rationales (video id, aspect, text); default: filter the log by "
            "how well ratings rank the targets.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Adapter folder (default: <workdir>/adapters/writer).")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 1.0,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Fine-tune the rationale writer with TRL's SFTTrainer and a LoRA adapter."""
    from memo.rationales.finetune import finetune_writer

    path = finetune_writer(
        open_project(config, sets=set_), data_file=data_file, out=out, epochs=epochs, device=device
    )
    typer.echo(f"adapter saved to {path}; use it with `memo rationale --adapter {path}`.")
