"""How every tiny model is built: once, offline, atomically. A builder hands `build_once` a function that
writes the model into a folder; it runs in a temporary sibling, the marker file (kind, KIT_VERSION and
the builder's arguments) is written last, and the folder is moved into place, so a later call with the
same arguments finds the marker and reuses the folder. `seeded` gives the random weights a fixed seed
without touching the caller's RNG. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["KIT_VERSION", "MARKER", "build_once", "is_built", "seeded"]

# Bump when a builder changes what it writes: folders with an older marker are rebuilt.
KIT_VERSION = 1
MARKER = ".memo_testkit.json"


def _params_key(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    # json round trip so tuples/lists and numbers compare the same way they are stored.
    return json.loads(
        json.dumps({"kind": kind, "kit_version": KIT_VERSION, "params": params}, sort_keys=True, default=str)
    )


def is_built(path: str | Path, kind: str | None = None) -> bool:
    """True when `path` holds a complete testkit model (optionally of this kind)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("kit_version") == KIT_VERSION and (kind is None or info.get("kind") == kind)


def build_once(path: str | Path, kind: str, params: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Run `build(tmp_folder)` unless `path` already holds this exact model; return `path`.

    The folder is built next to the target and renamed into place, so a crashed build never
    leaves a half-written folder that looks valid, and two processes building the same folder at
    once (pytest-xdist, two `memo` commands) both end up with a complete one.
    """
    path = Path(path).expanduser().absolute()
    key = _params_key(kind, params)
    if _marker_matches(path, key):
        return path
    if path.exists() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise FileExistsError(
            f"{path} exists and is not a memo.samplekit.tiny_models folder; refusing to overwrite it."
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the final folder should follow the umask
    stale = None
    try:
        with _quiet_transformers():
            build(tmp)
        (tmp / MARKER).write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")  # written last
        if _marker_matches(path, key):
            return path  # another process finished the same build meanwhile: keep theirs
        if path.exists() and any(path.iterdir()):
            # An older or differently configured testkit build: move it aside, then swap in ours.
            stale = Path(tempfile.mkdtemp(prefix=f".{path.name}.stale-", dir=path.parent))
            os.replace(path, stale / "old")
        try:
            os.replace(tmp, path)  # onto a missing or empty folder (pytest's tmp_path): atomic
        except OSError:
            if not _marker_matches(path, key):  # lost a race to an identical build: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    return path


def _marker_matches(path: Path, key: dict[str, Any]) -> bool:
    try:
        return json.loads((path / MARKER).read_text()) == key
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch inside a forked RNG state, so building a model never perturbs the caller's RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' info logs and progress bars while building; restore them after."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
