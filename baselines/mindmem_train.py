"""MindMem's training loop: batches moved to the device, AdamW with warm-up and cosine decay,
modality dropout, early stopping on held-out brands. The network lives in
memo.baselines.mindmem_net, the estimator in memo.baselines.mindmem; `MindMem.fit` calls
`train_net`, `MindMem.predict` calls `predict_scores`.

    history, best_epoch = train_net(net, tensors, Yn, train_idx, valid_idx, loss, gen, device,
                                    epochs=60, batch_size=32, lr=1e-4, weight_decay=0.01, warmup=0.1,
                                    grad_clip=1.0, modality_dropout=0.1, patience=10, amp=False)
    scores = predict_scores(net, tensors, device, batch_size=32)   # (N, K) sigmoid scores

`tensors` maps each stream to (values (N, T_s, D_s), mask (N, T_s)) on the CPU; rows go to the
device one batch at a time. `Yn` (N, K) are the targets on the sigmoid's scale, `loss(logits (B, K),
y (B, K))` the training loss, `gen` the generator that draws the batch order and the dropped
modalities (so a seed gives the same run).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from memo.metrics import spearman

# the estimator's hyperparameters that train_net takes, by the same names
TRAINING_PARAMS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup",
    "grad_clip",
    "modality_dropout",
    "patience",
    "amp",
)

Tensors = dict[str, tuple[torch.Tensor, torch.Tensor]]  # stream -> (values (N, T_s, D_s), mask (N, T_s))


def to_device(tensors: Tensors, idx: torch.Tensor, device: torch.device) -> Tensors:
    """The rows `idx` of every stream, on the device: one batch (B, T_s, D_s) + (B, T_s)."""
    return {
        s: (v[idx].to(device, non_blocking=True), m[idx].to(device, non_blocking=True))
        for s, (v, m) in tensors.items()
    }


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp` is on; a no-op elsewhere."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=bool(amp) and device.type == "cuda"
    )


def predict_scores(
    net: nn.Module,
    tensors: Tensors,
    device: torch.device,
    batch_size: int,
    amp: bool = False,
    drop: list[int] | None = None,
) -> np.ndarray:
    """(N, K) sigmoid scores in batches; `drop` lists modality indices masked out for everyone."""
    was_training = net.training
    net.eval()
    n = next(iter(tensors.values()))[0].shape[0]
    out = []
    with torch.inference_mode(), autocast(device, amp):
        for b in torch.arange(n).split(max(256, batch_size)):
            batch = to_device(tensors, b, device)
            mask = None
            if drop:
                mask = torch.zeros(len(b), len(net.modalities), dtype=torch.bool, device=device)  # (B, M)
                mask[:, drop] = True
            out.append(torch.sigmoid(net(batch, mask).float()).cpu().numpy())
    net.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, net.head[-1].out_features), dtype=np.float32)


def make_optimizer(net: nn.Module, steps: int, lr: float, weight_decay: float, warmup: float):
    """AdamW, and its schedule over `steps`: linear warm-up over the first `warmup` of them, then cosine decay
    to zero."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    total = max(1, steps)
    warm = int(warmup * total)

    def schedule(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def train_epoch(
    net: nn.Module,
    tensors: Tensors,
    Yt: torch.Tensor,
    train_t: torch.Tensor,
    loss: Callable,
    opt,
    sched,
    gen: torch.Generator,
    device: torch.device,
    batch_size: int,
    modality_dropout: float,
    grad_clip: float,
    amp: bool,
) -> float:
    """One pass over the training rows in a random order; the mean batch loss."""
    net.train()
    M = len(net.modalities)
    losses = []
    for b in train_t[torch.randperm(len(train_t), generator=gen)].split(batch_size):
        batch = to_device(tensors, b, device)
        # whole modalities masked at random (B, M): what teaches the 'missing' embeddings
        drop = (
            (torch.rand(len(b), M, generator=gen) < modality_dropout).to(device)
            if modality_dropout > 0 and M > 1
            else None
        )
        with autocast(device, amp):
            logits = net(batch, drop)  # (B, K)
        value = loss(logits.float(), Yt[b].to(device))
        opt.zero_grad(set_to_none=True)
        value.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        sched.step()
        losses.append(value.item())
    return float(np.mean(losses))


def valid_score(
    net: nn.Module,
    tensors: Tensors,
    Yn: np.ndarray,
    valid_idx: np.ndarray,
    device: torch.device,
    batch_size: int,
    amp: bool,
) -> float:
    """Mean Spearman over the targets on the validation rows; -1 when no target has one."""
    # (n, K)
    pred = predict_scores(
        net, {s: (v[valid_idx], m[valid_idx]) for s, (v, m) in tensors.items()}, device, batch_size, amp
    )
    scores = [spearman(Yn[valid_idx, k], pred[:, k]) for k in range(Yn.shape[1])]
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else -1.0


def train_net(
    net: nn.Module,
    tensors: Tensors,
    Yn: np.ndarray,
    train_idx: np.ndarray,
    valid_idx: np.ndarray,
    loss: Callable,
    gen: torch.Generator,
    device: torch.device,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    warmup: float,
    grad_clip: float,
    modality_dropout: float,
    patience: int,
    amp: bool,
) -> tuple[list[dict], int]:
    """Train `net` in place for up to `epochs`. With validation rows: stop after `patience` epochs without a
    better validation Spearman and keep the best epoch's weights; without: keep the last. Returns the
    per-epoch history and the epoch whose weights were kept."""
    from tqdm.auto import tqdm

    opt, sched = make_optimizer(
        net, epochs * math.ceil(len(train_idx) / batch_size), lr, weight_decay, warmup
    )
    Yt, train_t = torch.from_numpy(Yn), torch.from_numpy(train_idx)
    best, best_epoch, best_state, bad = -np.inf, -1, None, 0
    history = []
    bar = tqdm(range(epochs), desc="mindmem", leave=False, disable=None)
    for epoch in bar:
        mean_loss = train_epoch(
            net,
            tensors,
            Yt,
            train_t,
            loss,
            opt,
            sched,
            gen,
            device,
            batch_size,
            modality_dropout,
            grad_clip,
            amp,
        )
        record = {"epoch": epoch, "loss": mean_loss}
        if len(valid_idx):
            score = valid_score(net, tensors, Yn, valid_idx, device, batch_size, amp)
            record["valid_spearman"] = score
            if score > best:
                best, best_epoch, bad = score, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad += 1
            bar.set_postfix(loss=f"{record['loss']:.3f}", valid=f"{score:.3f}")
        history.append(record)
        if len(valid_idx) and bad >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return history, (best_epoch if best_state is not None else len(history) - 1)
