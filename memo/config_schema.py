"""memo.toml's schema: every section as a typed dataclass, each key with its default and its meaning.

A key is declared with `setting(default, "one-line meaning")`; the meaning lives in the field's
metadata, so `memo config` prints it beside the key's value and a test checks that no key lacks
one. A key whose value must be one of a fixed set is typed `Literal[...]` (the aliases below):
the annotation is the one home of its allowed values; memo.config refuses any other value when
memo.toml is read or `--set` applies, and the stages read the same set with `typing.get_args`.

memo.config reads TOML into these classes and re-exports them; stages import their section from
there (`from memo.config import GBTConfig`), so the core never imports a stage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# ----------------------------------------------------------------------------- enumerated values

# "cuda:N" stands for cuda followed by a GPU number (cuda:0, cuda:1, ...)
Device = Literal["auto", "cpu", "cuda", "cuda:N", "mps"]
Precision = Literal["auto", "fp32", "bf16"]
VitPooling = Literal["cls", "mean"]
E5Prefix = Literal["query", "passage", "none"]
CaptionPooling = Literal["mean", "joined"]
RationaleBackend = Literal["transformers", "vllm"]
RatingSource = Literal["distribution", "parsed"]
GBTMember = Literal["xgboost", "lightgbm", "catboost", "ridge", "kernel"]
Reduce = Literal["pca", "svd", "none"]
Ensemble = Literal["auto", "rank", "stack", "best"]
MindMemPooling = Literal["attention", "mean", "max"]
Loss = Literal["mse", "spearman", "pairwise", "mse+spearman", "mse+pairwise"]  # memo.losses
Projector = Literal["linear", "mlp"]
LLMPooling = Literal["mean", "attention"]
PaddingSide = Literal["left", "right"]


def setting(default: Any, meaning: str) -> Any:
    """A memo.toml key: its default (a callable makes a fresh list or table per config) and its one-line
    meaning, which `memo config` prints."""
    if callable(default):
        return field(default_factory=default, metadata={"help": meaning})
    return field(default=default, metadata={"help": meaning})


def meaning(f: Any) -> str:
    """The one-line meaning of a dataclass field declared with `setting`, else ""."""
    return f.metadata.get("help", "")


# ----------------------------------------------------------------------------- [features]


@dataclass
class FeaturesConfig:
    extractors: list[str] = setting(
        lambda: ["vit", "e5", "audio", "stats", "organiser"], "feature extractors `memo features` runs"
    )
    splits: list[str] = setting(list, "splits to compute features for; empty = every split of the dataset")
    frames: int = setting(8, "frames per video, uniformly spaced")
    frame_every: float = setting(0.0, "seconds between frames instead of a fixed count; 0 = use `frames`")
    max_frames: int = setting(32, "cap on frames for long videos (said in the log)")
    vit_pooling: VitPooling = setting("cls", "a frame's vector: the ViT's cls token, or its mean patch token")
    text_fields: list[str] = setting(
        lambda: ["title", "description", "tags", "transcript", "captions"],
        "text fields of the split table E5 embeds, one stream each",
    )
    # E5's card: "query: " when embeddings are used as features
    e5_prefix: E5Prefix = setting("query", "the prefix E5 reads before each text (none = no prefix)")
    e5_max_tokens: int = setting(0, "tokens per window for long texts; 0 = the model's own limit")
    # Mean scored +0.025 Spearman over joined with a ridge on Memento10k (docs/features.md).
    caption_pooling: CaptionPooling = setting(
        "mean",
        "several human captions per video: embed each and keep the normalised mean, or embed them joined",
    )
    audio_sample_rate: int = setting(16000, "sample rate (Hz) the sound track is resampled to")
    audio_window: float = setting(
        10.0, "seconds of sound per audio-encoder window; the windows make the (T, D) sequence"
    )
    max_audio_windows: int = setting(12, "cap on audio windows for long sound tracks (said in the log)")
    stats_fps: float = setting(4.0, "frames per second decoded (small, grey) for the video statistics")
    batch_size: int = setting(16, "videos or texts per model call")
    workers: int = setting(2, "decoding threads overlapped with encoding")


# ----------------------------------------------------------------------------- [rationale] and [aspects.NAME]


@dataclass
class AspectConfig:
    """A user-defined expert aspect: `[aspects.jingle] definition = "..." look_for = "..."`."""

    definition: str = setting("", "what the aspect is, as the rationale prompt defines it")
    look_for: str = setting("", "what in the ad is evidence for it")


@dataclass
class RationaleConfig:
    aspects: list[str] = setting(
        lambda: ["humor", "emotion", "brand", "narrative", "message"],
        "expert aspects a rationale is written for (built in, or an [aspects.NAME] table)",
    )
    model: str = setting("", "the rationale writer, a causal LM id or folder; empty = [models] llm")
    adapter: str = setting("", "a LoRA adapter folder from `memo rationale finetune`; empty = none")
    backend: RationaleBackend = setting("transformers", "the generation engine (vllm: a GPU and memo[vllm])")
    prompt: str = setting("default", "a template name under rationales/prompts/ or a file path")
    few_shot: int = setting(2, "exemplars per prompt, from the training fold only; 0 = zero-shot")
    # Off by default: a video of fold j may take exemplars from fold k, so its rationale carries fold-k
    # labels into the training side of the outer fold where k is held out (see memo.rationales.fewshot)
    exemplar_labels: bool = setting(
        False, "show each exemplar's measured memorability level (low/medium/high); it can leak labels"
    )
    # distribution: a value for every video, base models included (memo.rationales.rating); parsed:
    # missing when the model writes none, as base models such as gemma3-270m mostly do
    ratings: RatingSource = setting(
        "distribution",
        "the ratings stream: the expected 1-10 rating from the next-token distribution at a rating slot, "
        'or the parsed "Rating: N/10" line',
    )
    max_new_tokens: int = setting(96, "tokens generated per rationale at most")
    batch_size: int = setting(8, "prompts per generation call")
    temperature: float = setting(0.0, "sampling temperature; 0 = greedy (reproducible)")
    top_p: float = setting(1.0, "nucleus sampling, only when temperature > 0")
    transcript_chars: int = setting(
        1500, "longer transcripts are windowed: head and tail kept, middle marked [...]"
    )
    exemplar_chars: int = setting(400, "characters each text field of a few-shot exemplar is windowed to")
    frames: int = setting(0, "video frames shown to a multimodal Gemma-3; 0 = text only")
    tensor_parallel: int = setting(1, "GPUs per model with the vllm backend")
    finetune_keep: float = setting(
        0.25,
        "`memo rationale finetune` keeps log rationales whose rating rank is within this of the target rank",
    )
    lora_r: int = setting(16, "LoRA rank of `memo rationale finetune`'s adapter")
    learning_rate: float = setting(2e-4, "learning rate of `memo rationale finetune`")


# ----------------------------------------------------------------------------- [gbt] and [mindmem]


@dataclass
class GBTConfig:
    """The GBT ensemble (memo.baselines.gbt): feature streams, members, tuning budget, ensembling."""

    # Stream selectors (memo.streams): e5 = every e5.<field>, metadata = metadata.absolute and metadata.brand;
    # a stream these videos lack is skipped with a note. A run's own `streams` replace these for that run.
    # metadata.brand (counts relative to the video's own brand), not metadata: brand levels do not transfer to
    # new brands
    streams: list[str] = setting(
        lambda: [
            "metadata",
            "cues",
            "e5",
            "stats",
            "ratings",
            "organiser",
            "vit",
            "audio",
            "rationale",
        ],
        "feature streams the ensemble reads: names, or prefixes for every stream under them",
    )
    # ridge and kernel (RBF kernel ridge) have their penalty and kernel width chosen on the inner folds
    members: list[GBTMember] = setting(
        lambda: ["xgboost", "lightgbm", "catboost", "ridge", "kernel"],
        "models in the ensemble; ridge and kernel read the full (unreduced, standardised) blocks",
    )
    reduce: Reduce = setting("pca", "per-stream dimension reduction, fitted on the training fold only")
    components: int = setting(
        16, "components per stream after reduction; named streams (metadata, stats, ratings) stay whole"
    )
    n_trials: int = setting(20, "Optuna trials per member and target; 0 = fixed default hyperparameters")
    timeout: float = setting(300.0, "seconds of tuning per member and target (a budget; trials stop early)")
    inner_folds: int = setting(3, "grouped folds inside the training data, for tuning and ensembling")
    ensemble: Ensemble = setting(
        "auto", "how members combine; auto picks rank, stack or the best single member by inner CV"
    )
    threads: int = setting(1, "threads per library (n_jobs / thread_count); the CPU is often shared")
    fixed: dict[str, dict[str, Any]] = setting(
        dict, "member -> parameters pinned and never tuned, e.g. {xgboost = {n_estimators = 200}}"
    )


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
        modalities = {video = ["vit", "organiser.ViT"], audio = ["audio"], text = ["e5", "rationale"],
        metadata = ["metadata", "cues"]}
    """

    # `vit` frames and the organisers' ViT rows are both tokens of `video`
    modalities: dict[str, list[str]] = setting(
        lambda: {
            "video": ["vit", "organiser.ViT"],
            "audio": ["audio"],
            "text": ["e5", "rationale"],
            "metadata": ["metadata.absolute", "cues", "stats", "ratings"],
        },
        "modality -> the streams (names or prefixes) whose rows become its tokens",
    )
    use: list[str] = setting(lambda: ["video", "audio", "text"], "modalities this model reads; empty = all")
    width: int = setting(1024, "the shared space every stream is projected into")
    heads: int = setting(8, "attention heads")
    dropout: float = setting(0.1, "dropout in the attention layers")
    pooling: MindMemPooling = setting(
        "attention",
        "how a modality's tokens become one vector (attention: self-attention, then weighted pooling)",
    )
    cross_attention: bool = setting(True, "each modality's vector attends to the other modalities' vectors")
    modality_dropout: float = setting(
        0.1, "chance a whole modality is masked out of a training sample (trains the 'missing' embedding)"
    )
    loss: Loss = setting("mse+spearman", "the training loss (memo.losses, shared with [llm])")
    rank_weight: float = setting(0.5, "weight of the rank term in mse+<rank>")
    rank_temperature: float = setting(
        0.1, "softness of the soft ranks / pairwise logits (on batch-standardised scores)"
    )
    lr: float = setting(1e-4, "learning rate")
    weight_decay: float = setting(0.01, "weight decay")
    epochs: int = setting(60, "training epochs at most")
    batch_size: int = setting(32, "videos per training step")
    warmup: float = setting(0.1, "fraction of steps with a linear warm-up, then cosine decay to zero")
    grad_clip: float = setting(1.0, "max gradient norm; 0 = no clipping")
    valid_fraction: float = setting(
        0.15, "brands held out of the training data for early stopping; 0 (or under 30 videos) = none"
    )
    patience: int = setting(10, "epochs without a better validation Spearman before stopping")
    amp: bool = setting(True, "bfloat16 autocast on a CUDA GPU (ignored on CPU)")


