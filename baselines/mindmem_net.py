"""MindMem's torch modules: masked multi-head attention, the pooling of one modality's tokens, and the
network that fuses the modalities (MindMemNet). The estimator that fits and saves it is
memo.baselines.mindmem, its training loop memo.baselines.mindmem_train.

    net = MindMemNet({"text": ["e5.title"], "video": ["vit"]}, {"e5.title": 1024, "vit": 768},
                     n_targets=2, width=256, heads=4, dropout=0.1, pooling="attention",
                     cross_attention=True)
    logits = net({"e5.title": (values, mask), "vit": (values, mask)})   # (B, K); sigmoid = score

Masks decide what is seen: padding rows and absent streams weigh exactly 0 in the attention and
the pooling, and a modality a video lacks is replaced by a learned 'missing' embedding.
"""

from __future__ import annotations

import math
from typing import get_args

import torch
import torch.nn as nn
import torch.nn.functional as F

from memo.config import MindMemPooling

POOLINGS = get_args(MindMemPooling)  # ModalityPooling's kinds; [mindmem] pooling (memo.config's Literal)


class MaskedAttention(nn.Module):
    """Multi-head attention in which `allowed` (B, Lq, Lk) says which keys each query may see.

    Written out (not nn.MultiheadAttention) because queries that may see nothing must not turn
    into NaN: their attention weights are all zero, and the caller discards their output.
    """

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        B, Lq, W = x_q.shape
        Lk, H = x_kv.shape[1], self.heads
        q = self.q(x_q).view(B, Lq, H, W // H).transpose(1, 2)  # (B, H, Lq, W/H)
        k, v = self.kv(x_kv).split(W, dim=-1)
        k = k.view(B, Lk, H, W // H).transpose(1, 2)  # (B, H, Lk, W/H)
        v = v.view(B, Lk, H, W // H).transpose(1, 2)  # (B, H, Lk, W/H)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(W // H)  # (B, H, Lq, Lk)
        a = allowed[:, None]  # (B, 1, Lq, Lk)
        sees_any = a.any(dim=-1, keepdim=True)  # (B, 1, Lq, 1)
        att = att.masked_fill(~a, float("-inf"))
        att = torch.where(sees_any, att, torch.zeros_like(att))  # no all -inf rows: no NaN
        att = F.softmax(att, dim=-1) * sees_any  # masked keys weigh exactly 0
        att = self.drop(att)
        y = (att @ v).transpose(1, 2).reshape(B, Lq, W)  # (B, Lq, W)
        return self.out(y)


class ModalityPooling(nn.Module):
    """The tokens of one modality (B, L, W) + mask (B, L) -> one vector (B, W).

    attention: a self-attention block over the real tokens, then a learned score per token and a
    softmax over the real tokens (MindMem's attention pooling). mean / max: the masked mean or max
    of the projected tokens, no self-attention (the paper's pooling ablation). Rows with no real
    token come out as zeros; the caller replaces them with the modality's 'missing' embedding.
    """

    def __init__(self, width: int, heads: int, dropout: float, pooling: str):
        super().__init__()
        self.pooling = pooling
        if pooling == "attention":
            self.attn = MaskedAttention(width, heads, dropout)
            self.norm = nn.LayerNorm(width)
            self.score = nn.Linear(width, 1)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        present = mask.any(dim=1, keepdim=True)  # (B, 1)
        if self.pooling == "mean":
            m = mask[..., None].to(tokens.dtype)  # (B, L, 1)
            return (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, W)
        if self.pooling == "max":
            low = torch.finfo(tokens.dtype).min
            pooled = tokens.masked_fill(~mask[..., None], low).max(dim=1).values  # (B, W)
            return torch.where(present, pooled, torch.zeros_like(pooled))
        allowed = mask[:, :, None] & mask[:, None, :]  # (B, L, L): real tokens see real tokens
        h = self.norm(tokens + self.attn(tokens, tokens, allowed))  # (B, L, W)
        s = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, L)
        s = torch.where(present, s, torch.zeros_like(s))
        w = F.softmax(s, dim=1) * mask  # (B, L): padding weighs exactly 0
        return (w[..., None] * h).sum(1)  # (B, W)


class MindMemNet(nn.Module):
    """Streams -> per-modality vectors -> cross-attention -> fusion head -> logits (B, K)."""

    def __init__(
        self,
        layout: dict[str, list[str]],
        stream_dims: dict[str, int],
        n_targets: int,
        width: int,
        heads: int,
        dropout: float,
        pooling: str,
        cross_attention: bool,
    ):
        super().__init__()
        self.layout = layout  # modality -> its streams, in a fixed order
        self.modalities = list(layout)
        self.streams = [s for m in self.modalities for s in layout[m]]
        M = len(self.modalities)
        # one projection per stream; ModuleDict keys may not contain '.', hence the index keys
        self.project = nn.ModuleList(
            nn.Sequential(nn.Linear(stream_dims[s], width), nn.LayerNorm(width), nn.Dropout(dropout))
            for s in self.streams
        )
        self.stream_embedding = nn.Parameter(0.02 * torch.randn(len(self.streams), width))  # (S, W)
        self.pool = nn.ModuleList(ModalityPooling(width, heads, dropout, pooling) for _ in self.modalities)
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(M, width))  # (M, W): who is asking
        self.missing = nn.Parameter(0.02 * torch.randn(M, width))  # (M, W): stands in for an absent modality
        self.cross = MaskedAttention(width, heads, dropout) if cross_attention and M > 1 else None
        self.cross_norm = nn.LayerNorm(width) if self.cross is not None else None
        self.head = nn.Sequential(
            nn.Linear(M * width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, n_targets)
        )

    def forward(
        self, inputs: dict[str, tuple[torch.Tensor, torch.Tensor]], drop: torch.Tensor | None = None
    ) -> torch.Tensor:
        """inputs: stream -> (values (B, T_s, D_s), mask (B, T_s)); drop (B, M) masks whole modalities.

        Returns logits (B, K); sigmoid(logits) is the score in [0, 1].
        """
        pooled, present = [], []
        i = 0
        for mi, m in enumerate(self.modalities):
            toks, masks = [], []
            for s in self.layout[m]:
                values, mask = inputs[s]
                toks.append(self.project[i](values) + self.stream_embedding[i])  # (B, T_s, W)
                masks.append(mask)
                i += 1
            tokens, mask = torch.cat(toks, dim=1), torch.cat(masks, dim=1)  # (B, L, W), (B, L)
            if drop is not None:
                mask = mask & ~drop[:, mi : mi + 1]
            pooled.append(self.pool[mi](tokens, mask))  # (B, W)
            present.append(mask.any(dim=1))  # (B,)
        P = torch.stack(pooled, dim=1)  # (B, M, W)
        here = torch.stack(present, dim=1)[..., None]  # (B, M, 1)
        # absent: learned embedding, not zeros
        P = torch.where(here, P, self.missing.to(P.dtype).expand_as(P))
        if self.cross is not None:
            M = P.shape[1]
            others = ~torch.eye(M, dtype=torch.bool, device=P.device)  # (M, M): not itself
            allowed = here & here.transpose(1, 2) & others  # (B, M, M): present queries see present others
            q = P + self.modality_embedding
            attended = self.cross(q, q, allowed) * allowed.any(-1, keepdim=True)  # no partner: nothing added
            P = self.cross_norm(P + attended)  # residual
            P = torch.where(here, P, self.missing.to(P.dtype).expand_as(P))
        return self.head(P.flatten(1))  # (B, K)
