"""[gbt] and [mindmem] sections of memo.toml."""

from dataclasses import dataclass, field


@dataclass
class GBTConfig:
    blocks: list[str] = field(default_factory=lambda: ["metadata", "e5", "stats", "ratings", "organiser", "vit", "audio"])
    members: list[str] = field(default_factory=lambda: ["xgboost", "lightgbm", "catboost"])
    reduce: str = "pca"  # pca | svd | none, per block, fitted on the training fold only
    components: int = 32
    n_trials: int = 30  # optuna trials per member
    timeout: float = 600.0  # seconds of tuning per member
    ensemble: str = "auto"  # auto (chosen by CV) | rank | stack


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
