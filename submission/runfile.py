"""Run files: the CSV a team uploads, its name, its exact format, and the checks it must pass.

    name = run_file_name(config, "1")                   # me25mem-myteam-subtask2-run1.csv
    text = render_run_file(preds, project, targets)     # preds: DataFrame ids x targets
    defects = validate_run_file(path, project)          # [] when the file is valid

Format, from [submission] in memo.toml (organisers change it from year to year):
    <id column><sep><score column 1><sep>...    header line unless header = false
    <video id><sep><score with `precision` decimals>...   one line per test video, test-list order

Validation reads the file with a real CSV parser and reports every defect on one line that
names the line number and the video id, so a user can fix a hand-edited file.
"""

from __future__ import annotations

import csv
import io
import math
import re
import string
from pathlib import Path

import pandas as pd

from memo.errors import ConfigError, MemoError

PLACEHOLDERS = {"team", "run"}
RUN_NAME = r"[A-Za-z0-9_-]+"  # what a run may be called: it becomes part of a file name


# ----------------------------------------------------------------------------- names and columns


def _check_template(template: str, needed: set[str], key: str) -> list[str]:
    """The {placeholders} of a name template; unknown ones or a missing {run} are ConfigErrors."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ConfigError(
            f"[submission] {key} = {template!r} is not a valid template ({e}); use {{team}} and {{run}}."
        ) from e
    unknown = set(names) - PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"[submission] {key} = {template!r} uses {{{sorted(unknown)[0]}}}; only {{team}} and "
            "{run} are filled in."
        )
    if not needed <= set(names):
        raise ConfigError(
            f"[submission] {key} = {template!r} lacks {{run}}; every run needs its own file name."
        )
    return names


def run_file_name(config, run: str) -> str:
    """The run file's name from [submission] filename, e.g. me25mem-myteam-subtask2-run1.csv."""
    _check_template(config.submission.filename, {"run"}, "filename")
    return config.submission.filename.format(team=config.project.team, run=run)


def run_file_path(project, run: str) -> Path:
    """Where `memo submit --run RUN` writes the run file: [submission] out / run_file_name; a MemoError names
    the runs if RUN is not one."""
    config = project.config
    if str(run) not in config.runs:
        have = ", ".join(sorted(config.runs)) or "none"
        raise MemoError(
            f"memo.toml has no [runs.{run}] (runs: {have}); pass one of them, or a run file's path."
        )
    path = config.resolve(config.submission.out) / run_file_name(config, str(run))
    if not path.is_file():
        raise MemoError(f"run {run} has no run file yet ({path}); run `memo submit --run {run}` first.")
    return path


def zip_file_name(config) -> str:
    _check_template(config.submission.zip_name, set(), "zip_name")
    if "{run}" in config.submission.zip_name:
        raise ConfigError("[submission] zip_name holds every run; it cannot use {run}.")
    return config.submission.zip_name.format(team=config.project.team)


def name_pattern(config) -> re.Pattern:
    """A regex for run file names: the template's literal parts, this team, any run name."""
    _check_template(config.submission.filename, {"run"}, "filename")
    parts = []
    for literal, field_name, _, _ in string.Formatter().parse(config.submission.filename):
        parts.append(re.escape(literal))
        if field_name == "team":
            parts.append(re.escape(config.project.team))
        elif field_name == "run":
            parts.append(r"(?P<run>" + RUN_NAME + ")" if "(?P<run>" not in "".join(parts) else r"(?P=run)")
    return re.compile("".join(parts) + r"\Z")


def id_column(project) -> str:
    return project.config.submission.id_column or project.dataset.id_column


def score_columns(config, targets: list[str]) -> list[str]:
    """Column names for the targets: [submission] columns renames them in order."""
    cols = config.submission.columns
    if not cols:
        return list(targets)
    if len(cols) != len(targets):
        raise ConfigError(
            f"[submission] columns = {cols} names {len(cols)} column(s) for {len(targets)} target(s) "
            f"({', '.join(targets)}); "
            "give one name per target, in order, or leave it empty."
        )
    return list(cols)


