"""[llm] section of memo.toml: the Gemma-3 fusion model."""

from dataclasses import dataclass, field


@dataclass
class LLMConfig:
    backbone: str = ""  # empty = [models] llm
    streams: list[str] = field(default_factory=lambda: ["vit", "e5", "rationales", "metadata"])
    projector: str = "linear"  # linear (DSGT) | mlp
    tokens_per_stream: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    pooling: str = "mean"  # mean | attention
    loss: str = "mse"  # mse | rank | mse+rank
    lr: float = 2e-4
    epochs: int = 3
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    bf16: bool = True  # on GPU only
    gradient_checkpointing: bool = True  # on GPU only
