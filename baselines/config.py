"""[gbt] and [mindmem] sections of memo.toml."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GBTConfig:
    """The GBT ensemble (memo.baselines.gbt): feature streams, members, tuning budget, ensembling."""

    # stream selectors (memo.streams: a name, or a prefix for every stream under it: e5 = every e5.<field>,
    # metadata = metadata.absolute and metadata.brand); a stream these videos lack is skipped with a note.
    # A run's own `streams` replace these for that run.
    # metadata.brand (counts relative to the video's own brand), not metadata: brand levels do not transfer to new brands
    streams: list[str] = field(default_factory=lambda: ["metadata", "cues", "e5", "stats", "ratings", "organiser", "vit", "audio", "rationale"])
    # ridge and kernel (RBF kernel ridge): members on the full (unreduced, standardised) blocks, their
    # penalty and kernel width chosen on the inner folds
    members: list[str] = field(default_factory=lambda: ["xgboost", "lightgbm", "catboost", "ridge", "kernel"])
    reduce: str = "pca"  # pca | svd | none, per stream, fitted on the training fold only
    components: int = 16  # per stream after reduction; named streams (metadata, stats, ratings) are kept whole
    n_trials: int = 20  # optuna trials per member and target; 0 = fixed default hyperparameters
    timeout: float = 300.0  # seconds of tuning per member and target (a budget; trials stop early)
    inner_folds: int = 3  # grouped folds inside the training data, for tuning and ensembling
    ensemble: str = "auto"  # auto (rank, stack or the best single member, chosen by inner CV) | rank | stack | best
    threads: int = 1  # per library (n_jobs / thread_count); the CPU is often shared
    # member -> parameters pinned to a value and never tuned, e.g. {xgboost = {n_estimators = 200}}
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class MindMemConfig:
    """MindMem attention fusion (memo.baselines.mindmem): modalities, widths, pooling, loss, training.

    A modality is a named group of feature streams. Each entry is a stream name (`vit`,
    `organiser.ViT`) or a prefix meaning every stream under it (`e5` = e5.title, e5.tags, ...).
    Every stream is projected into the shared width on its own; its rows then become tokens of
    its modality. A stream the feature store lacks is skipped; a modality left with no stream is
    dropped from the model (said in the log). In memo.toml:

        [mindmem]
        use = ["text", "metadata"]
        modalities = {video = ["vit", "organiser.ViT"], audio = ["audio"], text = ["e5", "rationale"], metadata = ["metadata", "cues"]}
    """

    # modality -> streams; `vit` frames and the organisers' ViT rows are both tokens of `video`
    modalities: dict[str, list[str]] = field(
        default_factory=lambda: {
            "video": ["vit", "organiser.ViT"],
            "audio": ["audio"],
            "text": ["e5", "rationale"],
            "metadata": ["metadata.absolute", "cues", "stats", "ratings"],
        }
    )
    use: list[str] = field(default_factory=lambda: ["video", "audio", "text"])  # modalities this model reads; empty = all
    width: int = 1024  # the shared space every stream is projected into
    heads: int = 8
    dropout: float = 0.1
    pooling: str = "attention"  # attention (self-attention, then attention-weighted pooling) | mean | max
    cross_attention: bool = True  # each modality's vector attends to the other modalities' vectors
    modality_dropout: float = 0.1  # chance a whole modality is masked out of a training sample (trains the 'missing' embedding)
    loss: str = "mse+spearman"  # mse | spearman | pairwise | mse+spearman | mse+pairwise
    rank_weight: float = 0.5  # weight of the rank term in mse+<rank>
    rank_temperature: float = 0.1  # softness of the soft ranks / pairwise logits (on batch-standardised scores)
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 60
    batch_size: int = 32
    warmup: float = 0.1  # fraction of steps with a linear warm-up, then cosine decay to zero
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping
    valid_fraction: float = 0.15  # brands held out of the training data for early stopping; 0 (or under 30 videos) = none
    patience: int = 10  # epochs without a better validation Spearman
    amp: bool = True  # bfloat16 autocast on a CUDA GPU (ignored on CPU)
