"""[rationale] and [aspects.NAME] sections of memo.toml."""

from dataclasses import dataclass, field


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
    max_new_tokens: int = 96
    batch_size: int = 8
    temperature: float = 0.0  # 0 = greedy (reproducible)