# ----------------------------------------------------------------------------- [llm]: the Gemma-3 fusion
# model (see docs/llm_fusion.md)


@dataclass
class LLMConfig:
    backbone: str = setting(
        "", "the Gemma-3 id or folder (gemma-3-4b-it, -1b-it, -270m-it, tiny:gemma3); empty = [models] llm"
    )
    # selectors (memo.streams): vit, e5, e5.title, rationale (or rationales), metadata.absolute, metadata,
    # cues, audio, organiser, stats, ratings
    streams: list[str] = setting(
        lambda: ["vit", "e5", "rationale", "metadata.absolute"], "feature streams that become soft tokens"
    )
    projector: Projector = setting(
        "linear", "a stream's map to its soft tokens: linear (DSGT) or 2-layer mlp"
    )
    projector_hidden: int = setting(256, "width of the mlp projector's hidden layer")
    tokens_per_stream: int = setting(1, "soft tokens each stream becomes")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA alpha (the update is scaled by alpha / r)")
    lora_dropout: float = setting(0.05, "dropout on the LoRA layers")
    target_modules: list[str] = setting(
        lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        "layers LoRA adapts; add gate_proj, up_proj, down_proj for the MLPs too",
    )
    pooling: LLMPooling = setting(
        "mean", "how the hidden states become one vector: mean over real tokens, or a learned query"
    )
    head_hidden: int = setting(256, "width of the MLP head")
    dropout: float = setting(0.1, "dropout in the head")
    loss: Loss = setting("mse", "the training loss (memo.losses, shared with [mindmem])")
    rank_weight: float = setting(1.0, "weight of the rank term when it comes with mse")
    rank_temperature: float = setting(0.1, "softness of the rank term, on batch-standardised logits")
    prompt_fields: list[str] = setting(
        lambda: ["title", "description", "transcript", "captions"],
        "text fields of the split table in the prompt (rationale.<aspect> columns are added when present)",
    )
    words_per_field: int = setting(60, "words each prompt field is cut to")
    lr: float = setting(2e-4, "learning rate")
    weight_decay: float = setting(0.0, "weight decay")
    warmup_ratio: float = setting(0.05, "fraction of steps with a linear warm-up")
    epochs: int = setting(3, "training epochs")
    max_steps: int = setting(-1, "> 0 overrides epochs (quick checks, benchmarks)")
    batch_size: int = setting(8, "training examples per step (per device)")
    eval_batch_size: int = setting(16, "examples per prediction step")
    grad_accum: int = setting(1, "gradient accumulation steps")
    max_length: int = setting(512, "prompt tokens at most; only the texts are cut to fit")
    padding_side: PaddingSide = setting(
        "left", "the side prompts are padded on; the score does not depend on it"
    )
    val_folds: int = setting(
        5, "1/val_folds of the brands are held out for per-epoch evaluation; 0 = no validation"
    )
    early_stopping_patience: int = setting(
        2, "epochs without a better validation Spearman before stopping; 0 = never"
    )
    bf16: bool = setting(True, "train and predict in bfloat16 where [models] precision allows it")
    gradient_checkpointing: bool = setting(True, "recompute activations to save memory (on GPU only)")
    attn_implementation: str = setting(
        "", "transformers' attention kernel (eager, sdpa, flash_attention_2, ...); empty = its default"
    )


