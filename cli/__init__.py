"""The `memo` command line: each command parses its options, calls one library function and prints.

    memo --help            # every command, with its one-line purpose
    python -m memo ...     # the same (memo/__main__.py)

The CLI is the only place in memo that prints results or talks to the terminal; library functions
return data and report progress through the `memo` logger (memo.progress), which the CLI shows.
"""

from memo.cli.commands import app, echo_table, main

__all__ = ["app", "echo_table", "main"]
