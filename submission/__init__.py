"""Runs, run files, manifests and validation: the end of the pipeline, what a team uploads.

    from memo.submission import submit_runs, validate_run_file
    submit_runs(project, ["1"])                   # `memo submit --run 1`
    validate_run_file(path, project)              # `memo validate FILE`: one line per defect

Modules: `plan` (a [runs.N] table -> usable streams, models, fingerprint), `coverage` (the
streams both splits have), `runs` (computing a run: features, grouped CV, full fit, cached),
`blends` (blending and choosing among runs), `models` (trained models), `runfile` (names,
format, validation), `submit` (publishing, manifests, backups, the upload zip). See docs/submission.md.
"""

from memo.metrics import blend_predictions
from memo.submission.plan import Plan, resolve_run
from memo.submission.runfile import render_run_file, run_file_name, validate_run_file
from memo.submission.runs import compute_run
from memo.submission.submit import submit_runs, write_zip

__all__ = [
    "Plan",
    "blend_predictions",
    "compute_run",
    "render_run_file",
    "resolve_run",
    "run_file_name",
    "submit_runs",
    "validate_run_file",
    "write_zip",
]