# ----------------------------------------------------------------------------- [submission] and [runs.N]
#     [submission]
#     filename = "me25mem-{team}-subtask2-run{run}.csv"   # {team} and {run} are filled in
#
#     [runs.3]
#     predictor = "blend"
#     blend = ["1", "2"]          # weights = [] -> rank average; weights = [0.7, 0.3] -> weighted mean;
#                                 # choose = true -> per target, the rank average or one run, on grouped CV


@dataclass
class SubmissionConfig:
    out: str = setting("run_files", "folder for run files; relative to memo.toml's folder")
    filename: str = setting(
        "me25mem-{team}-subtask2-run{run}.csv", "run file name; {team} and {run} are filled in"
    )
    zip_name: str = setting("me25mem-{team}-subtask2.zip", "`memo submit --zip`'s file; {team} is filled in")
    id_column: str = setting("", "the id column's name in run files; empty = the dataset's own id column")
    columns: list[str] = setting(
        list, "score column names, one per target in order; empty = the target names"
    )
    separator: str = setting(",", "the run file's field separator")
    precision: int = setting(6, "decimal places of each score")
    header: bool = setting(True, "write a header row")
    skip_bad_files: bool = setting(
        False, "submit although `memo data check` finds bad feature or video files (those videos lack them)"
    )


