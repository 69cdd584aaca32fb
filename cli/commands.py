"""The `memo` command line: thin commands that parse, call one library function, and print.

Heavy libraries are imported inside the commands, so `memo --help` is instant. Errors a user
can fix are MemoErrors: printed as one line, exit status 2, no traceback (MEMO_DEBUG=1 shows it).

The commands live in modules by concept; this module registers them, in the order `memo --help`
lists them (a group's commands, `memo data` and `memo rationale`, are listed under the group):

    project_commands   init, config, data check, demo-data, demo
    stage_commands     features, rationale (show, finetune)
    model_commands     train, evaluate, predict, ablate
    submit_commands    submit, validate, score, export
    report_commands    readvise, report
"""

from __future__ import annotations

import os
import sys

import typer

import memo.cli.model_commands as model_commands
import memo.cli.project_commands as project_commands
import memo.cli.report_commands as report_commands
import memo.cli.stage_commands as stage_commands
import memo.cli.submit_commands as submit_commands
from memo.cli.common import app, data_app, echo_table, rationale_app
from memo.errors import INTERRUPTED, MemoError

__all__ = ["app", "echo_table", "main"]

# every command, in the order `memo --help` lists it
app.command()(project_commands.init)
app.command("config")(project_commands.config_show)
data_app.command("check")(project_commands.data_check)
app.command("demo-data")(project_commands.demo_data)
app.command()(project_commands.demo)
app.command()(stage_commands.features)
rationale_app.callback()(stage_commands.rationale)
rationale_app.command("show")(stage_commands.rationale_show)
rationale_app.command("finetune")(stage_commands.rationale_finetune)
app.command()(model_commands.train)
app.command()(model_commands.evaluate)
app.command()(model_commands.predict)
app.command()(model_commands.ablate)
app.command()(submit_commands.submit)
app.command()(submit_commands.validate)
app.command()(submit_commands.score)
app.command()(submit_commands.export)
app.command()(report_commands.readvise)
app.command()(report_commands.report)


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
