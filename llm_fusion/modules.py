"""The torch side of the LLM fusion model: the spec it is built from, the Gemma-3 backbone, the modules.

B videos, L tokens, H = the backbone's width, S streams, k soft tokens per stream, D_s a stream's width:

    features {stream: (B, D_s)} -> Projector per stream -> (B, k, H) each -> (B, S*k, H) soft tokens
    token embeddings (B, L, H) with the soft tokens written over the S*k marker rows
    decoder (Gemma3TextModel, LoRA) -> last hidden states (B, L, H) -> pooling (B, H) -> head (B, n_targets)

The file reads top to bottom: the spec, the backbone (loader, marker token, LoRA), the modules
(Projector, AttentionPool, FusionModel), then `collate`, which pads prepared items into the batch
FusionModel.forward takes. The prompt and the registered predictor are in memo.llm_fusion.model;
torch is imported at the top, like any model file, because only that predictor imports this module.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memo.errors import ConfigError, MemoError, ModelNotFound

# Soft-token placeholder: Gemma-3 tokenizers have `<image_soft_token>` as one special token. Its id
# may lie past the text model's embedding table (262144 in gemma-3-1b), which is harmless: marker
# rows are never looked up, they are overwritten by soft tokens.
SOFT_MARKER = "<image_soft_token>"
FALLBACK_MARKER = "<memo_soft_token>"  # added to tokenizers that lack the Gemma marker

WEIGHTS_FILE = "fusion.safetensors"  # projectors, pooling, head (with their fitted statistics)
ADAPTER_FILE = "adapter_model.safetensors"  # LoRA weights, PEFT's own layout and names
ADAPTER_CONFIG = "adapter_config.json"


class FusionSpec(TypedDict):
    """What FusionModel is built from: plain data (a dict at run time), filled by LLMFusion._build."""

    streams: list[str]  # the order of the soft tokens in the prompt (S streams)
    stream_dims: dict[str, int]  # D_s of each stream
    targets: list[str]  # one output per target
    tokens_per_stream: int  # k
    projector: str  # "linear" (DSGT: one linear map per feature) or "mlp"
    projector_hidden: int  # the mlp projector's hidden width
    pooling: str  # "mean" or "attention"
    head_hidden: int
    dropout: float  # in the head
    marker_id: int  # the token id of a soft-token slot
    pad_id: int


# ----------------------------------------------------------------------------- backbone


# One loaded backbone per process, kept while its key is asked for again: run 2's CV fits, its full fit
# and a predict reuse it instead of reading the weights again (16 s each for Gemma-3-270M on 2 cores).
_LOADED: dict[tuple, tuple[Any, Any]] = {}


def load_backbone(name: str, dtype: str = "float32", attn_implementation: str = "", reuse: bool = False):
    """A Gemma-3 id or folder -> (decoder without lm_head, tokenizer).

    AutoModelForCausalLM gives Gemma3ForCausalLM (text checkpoints: 270m, 1b) or
    Gemma3ForConditionalGeneration (multimodal: 4b, 12b, 27b); we keep only the text decoder
    (`.model`, or `.model.language_model`), so the vision tower is freed and lm_head is never called.

    reuse=True (CPU fits): the decoder loaded by an earlier call with the same arguments is copied with
    its weight tensors shared, not read again. Sharing is safe because the backbone is frozen: LoRA wraps
    the copy's layers and only adapters, projectors and head are trained; nothing writes the shared
    weights. A device move would (Module.to rewrites param.data), which is why GPU fits do not reuse.
    """
    key = (name, dtype, attn_implementation)
    if reuse and key in _LOADED:
        return _shared_copy(*_LOADED[key])
    decoder, tokenizer = _read_backbone(name, dtype, attn_implementation)
    if reuse:
        _LOADED.clear()  # one backbone at a time: a second one would double the memory
        _LOADED[key] = (decoder, tokenizer)
        return _shared_copy(decoder, tokenizer)
    return decoder, tokenizer


def _shared_copy(decoder, tokenizer):
    """A copy of the decoder's modules and buffers whose parameters are the original's (deepcopy's memo maps
    each parameter to itself: 0.03 s, where reading Gemma-3-270M again takes 16 s), and the same tokenizer
    (copying it takes 5 s; the one change memo makes to it, soft_marker_id's added marker, is idempotent)."""
    import copy

    shared = {id(p): p for p in decoder.parameters()}
    return copy.deepcopy(decoder, memo=shared), tokenizer


def _read_backbone(name: str, dtype: str, attn_implementation: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from memo.models import load_error, resolve_model

    path = resolve_model(name)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar for every CV fold is noise
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise load_error(name, e) from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    base = getattr(lm, "model", None)
    if base is None:
        raise ModelNotFound(
            f"{name!r} is a {type(lm).__name__}, which has no `.model` decoder; use a Gemma-3 checkpoint."
        )
    decoder = getattr(base, "language_model", base)  # multimodal Gemma-3: its text model
    del lm, base
    return decoder, tokenizer


def soft_marker_id(tokenizer) -> int:
    """The single token id that marks a soft-token slot in the prompt; adds one if the tokenizer has none."""
    for marker in (SOFT_MARKER, FALLBACK_MARKER):
        if marker in tokenizer.get_vocab():
            return tokenizer.convert_tokens_to_ids(marker)
    tokenizer.add_tokens([FALLBACK_MARKER], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(FALLBACK_MARKER)


def apply_lora(decoder, r: int, alpha: int, dropout: float, target_modules: list[str]):
    """Freeze the decoder and add LoRA adapters (PEFT) on the named projections."""
    from peft import LoraConfig, get_peft_model

    for p in decoder.parameters():
        p.requires_grad_(False)
    if r <= 0:
        return decoder  # projectors + head only
    names = {n.rsplit(".", 1)[-1] for n, _ in decoder.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ConfigError(
            f"[llm] target_modules {missing} are not in the backbone; Gemma-3 has q_proj, k_proj, "
            "v_proj, o_proj, gate_proj, up_proj, down_proj."
        )
    cfg = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules), bias="none"
    )
    with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(decoder, cfg)


# ----------------------------------------------------------------------------- modules


class Projector(nn.Module):
    """One feature stream (B, D) -> k soft tokens (B, k, H) at the scale of text embeddings."""

    def __init__(self, dim: int, width: int, k: int, kind: str, hidden: int, gain: float):
        super().__init__()
        self.k, self.width = k, width
        # z-score statistics from the training rows, saved with the weights (not trained)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        if kind == "linear":  # DSGT: one linear map per feature
            self.net = nn.Linear(dim, k * width)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, k * width))
        else:
            raise ConfigError(f"[llm] projector {kind!r} is not known; use linear or mlp.")
        # Gemma's token embedding rows have an RMS of about `gain` before the sqrt(H) scaling;
        # soft tokens start there, so they neither drown nor vanish beside the text.
        self.gain = nn.Parameter(torch.tensor(float(gain)))

    def forward(self, x):  # (B, D) -> (B, k, H)
        x = (x - self.mean) / self.std
        z = self.net(x).view(x.shape[0], self.k, self.width)  # (B, k, H)
        return F.rms_norm(z, (self.width,)) * self.gain


