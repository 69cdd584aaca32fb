"""Training losses for memorability regressors (MindMem, the LLM fusion model): one home for both.

    loss = regression_loss(logits, y, "mse+pairwise", rank_weight=0.5, tau=0.1, target_var=var)

logits, y: (B, K) tensors, one column per target; a NaN target counts for nothing (a video may
have one target and not the other). Scores are sigmoid(logits) in [0, 1].

Kinds, joined with '+': `mse` (on the sigmoid scores, divided by each target's training variance
when `target_var` is given, so that it sits near 1 like the rank terms whatever the targets'
spread), `pairwise` (RankNet: logistic loss on every pair whose targets differ), `spearman`
(1 - Pearson of soft ranks, a differentiable Spearman surrogate). The rank terms read the
logits standardised over the batch and divided by a temperature `tau`: only the order counts, so
they cannot be lowered by pushing logits apart (on raw logits the pairwise term kept growing them
until the sigmoids saturated and the MSE term lost the scale).
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F

from memo.config import Loss
from memo.errors import ConfigError

LOSSES = get_args(Loss)  # the one list: memo.config's Literal


def check_loss(kind: str, section: str) -> None:
    """One clear sentence when a configured loss is not one of LOSSES."""
    if kind not in LOSSES:
        raise ConfigError(f"[{section}] loss = {kind!r} is not known; use one of {', '.join(LOSSES)}.")


def _standardise(s: torch.Tensor) -> torch.Tensor:
    """(B,) scores -> zero mean, unit spread, so the rank temperature means the same at any scale."""
    return (s - s.mean()) / (s.std() + 1e-6)


def spearman_loss(z: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """1 - Pearson(soft ranks of the scores z, ranks of the targets y) for one target, (B,) each.

    Soft rank: r_i = sum_j sigmoid((z_i - z_j) / tau), differentiable, -> the true rank as tau -> 0.
    """
    if z.shape[0] < 3:
        return z.sum() * 0.0
    z = _standardise(z)
    soft = torch.sigmoid((z[:, None] - z[None, :]) / tau).sum(1)  # (B,)
    ranks = y.argsort().argsort().to(soft.dtype)  # (B,)
    a, b = soft - soft.mean(), ranks - ranks.mean()
    return 1 - (a * b).sum() / (a.norm() * b.norm() + 1e-8)


def pairwise_loss(z: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """RankNet for one target, (B,) each: mean softplus(-sign(y_i - y_j) (z_i - z_j) / tau) over pairs that
    differ."""
    z = _standardise(z) if z.shape[0] > 1 else z
    diff = (z[:, None] - z[None, :]) / tau  # (B, B)
    sign = torch.sign(y[:, None] - y[None, :])  # (B, B): +1 where i should rank above j
    valid = sign != 0
    return F.softplus(-sign * diff)[valid].mean() if valid.any() else z.sum() * 0.0


def regression_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    kind: str = "mse",
    rank_weight: float = 1.0,
    tau: float = 0.1,
    target_var: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scalar loss of (B, K) logits against (B, K) targets; each part averaged over the targets.

    rank_weight multiplies the rank term when it comes with `mse` (a rank loss alone has weight 1).
    """
    parts = kind.split("+")
    total = logits.sum() * 0.0
    ok = torch.isfinite(y)  # (B, K)
    K = logits.shape[1]
    if "mse" in parts:
        err = (torch.sigmoid(logits) - torch.where(ok, y, 0.0)) ** 2
        if target_var is not None:
            err = err / target_var.to(err.dtype).reshape(1, K)
        per_target = torch.where(ok, err, 0.0).sum(0) / ok.sum(0).clamp(min=1)  # (K,)
        total = total + per_target[ok.any(0)].sum() / ok.any(0).sum().clamp(min=1)
    rank = {"spearman": spearman_loss, "pairwise": pairwise_loss}
    weight = rank_weight if "mse" in parts else 1.0
    for name in parts:
        if name in rank:
            terms = [
                rank[name](logits[ok[:, k], k], y[ok[:, k], k], tau) for k in range(K) if ok[:, k].sum() > 1
            ]
            if terms:
                total = total + weight * torch.stack(terms).mean()
    return total
