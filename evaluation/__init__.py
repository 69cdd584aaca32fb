"""Honest evaluation a user runs: brand-grouped cross-validation of predictors and of runs beside the
simple baselines, MindMem's ablation grid, plots, and the HTML report.

    from memo.evaluation import evaluate_models, evaluate_run
    evaluate_models(project, ["gbt"])     # `memo evaluate --model gbt`: every model on the same folds
    evaluate_run(project, "1")            # `memo evaluate --run 1`: a run exactly as `memo submit` trains it

Modules: `compare` (models side by side, cached by fingerprint), `runs` (a configured run and the
baselines on the same repeated folds), `ablation` (MindMem variants), `plots`, `report` (the HTML
page). The cross-validation primitives they share with the stages live in the core
(memo.crossval, memo.splits, memo.metrics). See docs/evaluation.md.
"""

from memo.evaluation.compare import evaluate_models
from memo.evaluation.runs import evaluate_run

__all__ = ["evaluate_models", "evaluate_run"]