def _check_format(config) -> None:
    sep = config.submission.separator
    if len(sep) != 1 or sep in '"\r\n' or sep.isalnum() or sep in ".-":
        raise ConfigError(
            f"[submission] separator = {sep!r} must be one character such as ',' or ';' or '\\t'."
        )
    if not 0 <= config.submission.precision <= 17:
        raise ConfigError(
            f"[submission] precision = {config.submission.precision} must be between 0 and 17 decimals."
        )


# ----------------------------------------------------------------------------- writing


def render_run_file(preds: pd.DataFrame, project, targets: list[str]) -> str:
    """The run file's text: test ids in the test list's order, one score column per target.

    `preds` is indexed by video id with one column per target; scores are clipped to [0, 1]
    (predictors already clip; this guards a blend's arithmetic) and a missing id is an error.
    """
    config = project.config
    _check_format(config)
    test = project.dataset.splits[project.dataset.test_split]
    missing = [i for i in test.ids if i not in preds.index]
    if missing:
        raise MemoError(
            f"the predictions lack {len(missing)} test video(s), e.g. {missing[0]!r}; this is a bug in "
            "the predictor, please report it."
        )
    values = preds.loc[test.ids, targets].astype(float)
    bad = values.isna().any(axis=1) | ~values.apply(lambda c: c.map(math.isfinite)).all(axis=1)
    if bad.any():
        raise MemoError(
            f"the prediction for test video {values.index[bad][0]!r} is not a finite number; this is a "
            "bug in the predictor, please report it."
        )
    values = values.clip(0.0, 1.0)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=config.submission.separator, lineterminator="\n")
    if config.submission.header:
        w.writerow([id_column(project), *score_columns(config, targets)])
    p = config.submission.precision
    for vid, row in values.iterrows():
        w.writerow([vid, *(f"{v:.{p}f}" for v in row)])
    return buf.getvalue()


# ----------------------------------------------------------------------------- validation


def _targets_for(project, run: str | None) -> list[str]:
    runs = project.config.runs
    if run is not None and run in runs and runs[run].targets:
        return list(runs[run].targets)
    return project.targets


def validate_run_file(path: str | Path, project, run: str | None = None) -> list[str]:
    """Every defect of a run file, one line each; an empty list means the file is valid.

    Checks: the file name matches [submission] filename for this team; the header (or its
    absence) and the columns; every test id exactly once and no other id; every score a finite
    number in [0, 1]. `run` picks the run whose targets are expected (default: from the name).
    """
    path = Path(path)
    config = project.config
    _check_format(config)
    ds = project.dataset
    if ds.test_split is None:
        raise MemoError(
            f"the dataset at {project.data_path} has no test split, so there is nothing to check a run "
            "file against; pass --data with the full release."
        )
    defects: list[str] = []
    m = name_pattern(config).match(path.name)
    if m is None:
        example = config.submission.filename.format(team=config.project.team, run="1")
        defects.append(
            f"{path.name}: the file name does not match [submission] filename "
            f"{config.submission.filename!r} for team {config.project.team!r} (e.g. {example})."
        )
    run = run or (m.group("run") if m else None)
    expected = [id_column(project), *score_columns(config, _targets_for(project, run))]
    if not path.is_file():
        return defects + [f"{path}: no such file."]
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text), delimiter=config.submission.separator))
    # (line number, fields)
    numbered = [(k + 1, r) for k, r in enumerate(rows) if r and any(c.strip() for c in r)]
    test_ids = ds.splits[ds.test_split].ids
    if not numbered:
        return defects + [f"{path.name}: the file is empty; expected a header and {len(test_ids)} rows."]
    header_defects, numbered, width, sep_hint = _header_defects(config, numbered, expected, set(test_ids))
    rows_defects = _row_defects(numbered, expected, width, test_ids, ds.test_split, sep_hint)
    return defects + header_defects + rows_defects


