"""memo: predict how memorable a video ad is.

The package root holds what every stage shares (CLI, config, dataset readers, feature store,
splits, metrics, errors, model resolution). The stages live in their own folders, installed
into this namespace: memo.features, memo.rationales, memo.baselines, memo.llm_fusion,
memo.submission.
"""

__version__ = "0.1.0"
