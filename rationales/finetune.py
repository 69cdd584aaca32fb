"""`memo rationale finetune`: supervised fine-tuning of the rationale writer (TRL SFTTrainer + a PEFT LoRA
adapter).

    path = finetune_writer(project)                              # rationales filtered from the log
    path = finetune_writer(project, data_file="curated.jsonl")   # rationales a person curated
    run_rationales(project, adapter=str(path))                   # `memo rationale --adapter PATH`

Training data, one (prompt, completion) pair per rationale, in chat form:
- curated: a JSONL file, one object per line: {"video": ID, "aspect": NAME, "text": RATIONALE}
  ("id" is accepted for "video"). The prompt is the zero-shot prompt memo would write for that
  video and aspect with the current template, so the adapter learns exactly the task it serves.
- from the log (no file): the rationales of the labelled split whose rating ranks the video
  where its target ranks: |percentile(rating) - percentile(target)| <= [rationale] finetune_keep,
  per aspect, among the videos with a parsed rating. The prompt is the logged prompt (frames
  dropped), the completion the logged text. Note: that filter reads every labelled video's
  target, so rationales written afterwards by the adapter carry label knowledge; cross-validated
  scores of predictors that read them are optimistic. Curate from a training fold for honest CV.

Only the adapter (a few MB) is saved, with the tokenizer and a memo_writer.json saying what it
was trained on; it is written to a temporary folder and moved into place when complete.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memo.errors import ConfigError, MemoError

if TYPE_CHECKING:
    from memo.project import Project


def _text_only(messages: list[dict]) -> list[dict]:
    """Logged prompts may hold frame placeholders; SFT here is text only."""
    out = []
    for m in messages:
        c = m["content"]
        if isinstance(c, list):
            c = "\n".join(p.get("text", "") for p in c if p.get("type") == "text")
        out.append({"role": m["role"], "content": c})
    return out


def curated_examples(project: Project, data_file: str | Path) -> list[dict[str, Any]]:
    """(prompt, completion) pairs from a curated JSONL of {video, aspect, text}."""
    from memo.rationales.aspects import get_aspect
    from memo.rationales.jobs import prompt_ad
    from memo.rationales.prompts import load_template

    p = Path(data_file)
    if not p.is_file():
        raise ConfigError(
            f'--from {p} does not exist; give a JSONL file with one {{"video", "aspect", "text"}} per line.'
        )
    ds = project.dataset
    template = load_template(project.config.rationale.prompt)
    tables = [s.table for s in ds.splits.values()]
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            vid, aspect, text = str(item.get("video", item.get("id"))), item["aspect"], item["text"]
        except (json.JSONDecodeError, KeyError, AttributeError) as e:
            raise ConfigError(
                f"{p} line {n} is not a JSON object with video, aspect and text ({e}); fix that line."
            ) from e
        row = next((t.loc[vid] for t in tables if vid in t.index), None)
        if row is None:
            raise ConfigError(
                f"{p} line {n}: video {vid!r} is not in the dataset; fix the id or remove the line."
            )
        msgs = template.messages(get_aspect(aspect, project.config), prompt_ad(row, project.config.rationale))
        out.append(
            {
                "prompt": msgs,
                "completion": [{"role": "assistant", "content": str(text).strip()}],
                "video": vid,
                "aspect": aspect,
            }
        )
    return out


def select_from_log(rows: list, targets: dict[str, float], keep: float) -> list:
    """Log rows whose rating ranks their video about where its target does (per aspect; see the module
    docstring)."""
    from scipy.stats import rankdata

    by_aspect: dict[str, list] = {}
    for r in rows:
        if r.rating is not None and r.video in targets and not np.isnan(targets[r.video]):
            by_aspect.setdefault(r.aspect, []).append(r)
    picked = []
    for _aspect, rs in sorted(by_aspect.items()):
        if len(rs) < 3:
            continue
        pr = (rankdata([r.rating for r in rs]) - 1) / (len(rs) - 1)  # (n,) percentiles in [0, 1]
        pt = (rankdata([targets[r.video] for r in rs]) - 1) / (len(rs) - 1)
        picked += [r for r, a, b in zip(rs, pr, pt) if abs(a - b) <= keep]
    return picked


def log_examples(project: Project) -> list[dict[str, Any]]:
    """(prompt, completion) pairs from the log: the final rationales of the labelled split, filtered by
    ranking."""
    from memo.rationales.generate import log_path
    from memo.rationales.jobs import FEW, ZERO
    from memo.rationales.log import GenerationLog

    cfg = project.config.rationale
    p = log_path(project)
    if not p.is_file():
        raise MemoError(
            f"no rationale log at {p}; run `memo rationale` first, or pass --from with curated rationales."
        )
    lab = project.dataset.labelled()
    target = project.targets[0]
    targets = {str(i): float(v) for i, v in lab.table[target].items()}
    model = cfg.model or project.config.models.llm
    with GenerationLog(p) as log:
        rows = [
            r
            for r in log.rows(stage=FEW if cfg.few_shot else ZERO)
            if r.model == model and not r.adapter and r.video in targets
        ]
    latest = {}
    for r in rows:
        latest[(r.video, r.aspect)] = r
    picked = select_from_log(list(latest.values()), targets, cfg.finetune_keep)
    if not picked:
        raise MemoError(
            f"no rationale in the log has a rating that ranks its video near its {target} (of "
            f"{len(latest)} with model {model}); "
            "run `memo rationale` with a model that writes ratings, raise [rationale] finetune_keep, "
            "or pass --from."
        )
    return [
        {
            "prompt": _text_only(r.prompt),
            "completion": [{"role": "assistant", "content": r.response}],
            "video": r.video,
            "aspect": r.aspect,
        }
        for r in picked
    ]


def finetune_writer(
    project: Project,
    data_file: str | Path | None = None,
    out: str | Path | None = None,
    epochs: float = 1.0,
    device: str = "auto",
    max_steps: int = -1,
    batch_size: int = 4,
) -> Path:
    """Train a LoRA adapter for the rationale writer with TRL's SFTTrainer; returns the adapter folder."""
    from datasets import Dataset
    from trl import SFTTrainer

    from memo.models import pick_device, resolve_model

    cfg = project.config.rationale
    examples = curated_examples(project, data_file) if data_file else log_examples(project)
    model_name = cfg.model or project.config.models.llm
    path = resolve_model(model_name)
    dev = pick_device(device if device != "auto" else (project.config.models.device or "auto"))
    out = Path(out) if out else project.workdir / "adapters" / "writer"
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model, tokenizer = _load_base(path, model_name, dev)
    data = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    args, lora = _trainer_settings(cfg, tmp / "trainer", epochs, max_steps, batch_size, dev, project.seed)
    t0 = time.perf_counter()
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora
    )
    result = trainer.train()
    trainer.model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    from memo.store import atomic_write_json

    atomic_write_json(
        tmp / "memo_writer.json",
        {
            "base_model": model_name,
            "source": str(data_file) if data_file else "log (ranking filter)",
            "examples": len(examples),
            "aspects": sorted({e["aspect"] for e in examples}),
            "epochs": epochs,
            "max_steps": max_steps,
            "train_loss": float(result.training_loss),
            "seconds": round(time.perf_counter() - t0, 1),
            "lora_r": cfg.lora_r,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _load_base(path: Path, model_name: str, dev: str):
    """The writer's base model (bfloat16 on a GPU) and its tokenizer, for training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memo.models import load_error

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.bfloat16 if dev.startswith("cuda") else torch.float32
        )
    except (OSError, ValueError) as e:
        raise load_error(model_name, e) from e
    return model, tokenizer


def _trainer_settings(
    cfg, output_dir: Path, epochs: float, max_steps: int, batch_size: int, dev: str, seed: int
):
    """SFTConfig (the loss on the completion only) and the LoRA of every linear layer, from [rationale]
    learning_rate and lora_r."""
    from peft import LoraConfig
    from trl import SFTConfig

    args = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=cfg.learning_rate,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        seed=seed,
        use_cpu=dev == "cpu",
        bf16=dev.startswith("cuda"),
        max_length=2048,
        completion_only_loss=True,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=2 * cfg.lora_r,
        lora_dropout=0.05,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return args, lora
