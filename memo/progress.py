"""What long library work says while it runs, without printing: the `memo` logger.

    from memo.progress import say
    say("run 1: training ridge on 250 dev videos")
    say(table_text(summary))       # a DataFrame, as the terminal shows it

Library modules never print: they are called from notebooks, benchmarks and other programs. They
say what they do through the standard `logging` logger named "memo" (level INFO). The CLI turns
it on with `show_progress()`, which writes each message on stderr above the tqdm progress bars, so
a message never breaks a bar. A program that wants the messages adds its own handler to
`logging.getLogger("memo")`, or calls `show_progress()` too.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("memo")


def say(message: str) -> None:
    """One progress message, for people (the CLI shows it; a library caller sees it if it logs INFO)."""
    log.info(message)


class _AboveBars(logging.Handler):
    """Writes through tqdm.write to the stderr of the moment (tests and the CLI runner swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


def table_text(df) -> str:
    """A DataFrame as people read it in a terminal: wide, every column, long cells cut at 60 characters."""
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
        return df.to_string()


def show_progress() -> None:
    """Show the `memo` logger's messages on stderr (idempotent; the CLI calls it for every command)."""
    if not any(isinstance(h, _AboveBars) for h in log.handlers):
        log.addHandler(_AboveBars())
    log.setLevel(logging.INFO)
