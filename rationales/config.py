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
    # show each exemplar's measured memorability level (low/medium/high). Off by default: a video of
    # fold j may take exemplars from fold k, so its rationale carries fold-k labels into the training
    # side of the outer fold where k is held out (see memo.rationales.fewshot)
    exemplar_labels: bool = False
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