def _header_defects(
    config, numbered: list[tuple[int, list[str]]], expected: list[str], known: set[str]
) -> tuple[list[str], list[tuple[int, list[str]]], int, str]:
    """The header's defects (or a header where [submission] header = false), the data rows, the width
    the rows are judged against, and a hint about the separator for the row defects."""
    defects: list[str] = []
    first_line, first = numbered[0]
    first = [c.strip() for c in first]
    looks_like_data = bool(first) and first[0] in known
    sep_hint = (
        f" (is the separator {config.submission.separator!r}?)"
        if len(first) == 1 and len(expected) > 1
        else ""
    )
    width = len(expected)
    if config.submission.header:
        if looks_like_data:
            defects.append(
                f"line {first_line}: the header is missing (this line is data for id {first[0]}); "
                f"expected the header {config.submission.separator.join(expected)}."
            )
        else:
            numbered = numbered[1:]
            if len(first) != len(expected):
                defects.append(_wrong_columns(first_line, first, expected, sep_hint))
                width = len(first)  # judge rows against the file's own width, so one defect is one line
            elif first != expected:
                diffs = [
                    f"column {k + 1} is {got!r}, expected {want!r}"
                    for k, (got, want) in enumerate(zip(first, expected))
                    if got != want
                ]
                defects.append(f"line {first_line}: wrong header: {'; '.join(diffs)}.")
    elif not looks_like_data and [c.lower() for c in first] == [c.lower() for c in expected]:
        defects.append(
            f"line {first_line}: the file has a header but [submission] header = false; remove the line."
        )
        numbered = numbered[1:]
    return defects, numbered, width, sep_hint


def _wrong_columns(line: int, header: list[str], expected: list[str], sep_hint: str) -> str:
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    detail = "; ".join(
        x
        for x in (
            f"missing {', '.join(missing)}" if missing else "",
            f"extra {', '.join(extra)}" if extra else "",
        )
        if x
    )
    return (
        f"line {line}: wrong columns: the file has {len(header)} column(s) "
        f"({', '.join(header)}), expected {len(expected)}: "
        f"{', '.join(expected)}{' (' + detail + ')' if detail else ''}{sep_hint}."
    )


def _row_defects(
    numbered: list[tuple[int, list[str]]],
    expected: list[str],
    width: int,
    test_ids: list[str],
    split: str,
    sep_hint: str,
) -> list[str]:
    """The defects of the data rows, (line number, fields) each: ids (empty, repeated, unknown, missing) and
    scores."""
    known = set(test_ids)
    defects: list[str] = []
    seen: dict[str, int] = {}
    for line, row in numbered:
        row = [c.strip() for c in row]
        vid = row[0] if row else ""
        if len(row) != width:  # a ragged row (the header's own width was reported above)
            defects.append(f"line {line} (id {vid or '?'}): {len(row)} field(s), expected {width}{sep_hint}.")
        if not vid:
            defects.append(f"line {line}: the id is empty.")
            continue
        if vid in seen:
            defects.append(
                f"line {line}: id {vid} appears again (first on line {seen[vid]}); keep one row per video."
            )
        else:
            seen[vid] = line
            if vid not in known:
                defects.append(f"line {line}: id {vid} is not a video of the {split} split.")
        for col, cell in zip(
            expected[1:] if width == len(expected) else [f"column {k + 2}" for k in range(width - 1)], row[1:]
        ):
            try:
                v = float(cell)
            except ValueError:
                defects.append(f"line {line} (id {vid}): {col} = {cell!r} is not a number.")
                continue
            if math.isnan(v):
                defects.append(f"line {line} (id {vid}): {col} is NaN.")
            elif math.isinf(v):
                defects.append(f"line {line} (id {vid}): {col} is infinite.")
            elif not 0.0 <= v <= 1.0:
                defects.append(f"line {line} (id {vid}): {col} = {cell} is outside [0, 1].")
    for vid in test_ids:
        if vid not in seen:
            defects.append(f"id {vid} of the {split} split is missing.")
    return defects
