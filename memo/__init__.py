"""memo: predict how memorable a video ad is.

The package root holds what every stage shares (config, dataset readers, feature store, splits,
metrics, cross-validation, the predictor registry, errors, model resolution). The stages live in
folders of their own, installed into this namespace: memo.features, memo.rationales,
memo.baselines, memo.llm_fusion, then memo.submission, memo.evaluation, memo.samplekit, and the
command line in memo.cli. docs/architecture.md draws how they fit together.
"""

__version__ = "0.1.0"
