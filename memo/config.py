"""memo.toml: the project config, read into typed dataclasses.

Every command reads `memo.toml` from the working folder (or `--config`); command-line options
override it. Unknown keys and wrong types are errors that name the key:

    ConfigError: memo.toml: [gbt] n_trails is not a known key; known keys: n_trials, timeout, ...

This module is the one home of memo.toml's schema: every section's dataclass (each stage's first,
then the project-wide ones), the root `Config`, and the machinery that turns TOML into dataclasses
and back. Stages import their section from here (`from memo.config import GBTConfig`), so the core
never imports a stage.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memo.errors import ConfigError

CONFIG_NAME = "memo.toml"


# ----------------------------------------------------------------------------- [features] section of
# memo.toml: which extractors run and how


@dataclass
class FeaturesConfig:
    extractors: list[str] = field(default_factory=lambda: ["vit", "e5", "audio", "stats", "organiser"])
    splits: list[str] = field(default_factory=list)  # empty = every split of the dataset
    frames: int = 8  # frames per video, uniformly spaced
    frame_every: float = 0.0  # seconds between frames instead of a fixed count; 0 = use `frames`
    max_frames: int = 32  # cap for long videos (said in the log)
    vit_pooling: str = "cls"  # cls | mean (mean patch token)
    text_fields: list[str] = field(
        default_factory=lambda: ["title", "description", "tags", "transcript", "captions"]
    )
    # query | passage | none; E5's card: "query: " when embeddings are used as features
    e5_prefix: str = "query"
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


# ----------------------------------------------------------------------------- [rationale] and [aspects.NAME]
# sections of memo.toml


@dataclass
class AspectConfig:
    """A user-defined expert aspect: `[aspects.jingle] definition = "..." look_for = "..."`."""

    definition: str = ""
    look_for: str = ""


@dataclass
class RationaleConfig:
    aspects: list[str] = field(default_factory=lambda: ["humor", "emotion", "brand", "narrative", "message"])
    model: str = ""  # empty = [models] llm
    adapter: str = ""  # a LoRA adapter folder from `memo rationale finetune`
    backend: str = "transformers"  # transformers | vllm
    prompt: str = "default"  # a template name under rationales/prompts/ or a file path
    few_shot: int = 2  # exemplars per prompt, from the training fold only; 0 = zero-shot
    # show each exemplar's measured memorability level (low/medium/high). Off by default: a video of
    # fold j may take exemplars from fold k, so its rationale carries fold-k labels into the training
    # side of the outer fold where k is held out (see memo.rationales.fewshot)
    exemplar_labels: bool = False
    # where the `ratings` stream comes from: "distribution" = the expected 1-10 rating read from the
    # model's next-token distribution at a rating slot (memo.rationales.rating; a value for every
    # video, base models included), "parsed" = the "Rating: N/10" line of the generated rationale
    # (missing when the model writes none, as base models such as gemma3-270m mostly do)
    ratings: str = "distribution"
    max_new_tokens: int = 96
    batch_size: int = 8
    temperature: float = 0.0  # 0 = greedy (reproducible)
    top_p: float = 1.0  # nucleus sampling, only when temperature > 0
    transcript_chars: int = 1500  # longer transcripts are windowed: head and tail kept, middle marked [...]
    exemplar_chars: int = 400  # each text field of a few-shot exemplar is windowed to this
    frames: int = 0  # video frames shown to a multimodal Gemma-3 (0 = text only)
    tensor_parallel: int = 1  # GPUs per model with the vllm backend
    # `memo rationale finetune` (TRL SFTTrainer + LoRA)
    finetune_keep: float = 0.25  # keep log rationales whose rating rank is within this of the target rank
    lora_r: int = 16
    learning_rate: float = 2e-4


# ----------------------------------------------------------------------------- [gbt] and [mindmem] sections
# of memo.toml


@dataclass
class GBTConfig:
    """The GBT ensemble (memo.baselines.gbt): feature streams, members, tuning budget, ensembling."""

    # stream selectors (memo.streams: a name, or a prefix for every stream under it: e5 = every e5.<field>,
    # metadata = metadata.absolute and metadata.brand); a stream these videos lack is skipped with a note.
    # A run's own `streams` replace these for that run.
    # metadata.brand (counts relative to the video's own brand), not metadata: brand levels do not transfer to
    # new brands
    streams: list[str] = field(
        default_factory=lambda: [
            "metadata",
            "cues",
            "e5",
            "stats",
            "ratings",
            "organiser",
            "vit",
            "audio",
            "rationale",
        ]
    )
    # ridge and kernel (RBF kernel ridge): members on the full (unreduced, standardised) blocks, their
    # penalty and kernel width chosen on the inner folds
    members: list[str] = field(default_factory=lambda: ["xgboost", "lightgbm", "catboost", "ridge", "kernel"])
    reduce: str = "pca"  # pca | svd | none, per stream, fitted on the training fold only
    # per stream after reduction; named streams (metadata, stats, ratings) are kept whole
    components: int = 16
    n_trials: int = 20  # optuna trials per member and target; 0 = fixed default hyperparameters
    timeout: float = 300.0  # seconds of tuning per member and target (a budget; trials stop early)
    inner_folds: int = 3  # grouped folds inside the training data, for tuning and ensembling
    # auto (rank, stack or the best single member, chosen by inner CV) | rank | stack | best
    ensemble: str = "auto"
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
        modalities = {video = ["vit", "organiser.ViT"], audio = ["audio"], text = ["e5", "rationale"],
        metadata = ["metadata", "cues"]}
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
    # modalities this model reads; empty = all
    use: list[str] = field(default_factory=lambda: ["video", "audio", "text"])
    width: int = 1024  # the shared space every stream is projected into
    heads: int = 8
    dropout: float = 0.1
    pooling: str = "attention"  # attention (self-attention, then attention-weighted pooling) | mean | max
    cross_attention: bool = True  # each modality's vector attends to the other modalities' vectors
    # chance a whole modality is masked out of a training sample (trains the 'missing' embedding)
    modality_dropout: float = 0.1
    loss: str = "mse+spearman"  # mse | spearman | pairwise | mse+spearman | mse+pairwise
    rank_weight: float = 0.5  # weight of the rank term in mse+<rank>
    # softness of the soft ranks / pairwise logits (on batch-standardised scores)
    rank_temperature: float = 0.1
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 60
    batch_size: int = 32
    warmup: float = 0.1  # fraction of steps with a linear warm-up, then cosine decay to zero
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping
    # brands held out of the training data for early stopping; 0 (or under 30 videos) = none
    valid_fraction: float = 0.15
    patience: int = 10  # epochs without a better validation Spearman
    amp: bool = True  # bfloat16 autocast on a CUDA GPU (ignored on CPU)


# ----------------------------------------------------------------------------- [llm] section of memo.toml:
# the Gemma-3 fusion model (see docs/llm_fusion.md)


@dataclass
class LLMConfig:
    # empty = [models] llm; any Gemma-3 id or folder (google/gemma-3-4b-it, -1b-it, -270m-it, tiny:gemma3)
    backbone: str = ""
    # Feature streams that become soft tokens, as selectors (memo.streams): vit, e5, e5.title,
    # rationale (or rationales), metadata.absolute, metadata, cues, audio, organiser, stats, ratings.
    streams: list[str] = field(default_factory=lambda: ["vit", "e5", "rationale", "metadata.absolute"])
    projector: str = "linear"  # linear (DSGT) | mlp (2 layers)
    projector_hidden: int = 256  # width of the mlp projector's hidden layer
    tokens_per_stream: int = 1  # soft tokens each stream becomes
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    # LoRA on the attention projections; add gate_proj, up_proj, down_proj for the MLPs too.
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    pooling: str = "mean"  # mean (over real tokens) | attention (learned query)
    head_hidden: int = 256  # width of the MLP head
    dropout: float = 0.1  # in the head
    # mse | spearman | pairwise | mse+spearman | mse+pairwise (memo.losses, shared with MindMem)
    loss: str = "mse"
    rank_weight: float = 1.0  # weight of the rank term when it comes with mse
    rank_temperature: float = 0.1  # softness of the rank term, on batch-standardised logits
    # Prompt: text fields read from the split table, each cut to words_per_field words; rationales
    # are added when the table has `rationale.<aspect>` text columns.
    prompt_fields: list[str] = field(
        default_factory=lambda: ["title", "description", "transcript", "captions"]
    )
    words_per_field: int = 60
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    epochs: int = 3
    max_steps: int = -1  # > 0 overrides epochs (quick checks, benchmarks)
    batch_size: int = 8
    eval_batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 512
    padding_side: str = "left"  # left | right; the score does not depend on it
    val_folds: int = 5  # 1/val_folds of the brands are held out for per-epoch evaluation; 0 = no validation
    early_stopping_patience: int = 2  # epochs without a better validation Spearman before stopping; 0 = never
    bf16: bool = True  # on GPU only
    gradient_checkpointing: bool = True  # on GPU only
    attn_implementation: str = ""  # empty = transformers' default (sdpa); eager | sdpa | flash_attention_2


# ----------------------------------------------------------------------------- [submission] and [runs.N]
# sections of memo.toml
#     [submission]
#     filename = "me25mem-{team}-subtask2-run{run}.csv"   # {team} and {run} are filled in
#     separator = ","
#     precision = 6
#
#     [runs.1]
#     predictor = "gbt"
#     streams = ["metadata", "cues", "e5", "stats"]
#
#     [runs.3]
#     predictor = "blend"
#     blend = ["1", "2"]          # weights = [] -> rank average; weights = [0.7, 0.3] -> weighted mean;
# # choose = true -> per target, the rank average or one run, picked on grouped CV


@dataclass
class SubmissionConfig:
    out: str = "run_files"
    filename: str = "me25mem-{team}-subtask2-run{run}.csv"
    zip_name: str = "me25mem-{team}-subtask2.zip"  # `memo submit --zip`; {team} is filled in
    id_column: str = ""  # empty = the dataset's own id column
    # names of the score columns, one per target in order; empty = the target names
    columns: list[str] = field(default_factory=list)
    separator: str = ","
    precision: int = 6
    header: bool = True
    # submit although `memo data check` finds bad feature or video files (those videos lack them)
    skip_bad_files: bool = False


@dataclass
class RunConfig:
    predictor: str = "gbt"  # gbt | ridge | mindmem | llm | search | blend
    # stream selectors (memo.streams) the predictor reads; empty = its own defaults
    streams: list[str] = field(default_factory=list)
    aspects: list[str] = field(default_factory=list)  # rationale aspects the run reads
    blend: list[str] = field(default_factory=list)  # runs to blend when predictor = "blend"
    weights: list[float] = field(default_factory=list)  # blend weights; empty = rank averaging
    # blend: per target, the rank average or one run alone, whichever scores best on grouped CV (nested)
    choose: bool = False
    # CV repeats of this run; 0 = [evaluate] repeats (an LLM run may take 1: each fit is long)
    repeats: int = 0
    # predictor = "search": what it chooses among on inner grouped folds, each {predictor, streams, params,
    # name}
    candidates: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the predictor's section
    targets: list[str] = field(default_factory=list)  # empty = [project] targets
    description: str = ""


# ----------------------------------------------------------------------------- project-wide sections and the
# root


@dataclass
class ProjectConfig:
    data: str = ""  # the dataset folder (organiser layout); relative to memo.toml's folder
    layout: str = ""  # videm | mediaeval2021 | csv; empty = detect from the folder
    team: str = "myteam"
    targets: list[str] = field(default_factory=list)  # empty = every target the dataset has
    workdir: str = ".memo"  # feature store, logs, trained models, studies
    seed: int = 0
    # channel name -> parent brand, over memo.groups' rule ("HSBC UK" and "HSBC" are one group by the rule);
    # `memo data check` lists every merge
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelsConfig:
    """Hugging Face ids or local folders, one per role; `memo init --offline` picks local ones."""

    vit: str = "google/vit-base-patch16-224-in21k"
    e5: str = "intfloat/e5-large-v2"
    audio: str = "MIT/ast-finetuned-audioset-10-10-0.4593"
    llm: str = "google/gemma-3-4b-it"  # rationale writer and fusion backbone
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps


@dataclass
class EvaluateConfig:
    folds: int = 5
    # K-fold splits with seeds seed, seed+1, ...; the mean over repeats is the expected score on unseen
    # brands (one split of 25 brands moves by about 0.15). `memo init` sets 5 on small data (under 2,000
    # videos).
    repeats: int = 1
    bootstrap: int = 1000
    baselines: list[str] = field(default_factory=lambda: ["duration", "metadata_gbt", "text_ridge"])


@dataclass
class Config:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    rationale: RationaleConfig = field(default_factory=RationaleConfig)
    gbt: GBTConfig = field(default_factory=GBTConfig)
    mindmem: MindMemConfig = field(default_factory=MindMemConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    runs: dict[str, RunConfig] = field(default_factory=dict)
    aspects: dict[str, AspectConfig] = field(default_factory=dict)
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


# ----------------------------------------------------------------------------- TOML -> dataclasses


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting only the lossless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table ([{where}]), not {value!r}.")
        return from_dict(tp, value, where)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and item is str:  # "a,b" is accepted where a list of names is expected
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {value!r}.")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_t, val_t = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {value!r}.")
        return {str(k): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, not {value!r}.")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where} must be a whole number, not {value!r}.")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where} must be a {_type_name(tp)}, not {value!r}.")
    return value


RENAMED = {"blocks": "streams", "features": "streams"}  # old key -> new key, for a helpful error


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a TOML table; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            section = f"[{where}] " if where else ""
            if key in RENAMED and RENAMED[key] in fields:
                raise ConfigError(
                    f"memo.toml: {section}{key} is now called {RENAMED[key]} (one name for feature "
                    "streams everywhere); rename the key."
                )
            raise ConfigError(
                f"memo.toml: {section}{key} is not a known key; known keys: {', '.join(fields)}."
            )
        kwargs[key] = _coerce(value, hints[key], name)
    return cls(**kwargs)


def load_config(path: str | Path | None = None, required: bool = False) -> Config:
    """Read memo.toml (default: the working folder's); with none there, the defaults."""
    p = Path(path) if path else Path.cwd() / CONFIG_NAME
    if not p.is_file():
        if required or path:
            raise ConfigError(f"no config at {p}; run `memo init --data PATH` first, or pass --config.")
        return Config()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML ({e}); fix the line it names.") from e
    cfg = from_dict(Config, data)
    cfg.path = p.resolve()
    return cfg


def set_option(cfg: Config, dotted: str, value: Any) -> None:
    """Override one key from the command line, type-checked like the file: set_option(cfg, "gbt.n_trials",
    20).

    Every step of the dotted name must exist (a section, a defined run or aspect, a key), else one
    ConfigError says which part is unknown and what is there.
    """
    parts = dotted.split(".")
    obj: Any = cfg
    tp: Any = Config
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if dataclasses.is_dataclass(obj):
            hints = typing.get_type_hints(type(obj))
            known = [f.name for f in dataclasses.fields(obj) if f.name != "path"]
            if part not in known:
                where = f"[{'.'.join(parts[:depth])}] " if depth else ""
                raise ConfigError(
                    f"--set {dotted}: {where}{part or '(empty)'} is not a known key; known keys: "
                    f"{', '.join(known)}."
                )
            if last:
                setattr(obj, part, _coerce(value, hints[part], dotted))
                return
            obj, tp = getattr(obj, part), hints[part]
        elif isinstance(obj, dict):
            val_t = (typing.get_args(tp) or (str, Any))[1]
            if dataclasses.is_dataclass(val_t):  # runs, aspects: an entry must be defined in memo.toml first
                if part not in obj:
                    defined = f"defined: {', '.join(obj)}" if obj else "none is defined"
                    raise ConfigError(
                        f"--set {dotted}: {here} is not in memo.toml ({defined}); add a [{here}] table "
                        "to memo.toml first."
                    )
                if last:
                    raise ConfigError(
                        f"--set {dotted}: {here} is a table; set one of its keys, e.g. --set "
                        f"{here}.{dataclasses.fields(val_t)[0].name}=..."
                    )
                obj, tp = obj[part], val_t
            elif last:  # a free-form table (a run's params): any key, any TOML value
                obj[part] = value
                return
            else:
                raise ConfigError(
                    f"--set {dotted}: {'.'.join(parts[:depth])} is a table of plain values; {here} "
                    "cannot hold keys."
                )
        else:
            raise ConfigError(
                f"--set {dotted}: {'.'.join(parts[:depth])} is a single value, not a table; drop what "
                "follows it."
            )
