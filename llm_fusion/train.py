"""Training the fusion model: a subclass of `transformers.Trainer` (the trainer TRL's own trainers are built
on).

What transformers gives here, unchanged: the training loop, AdamW and the LR schedule, gradient accumulation,
bf16 autocast, gradient checkpointing (`activation_checkpointing`, `gradient_checkpointing` before 5.x renamed
it), accelerate (`accelerate launch` for several GPUs, DeepSpeed, FSDP), per-epoch evaluation, checkpoint
rotation, `load_best_model_at_end` + `EarlyStoppingCallback`, logging (`report_to`), seeding, resuming.

Why not a TRL trainer (docs/llm_fusion.md, "Training"): TRL 1.x's public trainers each expect a
language model and its dataset format (SFTTrainer: a `datasets.Dataset` of text or messages and
a PreTrainedModel, token cross-entropy; RewardTrainer: chosen/rejected pairs for a sequence
classifier; DPO/KTO/GRPO/RLOO: preference or generation data). A regression head over text plus
soft tokens is none of these, and TRL's common base `trl.trainer.base_trainer._BaseTrainer` is
private (no stability promise) and adds only a model card and a telemetry ping to `Trainer`.

What this file adds:
- `compute_loss`: memo.losses.regression_loss (MSE on sigmoid scores scaled by the training
  variance, a rank term on batch-standardised logits, or both; NaN targets masked), the one
  MindMem trains with;
- `prediction_step`: returns (loss, scores, labels) so `compute_metrics` gets Spearman;
- `_save` / `_load_best_model` / `_load_from_checkpoint`: only trained parts go to disk (LoRA,
  projectors, head). Trainer's default would write the whole frozen backbone, and safetensors
  refuses Gemma's tied embedding/lm_head tensors.

transformers is imported at the top: memo.llm_fusion.model imports this module only inside `fit`,
so prediction and `memo --help` never pay for it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from memo.llm_fusion.modules import collate
from memo.losses import regression_loss
from memo.progress import say


def spearman_metrics(eval_pred) -> dict[str, float]:
    """Mean Spearman over targets (the metric early stopping watches), plus one per target."""
    from memo.metrics import spearman

    scores, labels = eval_pred.predictions, eval_pred.label_ids
    per = [
        spearman(labels[:, j][np.isfinite(labels[:, j])], scores[:, j][np.isfinite(labels[:, j])])
        for j in range(labels.shape[1])
    ]
    finite = [v for v in per if np.isfinite(v)]
    out = {"spearman": float(np.mean(finite)) if finite else 0.0}
    out.update({f"spearman_{j}": float(v) for j, v in enumerate(per)})
    return out


class _ListDataset:
    """A list of prepared items as a map-style dataset (torch's DataLoader needs only these two)."""

    def __init__(self, items: list[dict[str, Any]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


class LengthBuckets(Sampler):
    """Training order with batches of similar lengths, still shuffled: each epoch a fresh permutation is cut
    into windows of `window` batches, each window sorted by length and cut into batches, and the full
    batches are shuffled (a short last batch goes last, so the DataLoader's batches stay aligned).

    transformers' LengthGroupedSampler sorts windows of 50 batches: on run 2's 38 training videos that is
    one window, the same batches every epoch. A window of 4 batches keeps batches changing between
    epochs and still cuts most of the padding (benchmarks/bench_padding.py measures both).
    """

    def __init__(self, lengths: list[int], batch_size: int, window: int = 4, seed: int = 0):
        self.lengths, self.batch_size, self.window, self.seed = list(lengths), batch_size, window, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # accelerate's DataLoader calls it at each epoch
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        span = self.batch_size * self.window
        full, short = [], []
        for a in range(0, len(perm), span):
            part = sorted(perm[a : a + span], key=lambda i: self.lengths[i])
            for b in range(0, len(part), self.batch_size):
                (full if len(part[b : b + self.batch_size]) == self.batch_size else short).append(
                    part[b : b + self.batch_size]
                )
        return [full[j] for j in torch.randperm(len(full), generator=g).tolist()] + short

    def __iter__(self):
        for batch in self.batches():
            yield from batch


def padded_share(lengths: list[int], batches: list[list[int]]) -> float:
    """The share of padding in padded batches: sum(B x longest - lengths) / sum(B x longest)."""
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return 1 - sum(lengths[i] for b in batches for i in b) / total if total else 0.0


class FusionTrainer(Trainer):
    """Trainer for the regression model: our loss, our evaluation step, our (small) checkpoints."""

    # compute_loss returns a per-batch mean; Trainer divides it by the accumulation steps
    # (Trainer reads this attribute from transformers 5.19; before, model_accepts_loss_kwargs=False did the
    # same)
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        loss: str = "mse",
        rank_weight: float = 1.0,
        rank_temperature: float = 0.1,
        target_var=None,
        **kwargs,
    ):
        self.loss_kind, self.rank_weight, self.rank_temperature = loss, rank_weight, rank_temperature
        # (n_targets,)
        self.target_var = None if target_var is None else torch.as_tensor(target_var, dtype=torch.float32)
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # our forward takes no num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        logits = model(**inputs)  # (B, n_targets)
        var = None if self.target_var is None else self.target_var.to(logits.device)
        loss = regression_loss(
            logits.float(), labels.float(), self.loss_kind, self.rank_weight, self.rank_temperature, var
        )
        return (loss, logits) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, logits = self.compute_loss(model, inputs, return_outputs=True)
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), torch.sigmoid(logits.float()).detach(), inputs["labels"].detach()

    def _get_train_sampler(self, *args, **kwargs):
        dataset = self.train_dataset
        return LengthBuckets(
            [len(it["input_ids"]) for it in dataset.items],
            self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        self.accelerator.unwrap_model(self.model).save_trained(output_dir)

    def _load_best_model(self) -> None:
        self.accelerator.unwrap_model(self.model).load_trained(self.state.best_model_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        (model or self.accelerator.unwrap_model(self.model)).load_trained(resume_from_checkpoint)


def training_arguments(p, output_dir: str, has_eval: bool, n_train: int):
    """transformers.TrainingArguments from the predictor's hyperparameters (p: LLMFusion)."""
    from transformers import TrainingArguments

    dev = p._device()
    gpu = dev.startswith("cuda")
    per_epoch = math.ceil(n_train / (p.batch_size * p.grad_accum))
    strategy = "epoch" if has_eval else "no"
    # transformers renamed gradient_checkpointing to activation_checkpointing during 5.x (5.17 knows only the
    # old name)
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.eval_batch_size,
        gradient_accumulation_steps=p.grad_accum,
        learning_rate=p.lr,
        weight_decay=p.weight_decay,
        warmup_steps=p.warmup_ratio,  # a float < 1 is a ratio of the total steps
        num_train_epochs=p.epochs,
        max_steps=p.max_steps,
        lr_scheduler_type="linear",
        logging_strategy="steps",
        logging_steps=max(1, min(10, per_epoch)),
        eval_strategy=strategy,
        save_strategy=strategy,
        save_total_limit=2 if has_eval else None,
        save_only_model=True,  # checkpoints during fit are for picking the best epoch, not for resuming
        load_best_model_at_end=has_eval,
        metric_for_best_model="spearman" if has_eval else None,
        greater_is_better=True,
        bf16=p._bf16(),
        **{ckpt: bool(p.gradient_checkpointing and gpu), f"{ckpt}_kwargs": {"use_reentrant": False}},
        use_cpu=dev == "cpu",
        seed=p.random_state,
        data_seed=p.random_state,
        report_to="none",
        disable_tqdm=not p.verbose,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=gpu,
        ddp_find_unused_parameters=False,
    )


def log_line(logs: dict[str, Any]) -> str:
    """One of Trainer's log dicts as a line a person reads, e.g.
    `epoch 2: loss 1.112, grad norm 12.19, learning rate 0.0002` or `epoch 2: eval spearman 0.312`."""
    epoch = logs.get("epoch")
    parts = [
        f"{k.replace('_', ' ')} {v:.4g}" if isinstance(v, (int, float)) else f"{k.replace('_', ' ')} {v}"
        for k, v in logs.items()
        if k != "epoch"
    ]
    return (f"epoch {epoch:g}: " if isinstance(epoch, (int, float)) else "") + ", ".join(parts)


class SayLogs(TrainerCallback):
    """Trainer's logs through memo's logger, one readable line each (the main process only)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            say(f"llm fusion, {log_line(logs)}")


class BarsOnly(ProgressCallback):
    """Trainer's progress bars without the raw log dicts it writes between them (SayLogs says them)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


class SayCost(TrainerCallback):
    """Before a CPU fit goes on: one line with its cost from its measured first step (steps x seconds per
    step, plus the evaluations), so a user can stop it. Evaluating a video costs about a third of training
    on it (a forward pass without the backward)."""

    def __init__(self, n_eval: int, label: str = "llm fusion"):
        self.n_eval, self.label = n_eval, label

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step != 1 or not state.is_world_process_zero:
            return
        step = time.perf_counter() - self.start
        per_video = step / (args.per_device_train_batch_size * args.gradient_accumulation_steps)
        epochs = math.ceil(state.num_train_epochs) if self.n_eval else 0
        total = state.max_steps * step + epochs * self.n_eval * per_video / 3
        say(
            f"{self.label} on cpu: {state.max_steps} steps x {step:.1f} s (its first step)"
            + (f" + {epochs} evaluations of {self.n_eval} videos" if epochs else "")
            + f" = about {_duration(total)} for this fit; Ctrl-C stops it"
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def target_variance(items: list[dict[str, Any]]) -> np.ndarray:
    """(n_targets,) variance of the training labels (NaN ignored, at least 1e-4): the MSE term is divided by
    it."""
    labels = np.stack([np.asarray(it["labels"], np.float64) for it in items])  # (N, n_targets)
    with np.errstate(all="ignore"):
        var = np.nanvar(labels, axis=0)
    return np.maximum(np.nan_to_num(var, nan=1.0), 1e-4)


def share_main_weights(trainer) -> None:
    """Under DDP (`accelerate launch`), give every process the main process's trained weights.

    Why: only the main process writes checkpoints (`args.should_save`), so only it finds the best
    one and reloads it at the end (load_best_model_at_end); the others would keep their last-step
    weights and predict with a different model. One broadcast of the trained tensors (LoRA,
    projectors, head: a few MB) makes them identical again; no shared folder is needed.
    """
    if trainer.args.world_size <= 1:
        return
    import torch.distributed as dist

    for param in trainer.accelerator.unwrap_model(trainer.model).parameters():
        if param.requires_grad:
            dist.broadcast(param.data, src=0)


def train_fusion(
    p, train_items: list[dict[str, Any]], val_items: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Train p.model_ (LLMFusion) in place; returns Trainer's log history (losses, eval Spearman)."""
    from transformers import EarlyStoppingCallback
    from transformers.utils import logging as hf_logging

    out = p.output_dir or tempfile.mkdtemp(prefix="memo-llm-")
    has_eval = bool(val_items)
    args = training_arguments(p, out, has_eval, len(train_items))
    callbacks = []
    if has_eval and p.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=p.early_stopping_patience))
    verbosity = hf_logging.get_verbosity()
    if not p.verbose:
        hf_logging.set_verbosity_error()
    try:
        trainer = FusionTrainer(
            model=p.model_,
            args=args,
            data_collator=partial(collate, pad_id=p.model_.spec["pad_id"], padding_side=p.padding_side),
            train_dataset=_ListDataset(train_items),
            # by length: evaluation batches pad little (Spearman does not care about the order)
            eval_dataset=_ListDataset(sorted(val_items, key=lambda it: len(it["input_ids"])))
            if has_eval
            else None,
            compute_metrics=spearman_metrics if has_eval else None,
            callbacks=callbacks,
            loss=p.loss,
            rank_weight=p.rank_weight,
            rank_temperature=p.rank_temperature,
            target_var=target_variance(train_items),
        )
        # the bars (when verbose) without their raw dicts; the logs as memo's lines (when verbose)
        trainer.remove_callback(PrinterCallback)  # with tqdm off, Trainer prints every log dict instead
        if p._device() == "cpu":
            trainer.add_callback(SayCost(len(val_items) if has_eval else 0))
        if p.verbose:
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(BarsOnly)
            trainer.add_callback(SayLogs)
        trainer.train()
        share_main_weights(trainer)
        history = list(trainer.state.log_history)
    finally:
        hf_logging.set_verbosity(verbosity)
        if not p.output_dir:
            shutil.rmtree(out, ignore_errors=True)
    return history
