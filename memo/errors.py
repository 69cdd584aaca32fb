"""One error type for everything a user can fix.

A MemoError's message is one sentence that names the bad value and says what to do next. The
CLI prints it without a traceback and exits non-zero (MEMO_DEBUG=1 shows the traceback).
Anything else that escapes is a bug in memo, and is shown as one.
"""


class MemoError(Exception):
    """A problem with the user's input, data, config or environment, with the fix in the message."""

    exit_code = 2


class DataError(MemoError):
    """The dataset folder is missing something or holds a defect."""


class ConfigError(MemoError):
    """memo.toml, or an option given on the command line, is wrong."""


class ModelNotFound(MemoError):
    """A model id or folder cannot be loaded (offline, misspelt, not downloaded)."""


# after Ctrl-C: every long stage resumes
INTERRUPTED = "interrupted; rerun the same command to resume where it stopped."
