"""`memo init`, `memo config`, `memo data check`, `memo demo-data`, `memo demo`: the project, its
config and its dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memo.cli.common import ConfigOpt, SetOpt, apply_sets, echo_table, open_project


def init(
    data: Annotated[Path, typer.Option("--data", help="The organisers' dataset folder (or a CSV).")],
    layout: Annotated[
        str | None, typer.Option(help="videm | mediaeval2021 | csv (default: detected).")
    ] = None,
    team: Annotated[str, typer.Option(help="Team name, used in run file names.")] = "myteam",
    offline: Annotated[bool, typer.Option("--offline", help="Choose models that need no model hub.")] = False,
    folder: Annotated[Path, typer.Option(help="Where to write memo.toml.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing memo.toml.")] = False,
) -> None:
    """Write memo.toml for a dataset: data path and layout, team, models, targets, runs 1-3."""
    from memo.project import init_project

    path = init_project(folder, data, layout=layout, team=team, offline=offline, force=force)
    typer.echo(f"wrote {path}; next: `memo data check`, then `memo features` or `memo submit --run 1`.")


def config_show(
    section: Annotated[
        str | None,
        typer.Argument(
            help="A section (llm, gbt), a run (runs.1) or one key (llm.pooling); default: every section."
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Print memo.toml's keys with their current value and meaning (after --set), as commented TOML."""
    from memo.config import describe, load_config

    cfg = load_config(config)
    apply_sets(cfg, set_)
    where = (
        f"# {cfg.path}"
        if cfg.path
        else "# no memo.toml here: the defaults (`memo init --data PATH` writes one)"
    )
    typer.echo(where + (f", with --set {' '.join(set_)}" if set_ else "") + "\n")
    typer.echo(describe(cfg, section))


def data_check(
    path: Annotated[
        Path | None, typer.Argument(help="Dataset folder (default: [project] data of memo.toml).")
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="videm | mediaeval2021 | csv (default: detected).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Summarise a dataset and list every defect; exit 1 if any defect would spoil training."""
    from memo.data_check import check_dataset, summarize
    from memo.layouts import read_dataset

    groups = None
    if path is None:
        project = open_project(config, layout=layout)
        path, layout, groups = (
            project.data_path,
            project.config.project.layout or layout,
            project.config.project.groups,
        )
    ds = read_dataset(path, layout, groups=groups)
    problems = check_dataset(ds)  # the reader's problems, feature files, and every video opened
    typer.echo(f"{ds.root} ({ds.layout} layout; train on {ds.train_split}, test {ds.test_split or 'none'})")
    echo_table(summarize(ds).T)
    for name, split in ds.splits.items():
        if split.feature_files:
            typer.echo(
                f"{name}: {len(split.feature_files)} organiser feature types: "
                f"{', '.join(split.feature_files)}"
            )
    for parent, names in ds.group_merges.items():  # parent brands (memo.groups), within and across splits
        where = {
            n: sorted({s for s, sp in ds.splits.items() if (sp.table["channel"] == n).any()}) for n in names
        }
        typer.echo(f"group {parent!r} joins " + ", ".join(f"{n!r} ({'+'.join(w)})" for n, w in where.items()))
    warnings = [p for p in problems if not p.error]
    errors = [p for p in problems if p.error]
    for p in warnings:
        typer.echo(f"note: {p}")
    for p in errors:
        typer.echo(f"defect: {p}", err=True)
    if errors:
        typer.echo(f"{len(errors)} defect(s) found; fix them before training.", err=True)
        raise typer.Exit(1)
    typer.echo("no defects found.")


def demo_data(
    path: Annotated[Path, typer.Argument(help="Folder to write the synthetic dataset into.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a small synthetic dataset in the VIDEM layout (real MP4 files with sound, a planted signal)."""
    from memo.samplekit.videm import write_sample_dataset

    root = write_sample_dataset(path, seed=seed)
    typer.echo(f"wrote a synthetic VIDEM-layout dataset to {root}")


def demo(
    folder: Annotated[Path, typer.Option(help="Work folder for the demo project.")] = Path("memo-demo"),
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the demo folder first.")] = False,
) -> None:
    """Run the whole pipeline offline on the synthetic sample dataset and say where the outputs are."""
    from memo.samplekit.demo import run_demo

    demo = run_demo(folder, fresh=fresh)
    typer.echo("\n" + demo.clock.table())
    typer.secho("\nDone. Outputs:", bold=True)
    for name, path in demo.outputs.items():
        typer.echo(f"  {name:12s} {path}")
