"""The sections of `memo report`, and what they share: each reads what a stage left on disk and returns
it as data.

A section is a function `(project, page) -> Section` whose blocks (memo.evaluation.report_page)
are paragraphs, headings, tables (DataFrames through `page.table`) and figures (matplotlib
through `page.figure`, or another stage's own plot through `page.png`); none writes HTML.
A section whose inputs are missing says so and names the command that makes them.
memo.evaluation.report lists them in page order. They live by what they show:
- report_sections_data: the project, the dataset, video statistics against the targets;
- report_sections_cv: cross-validation tables, predicted against true, per-brand Spearman, the
  MindMem ablation;
- report_sections_models: the trained GBT's feature importance, the runs and their run files.
This module holds what they read alike: the labelled split and the project's targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from memo.project import Project


def labelled_table(project: Project) -> pd.DataFrame:
    """The labelled split's table (ids, groups, texts, metadata, targets)."""
    return project.dataset.labelled().table


def report_targets(project: Project) -> list[str]:
    """The project's targets; the labelled split's target columns when the configured ones are wrong."""
    try:
        return project.targets
    except Exception:  # a project whose configured targets are wrong still gets a report
        return list(project.dataset.labelled().target_columns)
