"""The `memo` command line: thin commands that parse, call one library function, and print.

Heavy libraries are imported inside the commands, so `memo --help` is instant. Errors a user
can fix are MemoErrors: printed as one line, exit status 2, no traceback (MEMO_DEBUG=1 shows it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from memo.errors import INTERRUPTED, MemoError

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


def open_project(
    config: Path | None, data: Path | None = None, sets: list[str] | None = None, layout: str | None = None
):
    """Read the project and apply --set overrides (type-checked like memo.toml)."""
    import tomllib

    from memo.config import set_option
    from memo.errors import ConfigError
    from memo.project import Project

    project = Project.open(config, data=data, layout=layout)
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} needs the form key=value, e.g. --set gbt.n_trials=10.")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        set_option(project.config, key.strip(), value)
    return project


def echo_table(df, title: str | None = None) -> None:
    from memo.progress import table_text

    if title:
        typer.echo(title)
    typer.echo(table_text(df))


# ----------------------------------------------------------------------------- project and data


@app.command()
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


@data_app.command("check")
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
    from memo.data import read_dataset
    from memo.data_check import check_dataset, summarize

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


@app.command("demo-data")
def demo_data(
    path: Annotated[Path, typer.Argument(help="Folder to write the synthetic dataset into.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a small synthetic dataset in the VIDEM layout (real MP4 files with sound, a planted signal)."""
    from memo.samplekit.dataset import write_sample_dataset

    root = write_sample_dataset(path, seed=seed)
    typer.echo(f"wrote a synthetic VIDEM-layout dataset to {root}")


@app.command()
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


# ----------------------------------------------------------------------------- stages


@app.command()
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


@rationale_app.callback()
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


@rationale_app.command("show")
def rationale_show(
    video_id: Annotated[str, typer.Argument(help="A video id.")],
    config: ConfigOpt = None,
) -> None:
    """Print an ad's rationales and ratings from the log."""
    from memo.rationales import show_rationales

    typer.echo(show_rationales(open_project(config), video_id))


@rationale_app.command("finetune")
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


ModelArg = Annotated[str, typer.Argument(help="Predictor: gbt | mindmem | llm (see `memo train --help`).")]


@app.command()
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


@app.command()
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
    over [evaluate] repeats splits, beside the baselines on the same folds; submit then reuses the work.
    """
    if run is not None:
        from memo.evaluation import evaluate_run

        if split is not None or folds is not None or repeats is not None:
            raise MemoError(
                "--run evaluates the run as memo.toml configures it; set folds and repeats with --set "
                "evaluate.folds=N, --set evaluate.repeats=N, and leave out --split."
            )
        table, info = evaluate_run(open_project(config, data, set_), run, device=device)
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

    if repeats is not None and repeats < 1:
        raise MemoError(f"--repeats {repeats} must be 1 or more.")
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


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", help="A trained predictor: gbt | mindmem | llm.")] = "gbt",
    split: Annotated[str | None, typer.Option(help="Split to predict (default: the test split).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write (default: print).")] = None,
    device: DeviceOpt = "auto",
    config: ConfigOpt = None,
    data: DataOpt = None,
) -> None:
    """Predict a split with a trained predictor."""
    from memo.submission.models import predict_model

    df = predict_model(open_project(config, data), model, split=split, out=out, device=device)
    if out is None:
        echo_table(df)
    else:
        typer.echo(f"wrote {len(df)} predictions to {out}")


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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
    from memo.evaluation.readvise import terminal_table

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


@app.command()
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


def main() -> None:
    try:
        app()
    except MemoError as e:
        if os.environ.get("MEMO_DEBUG") == "1":
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except SystemExit as e:  # Typer turns a Ctrl-C in any command into a silent exit 130
        if e.code == 130:
            typer.echo(INTERRUPTED, err=True)
        raise


if __name__ == "__main__":
    main()