@dataclass
class RunConfig:
    predictor: str = setting("gbt", "what the run trains: gbt, ridge, mindmem, llm, search, blend, ...")
    streams: list[str] = setting(list, "stream selectors the predictor reads; empty = its own defaults")
    aspects: list[str] = setting(list, "rationale aspects the run reads")
    blend: list[str] = setting(list, 'runs to blend when predictor = "blend"')
    weights: list[float] = setting(list, "blend weights; empty = rank averaging")
    choose: bool = setting(
        False, "blend: per target, the rank average or one run alone, whichever scores best on grouped CV"
    )
    repeats: int = setting(0, "CV repeats of this run; 0 = [evaluate] repeats (an LLM run may take 1)")
    candidates: list[dict[str, Any]] = setting(
        list,
        'predictor = "search": what it chooses among on inner folds, each {predictor, streams, params, name}',
    )
    params: dict[str, Any] = setting(dict, "overrides of the predictor's section, e.g. {n_trials = 0}")
    targets: list[str] = setting(list, "targets the run predicts; empty = [project] targets")
    description: str = setting("", "a note on the run, kept in its manifest")


# ----------------------------------------------------------------------------- project-wide sections


@dataclass
class ProjectConfig:
    data: str = setting("", "the dataset folder (organiser layout); relative to memo.toml's folder")
    layout: str = setting(
        "", "the dataset's layout (videm, mediaeval2021, csv); empty = detect from the folder"
    )
    team: str = setting("myteam", "team name, used in run file names")
    targets: list[str] = setting(list, "targets to predict; empty = every target the dataset has")
    workdir: str = setting(".memo", "feature store, logs, trained models, studies; relative to memo.toml")
    seed: int = setting(0, "random seed of folds, models and sampling")
    # "HSBC UK" and "HSBC" are one group by memo.groups' rule already
    groups: dict[str, str] = setting(
        dict, "channel name -> parent brand, over memo.groups' rule; `memo data check` lists every merge"
    )


