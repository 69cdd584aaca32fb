"""`memo submit`: the run files a team uploads, each with a manifest, validated before it is published.

    paths = submit_runs(project, ["1"])  # run_files/me25mem-myteam-subtask2-run1.csv (+ .manifest.json)
    paths = submit_runs(project, [], all_runs=True, make_zip=True)

For each run: resolve it (memo.submission.runs), and if its run file exists, is unchanged since
memo wrote it and was written from the same inputs (the fingerprint in its manifest), say so and
do nothing. Otherwise compute what is missing, render the file, validate the exact bytes under
the final name, keep a backup of a file it replaces (only with --force), then publish the
manifest and the file atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import memo
from memo.crossval import cv_scheme, repeats_of, unseen
from memo.errors import ConfigError, MemoError
from memo.launch import process_slot
from memo.progress import say
from memo.search import describe_picks
from memo.store import atomic_write_bytes, atomic_write_json, library_versions, stable_hash
from memo.submission.plan import Plan, changed_inputs, resolve_run
from memo.submission.runfile import render_run_file, run_file_name, validate_run_file, zip_file_name
from memo.submission.runs import compute_run


def manifest_path(run_file: Path) -> Path:
    return run_file.with_name(run_file.stem + ".manifest.json")


def file_fingerprint(project, plan: Plan, name: str) -> str:
    """The run's fingerprint plus everything that shapes the file itself (format, team, name)."""
    return stable_hash(
        {
            "run": plan.fingerprint,
            "name": name,
            "submission": dataclasses.asdict(project.config.submission),
            "team": project.config.project.team,
        },
        16,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return {}


def up_to_date(path: Path, fingerprint: str) -> bool:
    """The file exists, is byte for byte what memo wrote, and came from the same inputs."""
    m = _read_manifest(path)
    return (
        path.is_file()
        and m.get("fingerprint") == fingerprint
        and m.get("file", {}).get("sha256") == sha256(path)
    )


# ----------------------------------------------------------------------------- provenance


def git_commit() -> str:
    """The commit of memo's own source checkout, or "unknown".

    Only a checkout whose top folder holds memo's pyproject.toml counts: an installed memo lives in
    site-packages, which may sit inside another repository (a virtual environment in a project
    folder), and that repository's commit is not memo's.
    """
    src = Path(memo.__file__).resolve().parent.parent
    if not ((src / ".git").exists() and (src / "pyproject.toml").is_file()):
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    if out.returncode or not commit:
        return "unknown"
    try:
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return commit


def _models(plan: Plan) -> dict[str, Any]:
    from memo.models import describe

    out: dict[str, Any] = {}
    for p in [plan, *_all_components(plan)]:
        for role, name in p.models.items():
            out[role] = describe(name)
    return out


def _all_components(plan: Plan) -> list[Plan]:
    out = []
    for c in plan.components:
        out += [c, *_all_components(c)]
    return out


def expected_scores(result) -> str:
    """'memorability_score 0.281 (repeats 0.25..0.30; 95% interval of one split [0.10, 0.43])', per target."""
    return ", ".join(expected_score(t, s) for t, s in result.cv_scores.items())


def expected_score(target: str, s: dict) -> str:
    """One target's grouped-CV figure as expected_scores says it."""
    spread = f"repeats {s['expected_min']:.2f}..{s['expected_max']:.2f}; " if s.get("repeats", 1) > 1 else ""
    return (
        f"{target} {s['expected']:.3f} ({spread}95% interval of one split [{s['spearman_lo']:.2f}, "
        f"{s['spearman_hi']:.2f}])"
    )


def build_manifest(
    project, result, path: Path, fingerprint: str, text: str, seconds: float
) -> dict[str, Any]:
    plan = result.plan
    ds = project.dataset
    return {
        "run": plan.name,
        "description": plan.run.description,
        "fingerprint": fingerprint,
        "run_fingerprint": plan.fingerprint,
        "inputs": plan.inputs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 1),
        "file": {
            "name": path.name,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "rows": len(ds.splits[ds.test_split].ids),
            "format": dataclasses.asdict(project.config.submission),
        },
        "resolved": plan.describe(),
        "components": {c.name: c.describe() for c in _all_components(plan)},
        # what the fitted model read: stream -> columns ({} for a blend; see components)
        "streams": result.consumed,
        "cv": {
            "scheme": cv_scheme(project, result.folds, len(repeats_of(result.cv))),
            "videos": int(result.cv.index.get_level_values("id").nunique()),
            # per target: `expected` = mean Spearman over the repeats, the rest from the first
            "scores": result.cv_scores,
            # a chosen blend: target -> what its test predictions are
            **({"chosen": result.chosen} if result.chosen else {}),
            # a search: each outer fold's pick and the final one
            **({"search": result.choices} if result.choices else {}),
        },
        "data": {
            "path": str(project.data_path),
            "layout": ds.layout,
            "train_split": ds.train_split,
            "test_split": ds.test_split,
        },
        "feature_store": {p.name: p.store_keys for p in [plan, *_all_components(plan)] if p.store_keys},
        "models": _models(plan),
        "git_commit": git_commit(),
        "versions": library_versions(),
        "config": project.config.to_dict(),
    }


