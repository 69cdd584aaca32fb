"""[gbt] and [mindmem] sections of memo.toml."""

from dataclasses import dataclass, field


@dataclass
class GBTConfig:
    """The GBT ensemble (memo.baselines.gbt): feature blocks, members, tuning budget, ensembling."""

    # feature blocks: stream names or prefixes (e5 = every e5.<field>); a block the store lacks is skipped
    blocks: list[str] = field(default_factory=lambda: ["metadata", "e5", "stats", "ratings", "organiser", "vit", "audio", "rationale"])
    members: list[str] = field(default_factory=lambda: ["xgboost", "lightgbm", "catboost"])
    reduce: str = "pca"  # pca | svd | none, per stream, fitted on the training fold only
    components: int = 16  # per stream after reduction; named streams (metadata, stats, ratings) are kept whole
    n_trials: int = 20  # optuna trials per member and target; 0 = fixed default hyperparameters
    timeout: float = 300.0  # seconds of tuning per member and target (a budget; trials stop early)
    inner_folds: int = 3  # grouped folds inside the training data, for tuning and ensembling
    ensemble: str = "auto"  # auto (chosen by inner CV) | rank | stack
    threads: int = 1  # per library (n_jobs / thread_count); the CPU is often shared


@dataclass
class MindMemConfig:
    modalities: list[str] = field(default_factory=lambda: ["vit", "audio", "e5"])
    width: int = 1024
    heads: int = 8
    dropout: float = 0.1
    pooling: str = "attention"  # attention | mean | max
    cross_attention: bool = True
    loss: str = "mse+rank"  # mse | rank | mse+rank
    rank_weight: float = 0.5
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 60
    batch_size: int = 32
    warmup: float = 0.1  # fraction of steps
    patience: int = 10  # epochs without a better validation Spearman
