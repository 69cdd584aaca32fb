"""What every `memo` command shares: the Typer app and its two groups (`memo data`, `memo rationale`),
the common options (--config, --data, --set, --device), and opening the project.

The commands live in modules by concept (project_commands, stage_commands, model_commands,
submit_commands, report_commands); cli/commands.py registers them, in `memo --help` order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="memo",
    help="Predict how memorable a video ad is: features, LLM rationales, trained predictors, honest "
    "evaluation, run files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts say [project] data literally; no markup to swallow it
    context_settings={"help_option_names": ["-h", "--help"]},  # subcommands inherit it
)


def _version(value: bool) -> None:
    if value:
        import memo

        typer.echo(f"memo {memo.__version__}")
        raise typer.Exit()


@app.callback()
def _app(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print memo's version and exit."
        ),
    ] = False,
) -> None:
    """Predict how memorable a video ad is: features, LLM rationales, trained predictors, honest evaluation,
    run files."""
    from memo.progress import show_progress

    show_progress()  # the library's progress messages (the `memo` logger) on stderr, above the bars


data_app = typer.Typer(help="Inspect a dataset folder.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")
rationale_app = typer.Typer(
    help="Expert-aspect rationales from an instruction-tuned LLM (Gemma-3): generate, show, fine-tune the "
    "writer.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(rationale_app, name="rationale")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="memo.toml to read (default: ./memo.toml).")
]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Dataset folder; overrides [project] data.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a memo.toml key for this command, e.g. --set gbt.n_trials=10 (repeatable)."
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")]


def split_names(value: str | None) -> list[str] | None:
    """'humor, emotion' -> ['humor', 'emotion']; None or '' -> None (use the config)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def apply_sets(config, sets: list[str] | None) -> None:
    """Apply --set key=value overrides to a Config, each type-checked like memo.toml (a bare word is a
    string); memo.config.apply_overrides, which the Python API's `overrides` go through too."""
    from memo.config import apply_overrides

    apply_overrides(config, sets)


def open_project(
    config: Path | None, data: Path | None = None, sets: list[str] | None = None, layout: str | None = None
):
    """Read the project and apply --set overrides (type-checked like memo.toml), as memo.open does."""
    from memo.project import Project

    return Project.open(config, data=data, layout=layout, overrides=sets)


def echo_table(df, title: str | None = None) -> None:
    from memo.progress import table_text

    if title:
        typer.echo(title)
    typer.echo(table_text(df))
