"""What every synthetic data set of the kit shares: seeded generator streams, the sigmoid the planted
signals go through, and the README marker that lets a re-run clear its own output (never anyone else's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from memo.errors import MemoError

__all__ = ["MARKER", "prepare_root", "seeded_rng", "sigmoid"]

MARKER = "memo synthetic demo data"  # first line of README.txt: lets a re-run clear its own output


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def seeded_rng(seed: int, *stream: int):
    """An independent generator per purpose, so e.g. `size` never changes the CSVs for a seed."""
    return np.random.default_rng([seed, *stream])


def prepare_root(root: Path, names: list[str]) -> None:
    """Create root; clear a previous synthetic set there, but never someone else's files."""
    root.mkdir(parents=True, exist_ok=True)
    present = [root / n for n in names if (root / n).exists()]
    if not present:
        return
    readme = root / "README.txt"
    ours = readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(MARKER)
    if not ours:
        raise MemoError(
            f"{root} already holds {present[0].name} that memo did not write; choose an empty folder "
            "for the demo data."
        )
    for p in present:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