# ----------------------------------------------------------------------------- writing


def _publish(project, result, path: Path, fingerprint: str, force: bool, seconds: float) -> None:
    """Render, validate the exact bytes under the final name, back up what it replaces, then write."""
    text = render_run_file(result.test, project, result.plan.targets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".memo-submit-") as tmp:
        staged = Path(tmp) / path.name
        staged.write_text(text, encoding="utf-8")
        defects = validate_run_file(staged, project, run=result.plan.name)
        if defects:
            shown = "\n  ".join(defects[:20]) + (
                f"\n  ... and {len(defects) - 20} more" if len(defects) > 20 else ""
            )
            raise MemoError(
                f"run {result.plan.name}: the run file memo wrote fails validation, so it was not "
                f"published (a bug in memo, please report it):\n  {shown}"
            )
        if path.exists():
            if not force:
                raise MemoError(
                    f"{path} exists; pass --force to replace it (the old one is kept as a backup)."
                )
            backup(path)
        atomic_write_json(
            manifest_path(path), build_manifest(project, result, path, fingerprint, text, seconds)
        )
        with open(staged, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(staged, path)  # same folder, so the rename is atomic


def backup(path: Path) -> Path:
    """Copy a run file and its manifest to <out>/backups/<name>.<timestamp>; returns the copy."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = path.parent / "backups"
    folder.mkdir(exist_ok=True)
    dest = folder / f"{path.name}.{stamp}"
    k = 1
    while dest.exists():
        dest, k = folder / f"{path.name}.{stamp}-{k}", k + 1
    shutil.copy2(path, dest)
    if manifest_path(path).is_file():
        shutil.copy2(
            manifest_path(path), dest.with_name(dest.name.replace(path.name, manifest_path(path).name, 1))
        )
    say(f"kept the old {path.name} as {dest}")
    return dest


def write_zip(paths: list[Path], dest: Path) -> Path:
    """A zip of the run files and their manifests; deterministic, rewritten only when its content changes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted({q for path in paths for q in (path, manifest_path(path))}, key=lambda q: q.name):
            # fixed time: same files, same zip
            info = zipfile.ZipInfo(p.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, p.read_bytes())
    data = buf.getvalue()
    if not (dest.is_file() and dest.read_bytes() == data):
        atomic_write_bytes(dest, data)
    return dest


def check_files(project) -> list[str]:
    """Stop on the file defects `memo data check` reports (organiser features, videos), unless
    [submission] skip_bad_files lets the run go on without those files; returns the skipped ones."""
    from memo.data_check import check_dataset

    ds = project.dataset
    reported = {p.message for p in ds.problems}
    bad = [p.message for p in check_dataset(ds) if p.error and p.message not in reported]
    if not bad:
        return []
    if not project.config.submission.skip_bad_files:
        more = f" (and {len(bad) - 1} more; `memo data check` lists them)" if len(bad) > 1 else ""
        raise MemoError(
            f"{bad[0].rstrip('.')}{more}; memo submit stops on bad files: fix them, "
            "or set [submission] skip_bad_files = true (or --set submission.skip_bad_files=true) to "
            "submit without them."
        )
    say(
        f"note: submitting without {len(bad)} bad file(s) that `memo data check` reports ([submission] "
        "skip_bad_files = true); those videos lack them."
    )
    return bad


def submit_runs(
    project,
    runs: list[str],
    all_runs: bool = False,
    out: str | Path | None = None,
    force: bool = False,
    make_zip: bool = False,
    device: str = "auto",
) -> list[Path]:
    """Write the run file (and manifest) of each run, computing only what is missing; returns the run files.

    A run whose file is up to date is left alone. An existing file that is not up to date is
    replaced only with `force` (the old one goes to backups/). Every file is validated before it
    is published; `make_zip` adds a zip of the files and manifests for upload.
    """
    cfg = project.config
    names = list(cfg.runs) if all_runs else list(dict.fromkeys(runs))
    if not names:
        defined = ", ".join(cfg.runs)
        raise ConfigError(
            f"name a run with --run N or pass --all; memo.toml defines: {defined}."
            if defined
            else "memo.toml defines no runs; add a [runs.1] table or run `memo init`."
        )
    ds = project.dataset
    if ds.test_split is None:
        raise MemoError(
            f"the dataset at {project.data_path} has no test split, so there is nothing to submit; "
            "point [project] data at the full release."
        )
    ds.raise_problems()
    check_files(project)
    folder = Path(out) if out else cfg.resolve(cfg.submission.out)
    plans = [resolve_run(project, n, device) for n in names]  # every config error before any work
    rank, world = process_slot()
    paths = []
    for plan in plans:
        path = folder / run_file_name(cfg, plan.name)
        fp = file_fingerprint(project, plan, path.name)
        if up_to_date(path, fp):
            say(f"run {plan.name} is up to date: {path}")
            paths.append(path)
            continue
        if rank == 0 and path.exists() and not force:
            _refuse_to_replace(path, plan, fp)
        t0 = time.perf_counter()
        result = compute_run(project, plan, device)
        # every process of a launch computes (a fusion run trains under DDP); the main one writes
        if rank > 0:
            say(
                f"process {rank + 1} of {world}: run {plan.name} computed; the main process writes "
                f"{path.name}"
            )
            paths.append(path)
            continue
        _publish(project, result, path, fp, force, time.perf_counter() - t0)
        say(f"run {plan.name}: wrote {path} ({len(result.test)} test videos)")
        for line in describe_picks(result.choices) if result.choices else []:
            say(f"run {plan.name} picked for {line}")
        say(
            f"run {plan.name}: expected Spearman on unseen {unseen(project)} "
            f"({cv_scheme(project, result.folds, len(repeats_of(result.cv)))}): {expected_scores(result)}"
        )
        paths.append(path)
    if make_zip:
        z = write_zip(paths, folder / zip_file_name(cfg))
        say(f"zip for upload: {z} ({len(paths)} run file(s) with manifests)")
    return paths


def _refuse_to_replace(path: Path, plan: Plan, fp: str) -> None:
    """An existing run file that is not up to date is replaced only with --force: say why it differs."""
    old = _read_manifest(path)
    if old.get("fingerprint") == fp:
        why = "was changed since memo wrote it"
    elif old.get("inputs") and changed_inputs(old["inputs"], plan.inputs):
        why = (
            "was written from other inputs (changed: "
            f"{', '.join(changed_inputs(old['inputs'], plan.inputs))})"
        )
    else:
        why = (
            "was written with another [submission] format, team or name"
            if old
            else "has no manifest from memo"
        )
    raise MemoError(f"{path} exists and {why}; pass --force to replace it (the old one is kept as a backup).")