@dataclass
class ModelsConfig:
    """Hugging Face ids or local folders, one per role; `memo init --offline` picks local ones."""

    vit: str = setting("google/vit-base-patch16-224-in21k", "the frame encoder (vit features)")
    e5: str = setting("intfloat/e5-large-v2", "the text encoder (e5 and rationale features)")
    audio: str = setting("MIT/ast-finetuned-audioset-10-10-0.4593", "the sound encoder (audio features)")
    llm: str = setting("google/gemma-3-4b-it", "the rationale writer and fusion backbone")
    device: Device = setting("auto", "where models run; auto = a CUDA GPU if present, else mps, else cpu")
    precision: Precision = setting(
        "auto",
        "number format of the LLM's training, prediction, rationales and ratings; auto = bf16 on a GPU or "
        "on a CPU with native bf16 (AVX512-BF16/AMX), else fp32",
    )


@dataclass
class EvaluateConfig:
    folds: int = setting(5, "brand-grouped cross-validation folds")
    # one split of 25 brands moves by about 0.15; `memo init` sets 5 on small data (under 2,000 videos)
    repeats: int = setting(
        1, "K-fold splits with seeds seed, seed+1, ...; their mean is the score to expect on unseen brands"
    )
    bootstrap: int = setting(1000, "brand-bootstrap resamples for the 95% intervals")
    baselines: list[str] = setting(
        lambda: ["duration", "metadata_gbt", "text_ridge"],
        "simple predictors scored beside yours on the same folds",
    )


@dataclass
class Config:
    """memo.toml: one field per section; `runs` and `aspects` hold one table per name."""

    project: ProjectConfig = setting(ProjectConfig, "the dataset, team, targets and work folder")
    models: ModelsConfig = setting(ModelsConfig, "models per role (ids or local folders) and the device")
    features: FeaturesConfig = setting(
        FeaturesConfig, "which feature extractors `memo features` runs, and how"
    )
    rationale: RationaleConfig = setting(RationaleConfig, "the LLM rationale writer (`memo rationale`)")
    gbt: GBTConfig = setting(GBTConfig, "the GBT ensemble predictor (memo.baselines.gbt)")
    mindmem: MindMemConfig = setting(MindMemConfig, "the MindMem attention-fusion predictor")
    llm: LLMConfig = setting(LLMConfig, "the Gemma-3 fusion predictor (docs/llm_fusion.md)")
    evaluate: EvaluateConfig = setting(EvaluateConfig, "brand-grouped cross-validation (`memo evaluate`)")
    submission: SubmissionConfig = setting(SubmissionConfig, "run files: folder, names and CSV format")
    runs: dict[str, RunConfig] = setting(dict, "one [runs.N] table per run `memo submit --run N` writes")
    aspects: dict[str, AspectConfig] = setting(dict, "user-defined expert aspects, one [aspects.NAME] each")
    path: Path | None = None  # where it was read from; not a TOML key

    @property
    def root(self) -> Path:
        """The folder relative paths in the config are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.root / q)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d
