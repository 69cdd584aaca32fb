"""[features] section of memo.toml: which extractors run and how."""

from dataclasses import dataclass, field


@dataclass
class FeaturesConfig:
    extractors: list[str] = field(default_factory=lambda: ["vit", "e5", "audio", "stats", "organiser"])
    splits: list[str] = field(default_factory=list)  # empty = every split of the dataset
    frames: int = 8  # frames per video, uniformly spaced
    frame_every: float = 0.0  # seconds between frames instead of a fixed count; 0 = use `frames`
    max_frames: int = 32  # cap for long videos (said in the log)
    vit_pooling: str = "cls"  # cls | mean (mean patch token)
    text_fields: list[str] = field(default_factory=lambda: ["title", "description", "tags", "transcript", "captions"])
    e5_prefix: str = "query"  # query | passage | none; E5's card: "query: " when embeddings are used as features
    e5_max_tokens: int = 0  # tokens per window for long texts; 0 = the model's own limit
    # captions (Memento10k, TRECVid: several human captions per video): "mean" embeds each caption on its
    # own and keeps the unit-normalised mean; "joined" embeds them as one text. Mean scored +0.025
    # Spearman over joined with a ridge on Memento10k (docs/features.md).
    caption_pooling: str = "mean"
    audio_sample_rate: int = 16000
    audio_window: float = 10.0  # seconds of sound per encoder window; windows make the (T, D) sequence
    max_audio_windows: int = 12  # cap for long sound tracks (said in the log)
    stats_fps: float = 4.0  # frames per second decoded (small, grey) for the video statistics
    batch_size: int = 16
    workers: int = 2  # decoding threads overlapped with encoding
