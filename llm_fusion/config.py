"""[llm] section of memo.toml: the Gemma-3 fusion model (see docs/llm_fusion.md)."""

from dataclasses import dataclass, field


@dataclass
class LLMConfig:
    backbone: str = ""  # empty = [models] llm; any Gemma-3 id or folder (google/gemma-3-4b-it, -1b-it, -270m-it, tiny:gemma3)
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
    loss: str = "mse"  # mse | spearman | pairwise | mse+spearman | mse+pairwise (memo.losses, shared with MindMem)
    rank_weight: float = 1.0  # weight of the rank term when it comes with mse
    rank_temperature: float = 0.1  # softness of the rank term, on batch-standardised logits
    # Prompt: text fields read from the split table, each cut to words_per_field words; rationales
    # are added when the table has `rationale.<aspect>` text columns.
    prompt_fields: list[str] = field(default_factory=lambda: ["title", "description", "transcript", "captions"])
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