class AttentionPool(nn.Module):
    """Learned-query attention over the real positions: (B, L, H), (B, L) -> (B, H)."""

    def __init__(self, width: int):
        super().__init__()
        self.query = nn.Linear(width, 1)

    def forward(self, h, mask):
        scores = self.query(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, L)
        w = scores.softmax(-1).unsqueeze(-1)  # (B, L, 1)
        return (torch.where(mask.unsqueeze(-1), h, 0.0) * w).sum(1)  # (B, H)


def _key(stream: str) -> str:
    return stream.replace(".", "__")  # ModuleDict keys cannot hold dots


class FusionModel(nn.Module):
    """Frozen decoder + trainable projectors, pooling and head; forward returns logits (B, n_targets)."""

    def __init__(self, decoder, spec: FusionSpec):
        super().__init__()
        self.decoder = decoder  # Gemma3TextModel, or a PeftModel around it once LoRA is applied
        self.spec = spec
        width = decoder.config.hidden_size
        emb = decoder.get_input_embeddings()
        # Gemma multiplies token embeddings by sqrt(H) inside the embedding layer; soft tokens get the same
        self.embed_scale = float(getattr(emb, "scalar_embed_scale", 1.0))
        gain = float(emb.weight.detach().float().pow(2).mean(-1).sqrt().mean())  # mean RMS of a token row
        self.projectors = nn.ModuleDict(
            {
                _key(s): Projector(
                    d, width, spec["tokens_per_stream"], spec["projector"], spec["projector_hidden"], gain
                )
                for s, d in spec["stream_dims"].items()
            }
        )  # module order does not matter; spec["streams"] fixes the soft-token order
        if spec["pooling"] == "attention":
            self.pool = AttentionPool(width)
        elif spec["pooling"] == "mean":
            self.pool = None
        else:
            raise ConfigError(f"[llm] pooling {spec['pooling']!r} is not known; use mean or attention.")
        n_out = len(spec["targets"])
        self.head = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, spec["head_hidden"]),
            nn.GELU(),
            nn.Dropout(spec["dropout"]),
            nn.Linear(spec["head_hidden"], n_out),
        )

    @property
    def config(self):  # transformers.Trainer reads model.config (model_type, use_cache)
        return self.decoder.config

    def projector(self, stream: str) -> Projector:
        return self.projectors[_key(stream)]

    def trainable_modules(self) -> dict[str, nn.Module]:
        mods = {"projectors": self.projectors, "head": self.head}
        if self.pool is not None:
            mods["pool"] = self.pool
        return mods

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        # Trainer calls this when gradient_checkpointing is on; only the decoder's layers are checkpointed
        base = self.decoder.get_base_model() if hasattr(self.decoder, "get_base_model") else self.decoder
        base.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs
        )

    def forward(self, input_ids, attention_mask, present, features):
        # input_ids (B, L) with S*k marker ids; attention_mask (B, L); present (B, S) bool;
        # features {stream: (B, D_s)} in spec order
        is_soft = input_ids == self.spec["marker_id"]  # (B, L)
        ids = input_ids.masked_fill(is_soft, self.spec["pad_id"])  # marker ids may be out of the table
        emb = self.decoder.get_input_embeddings()(ids)  # (B, L, H), already x sqrt(H)
        if self.spec["streams"]:  # a text-only model (no stream) has no markers
            # (B, S*k, H)
            soft = torch.cat([self.projector(s)(features[s].float()) for s in self.spec["streams"]], 1)
            soft = (soft * self.embed_scale).to(emb.dtype)
            # markers are filled row by row, in stream order
            emb = emb.masked_scatter(is_soft.unsqueeze(-1), soft)
        # a stream the video lacks: its soft tokens are neither attended to nor pooled
        soft_mask = present.repeat_interleave(self.spec["tokens_per_stream"], dim=1)  # (B, S*k)
        mask = attention_mask.bool().masked_scatter(is_soft, soft_mask)  # (B, L)
        # positions count real tokens only, so left and right padding give the same RoPE phases
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)
        out = self.decoder(
            inputs_embeds=emb, attention_mask=mask.long(), position_ids=position_ids, use_cache=False
        )
        h = out.last_hidden_state.float()  # (B, L, H); the decoder's final norm is applied
        if self.pool is None:
            m = mask.unsqueeze(-1)
            # (B, H); where, not *, so NaN pads stay out
            pooled = torch.where(m, h, 0.0).sum(1) / m.sum(1).clamp(min=1)
        else:
            pooled = self.pool(h, mask)
        return self.head(pooled)  # (B, n_targets) logits; sigmoid gives scores in [0, 1]

    # -- only what was trained goes to disk (LoRA, projectors with their statistics, pooling, head)
    def trained_state(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, mod in self.trainable_modules().items():
            out.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in mod.state_dict().items()})
        return out

    def save_trained(self, folder: str | Path) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save

        from memo.store import atomic_write_bytes, atomic_write_json

        folder = Path(folder)
        atomic_write_bytes(folder / WEIGHTS_FILE, save(self.trained_state()))
        if hasattr(self.decoder, "peft_config"):
            lora = {
                k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.decoder).items()
            }
            atomic_write_bytes(folder / ADAPTER_FILE, save(lora))
            atomic_write_json(folder / ADAPTER_CONFIG, self.decoder.peft_config["default"].to_dict())

    def load_trained(self, folder: str | Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(folder)
        state = load_file(str(folder / WEIGHTS_FILE))
        for name, mod in self.trainable_modules().items():
            part = {k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")}
            mod.load_state_dict(part, strict=True)
        if (folder / ADAPTER_FILE).is_file():
            result = set_peft_model_state_dict(self.decoder, load_file(str(folder / ADAPTER_FILE)))
            if getattr(result, "unexpected_keys", None):
                raise MemoError(
                    f"the LoRA adapter in {folder} does not fit this backbone "
                    f"({result.unexpected_keys[0]}); retrain it."
                )


# ----------------------------------------------------------------------------- batches


def collate(items: list[dict[str, Any]], pad_id: int, padding_side: str = "left") -> dict[str, Any]:
    """Pad prompts and stack features: input_ids/attention_mask (B, L), present (B, S), features {s: (B, D)},
    labels (B, n)."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        sl = slice(width - n, width) if padding_side == "left" else slice(0, n)
        ids[i, sl] = torch.tensor(it["input_ids"], dtype=torch.long)
        mask[i, sl] = 1
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "present": torch.from_numpy(np.stack([it["present"] for it in items])).bool(),
        "features": {
            s: torch.from_numpy(np.stack([it["features"][s] for it in items])) for s in items[0]["features"]
        },
    }
    if "labels" in items[0]:
        batch["labels"] = torch.from_numpy(np.stack([it["labels"] for it in items]).astype(np.float32))
    return batch
