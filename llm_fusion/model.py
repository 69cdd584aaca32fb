"""LLM fusion (DSGT, arXiv 2510.22829): a frozen Gemma-3 reads the ad's text and its features as soft tokens.

    model = LLMFusion.from_config(project.config, device="cpu")   # or PREDICTORS.get("llm")
    model.fit(X, y)  # X: memo.store.Features, y: DataFrame ids x targets; trains with transformers.Trainer
    model.predict(X)           # DataFrame ids x targets in [0, 1], batched, with a progress bar
    model.save(folder); LLMFusion.load(folder)   # only what was trained: LoRA, projectors, head, config

How one video becomes a score (B videos, L tokens, H = the backbone's width, S streams, k soft
tokens per stream):

    title, description, transcript, rationales ──chat template──> token ids (B, L) with S*k markers
    feature streams: vit (T, D) -> masked mean (D,); e5.title (D,); rationale.humor (D,); metadata (K,)
        -> z-score (training statistics) -> projector per stream -> (k, H) -> RMS-normalised x gain
    token embeddings (B, L, H); the markers' rows are replaced by the soft tokens (B, S*k, H), which
        are scaled as Gemma scales text embeddings (x sqrt(H)); a missing stream's soft tokens are masked
    decoder without lm_head (LoRA on attention / MLP projections) -> last hidden states (B, L, H)
    pooling over real tokens (mean or learned attention) (B, H) -> MLP head -> sigmoid (B, n_targets)

The decoder is called as `Gemma3TextModel`, never through the causal-LM wrapper, so the
vocabulary-sized logits (B, L, 262k) of a real Gemma are never built. Position ids come from the
attention mask, so left and right padding give the same score.

The backbone loader and the torch modules (projector, pooling, fusion model) are in
memo.llm_fusion.modules; this file reads top to bottom: the prompt, then the predictor
(scikit-learn shape, registered as "llm"). Training itself is a transformers.Trainer subclass in
memo.llm_fusion.train. torch is imported at the top: the predictor registry imports this module
only when the "llm" predictor is asked for, so `memo --help` never does.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memo.errors import ConfigError, MemoError
from memo.llm_fusion.modules import (
    FALLBACK_MARKER,
    SOFT_MARKER,
    FusionModel,
    FusionSpec,
    apply_lora,
    collate,
    load_backbone,
    soft_marker_id,
)
from memo.predictors import PREDICTORS, Predictor
from memo.streams import canonical, select

# How a stream is named in the prompt, so the LM reads what each soft token stands for.
STREAM_LABELS = {
    "vit": "video frames",
    "audio": "sound track",
    "metadata.absolute": "metadata (duration, views, likes)",
    "metadata.brand": "metadata relative to the brand",
    "cues": "format cues of the title and description",
    "stats": "video statistics",
    "ratings": "aspect ratings",
}

FIELD_LABELS = {
    "title": "Title",
    "description": "Description",
    "tags": "Tags",
    "transcript": "Transcript (start)",
    "captions": "Captions",
}

SYSTEM_PROMPT = "You are an expert in advertising and human memory. You judge how memorable a video ad is."

META_FILE = "fusion.json"  # hyperparameters, streams, targets, backbone


# ----------------------------------------------------------------------------- prompt


def _words(text: Any, n: int) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    words = " ".join(str(text).split()).split(" ")
    return " ".join(words[:n]) + (" ..." if len(words) > n else "")


def prompt_body(row: pd.Series, fields: list[str], words: int) -> str:
    """The ad's texts: title, description, transcript start, captions, then rationales if the table has
    them."""
    lines = []
    for f in fields:
        t = _words(row.get(f), words)
        if t:
            lines.append(f"{FIELD_LABELS.get(f, f.capitalize())}: {t}")
    rationales = [
        (c.split(".", 1)[1], _words(row[c], words)) for c in row.index if str(c).startswith("rationale.")
    ]
    rationales = [(a, t) for a, t in rationales if t]
    if rationales:
        lines.append("Expert rationales:")
        lines += [f"- {a}: {t}" for a, t in rationales]
    body = "\n".join(lines) or "(no text)"
    for m in (SOFT_MARKER, FALLBACK_MARKER):  # a title must never create a soft-token slot
        body = body.replace(m, "")
    return body


def rationale_texts(log_file: str | Path, ids: list[str]) -> dict[str, dict[str, str]]:
    """{video: {aspect: text}}: the rationales the prompt quotes (memo.rationales.log.final_rationales)."""
    from memo.rationales.log import final_rationales

    return final_rationales(log_file, ids)


def stream_label(stream: str) -> str:
    prefix, _, name = stream.partition(".")
    if prefix == "e5":
        return f"{name} (text embedding)"
    if prefix == "rationale":
        return f"{name} rationale (embedding)"
    if prefix == "organiser":
        return f"{name} features"
    return STREAM_LABELS.get(stream, stream)


def build_prompt_ids(
    tokenizer, body: str, streams: list[str], k: int, marker: str, max_length: int
) -> list[int]:
    """Token ids of the chat prompt: texts, then one line per stream with k marker tokens.

    Only the texts are cut to fit max_length, so every prompt holds exactly len(streams) * k markers.
    """
    block = "\n".join(f"{stream_label(s)}: {marker * k}" for s in streams)

    def encode(text: str) -> list[int]:
        features = f"\n\nFeatures:\n{block}" if streams else ""
        content = f"{text}{features}\n\nHow memorable is this ad?"
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
            s = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return tokenizer(s, add_special_tokens=False)["input_ids"]  # the template already has <bos>
        return tokenizer(f"{SYSTEM_PROMPT}\n\n{content}\n")["input_ids"]

    ids = encode(body)
    for _ in range(4):
        over = len(ids) - max_length
        if over <= 0:
            return ids
        body_ids = tokenizer(body, add_special_tokens=False)["input_ids"]
        if not body_ids:
            break
        body = tokenizer.decode(body_ids[: max(0, len(body_ids) - over - 4)])
        ids = encode(body)
    if len(ids) > max_length:
        raise ConfigError(
            f"[llm] max_length {max_length} is too short for the prompt's {len(streams) * k} soft "
            "tokens; raise max_length."
        )
    return ids


# ----------------------------------------------------------------------------- predictor


@PREDICTORS.register("llm")
class LLMFusion(Predictor):
    """Gemma-3 + LoRA reading the ad's text, with one projector per feature stream into soft tokens."""

    name = "llm"

    def __init__(
        self,
        backbone: str = "",  # as [llm] backbone: empty = [models] llm's default
        streams: tuple[str, ...] = ("vit", "e5", "rationale", "metadata.absolute"),
        projector: str = "linear",
        projector_hidden: int = 256,
        tokens_per_stream: int = 1,
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.05,
        target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"),
        pooling: str = "mean",
        head_hidden: int = 256,
        dropout: float = 0.1,
        loss: str = "mse",
        rank_weight: float = 1.0,
        rank_temperature: float = 0.1,
        prompt_fields: tuple[str, ...] = ("title", "description", "transcript", "captions"),
        words_per_field: int = 60,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.05,
        epochs: int = 3,
        max_steps: int = -1,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        grad_accum: int = 1,
        max_length: int = 512,
        padding_side: str = "left",
        val_folds: int = 5,
        early_stopping_patience: int = 2,
        bf16: bool = True,
        precision: str = "auto",
        gradient_checkpointing: bool = True,
        attn_implementation: str = "",
        rationale_log: str = "",
        device: str = "auto",
        random_state: int = 0,
        output_dir: str = "",
        verbose: bool = True,
    ):
        self.backbone = backbone
        self.streams = streams  # selectors (memo.streams); a run sets them to its own streams
        self.projector = projector
        self.projector_hidden = projector_hidden
        self.tokens_per_stream = tokens_per_stream
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules
        self.pooling = pooling
        self.head_hidden = head_hidden
        self.dropout = dropout
        self.loss = loss
        self.rank_weight = rank_weight
        self.rank_temperature = rank_temperature
        self.prompt_fields = prompt_fields
        self.words_per_field = words_per_field
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.epochs = epochs
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.grad_accum = grad_accum
        self.max_length = max_length
        self.padding_side = padding_side
        self.val_folds = val_folds
        self.early_stopping_patience = early_stopping_patience
        self.bf16 = bf16
        self.precision = precision  # [models] precision: auto | fp32 | bf16 (memo.models.use_bf16)
        self.gradient_checkpointing = gradient_checkpointing
        self.attn_implementation = attn_implementation
        self.rationale_log = rationale_log  # SQLite log of memo.rationales; its texts join the prompt
        self.device = device
        self.random_state = random_state
        self.output_dir = output_dir
        self.verbose = verbose

    config_section = "llm"

    @classmethod
    def config_params(cls, config, overrides: dict[str, Any]) -> dict[str, Any]:
        params = super().config_params(config, overrides)
        params["backbone"] = config.llm.backbone or config.models.llm  # [llm] backbone "": [models] llm
        params["precision"] = config.models.precision
        if any(
            canonical(s).partition(".")[0] == "rationale"
            for s in overrides.get("streams", config.llm.streams)
        ):
            from memo.rationales.log import log_file

            params["rationale_log"] = str(log_file(config.resolve(config.project.workdir)))
        return params

    # -- fitting
    def _check(self) -> None:
        from memo.losses import check_loss

        check_loss(self.loss, "llm")
        if self.padding_side not in ("left", "right"):
            raise ConfigError(f"[llm] padding_side {self.padding_side!r} must be left or right.")
        if self.tokens_per_stream < 1:
            raise ConfigError(f"[llm] tokens_per_stream must be at least 1, not {self.tokens_per_stream}.")

    @property
    def backbone_name(self) -> str:
        """The backbone it loads: `backbone`, else [models] llm's default (one default for both)."""
        from memo.config import ModelsConfig

        return self.backbone or ModelsConfig().llm

    def _device(self) -> str:
        from memo.models import pick_device

        return pick_device(self.device)

    def _bf16(self) -> bool:
        """Whether this model trains and predicts in bfloat16: [llm] bf16 where [models] precision allows it
        (auto: on a CUDA GPU, as before, or on a CPU with native bf16)."""
        from memo.models import use_bf16

        dev = self._device()
        return self.bf16 and use_bf16(self.precision, dev, accelerator_default=dev.startswith("cuda"))

    def _build(self, stream_dims: dict[str, int], targets: list[str]):
        """Backbone + LoRA + fresh trainable parts; returns (FusionModel, tokenizer).

        LoRA and the new modules are drawn from random_state after the backbone is there, so a fit is the
        same whether the backbone was read from disk or reused from an earlier fold (load_backbone)."""
        dev = self._device()
        dtype = "bfloat16" if self._bf16() else "float32"
        decoder, tokenizer = load_backbone(
            self.backbone_name, dtype, self.attn_implementation, reuse=dev == "cpu"
        )
        marker_id = soft_marker_id(tokenizer)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        spec = FusionSpec(
            # an explicit list: the order of soft tokens in the prompt (JSON sorts dict keys)
            streams=list(self.streams_),
            stream_dims={s: int(stream_dims[s]) for s in self.streams_},
            targets=list(targets),
            tokens_per_stream=self.tokens_per_stream,
            projector=self.projector,
            projector_hidden=self.projector_hidden,
            pooling=self.pooling,
            head_hidden=self.head_hidden,
            dropout=self.dropout,
            marker_id=int(marker_id),
            pad_id=int(pad_id),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            decoder = apply_lora(
                decoder, self.lora_r, self.lora_alpha, self.lora_dropout, self.target_modules
            )
            model = FusionModel(decoder, spec)
        return model, tokenizer

    def _arrays(self, X) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """{stream: (N, D) float32 pooled over time}, present (N, S) bool, in the fitted stream order."""
        feats, present = {}, []
        for s in self.streams_:
            if s not in X.streams:  # e.g. a test split without this modality: its soft tokens are masked
                warnings.warn(
                    f"feature stream {s!r} is missing; the llm model predicts without it.", stacklevel=3
                )
                feats[s] = np.zeros((len(X), self.stream_dims_[s]), np.float32)
                present.append(np.zeros(len(X), bool))
                continue
            st = X.streams[s]
            if st.dim != self.stream_dims_[s]:
                raise MemoError(
                    f"feature stream {s!r} has {st.dim} dims, the llm model was trained on "
                    f"{self.stream_dims_[s]}; retrain it."
                )
            p = st.present
            # (N, D); missing rows are masked anyway
            feats[s] = np.nan_to_num(st.pooled(), nan=0.0).astype(np.float32)
            present.append(p)
        return feats, (np.stack(present, 1) if present else np.zeros((len(X), 0), bool))

    def _prompts(self, X) -> list[list[int]]:
        marker = self.tokenizer_.convert_ids_to_tokens(self.model_.spec["marker_id"])
        logged = rationale_texts(self.rationale_log, X.ids)
        # the log may hold other aspects too
        read = {s.partition(".")[2] for s in self.streams_ if s.startswith("rationale.")}
        out = []
        for i, vid in enumerate(X.ids):
            row = X.table.iloc[i]
            texts = {a: t for a, t in logged.get(vid, {}).items() if a in read}
            if texts:  # rationale.<aspect> columns of the table win over the log
                row = pd.concat([pd.Series({f"rationale.{a}": t for a, t in texts.items()}), row])
                row = row[~row.index.duplicated(keep="last")]
            body = prompt_body(row, self.prompt_fields, self.words_per_field)
            out.append(
                build_prompt_ids(
                    self.tokenizer_, body, self.streams_, self.tokens_per_stream, marker, self.max_length
                )
            )
        return out

    def _items(self, X, y: np.ndarray | None = None) -> list[dict[str, Any]]:
        feats, present = self._arrays(X)
        prompts = self._prompts(X)
        items = []
        for i in range(len(X)):
            item = {
                "input_ids": prompts[i],
                "present": present[i],
                "features": {s: feats[s][i] for s in self.streams_},
            }
            if y is not None:
                item["labels"] = y[i]
            items.append(item)
        return items

    def fit(self, X, y: pd.DataFrame) -> LLMFusion:
        from memo.llm_fusion.train import train_fusion
        from memo.splits import grouped_kfold

        self._check()
        y = y.loc[X.ids] if set(X.ids) <= set(y.index) else y
        if len(y) != len(X):
            raise MemoError(f"y has {len(y)} rows for {len(X)} videos; give targets for every video in X.")
        self.targets_ = list(y.columns)
        available = [s for s, st in X.streams.items() if st.dim > 0 and st.present.any()]
        self.streams_ = select(self.streams, sorted(available), strict=False)
        self.stream_dims_ = {s: int(X.streams[s].dim) for s in self.streams_}
        torch.manual_seed(self.random_state)
        self.model_, self.tokenizer_ = self._build(self.stream_dims_, self.targets_)

        # z-score statistics and the head's starting bias come from the training rows only
        feats, present = self._arrays(X)
        for j, s in enumerate(self.streams_):
            rows = feats[s][present[:, j]]
            proj = self.model_.projector(s)
            proj.mean.copy_(torch.from_numpy(rows.mean(0)))
            proj.std.copy_(torch.from_numpy(np.maximum(rows.std(0), 1e-6)))
        yv = y.to_numpy(np.float32)
        mean = np.clip(np.nanmean(yv, 0), 1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.model_.head[-1].bias.copy_(torch.from_numpy(np.log(mean / (1 - mean)).astype(np.float32)))

        # hold out whole brands for per-epoch evaluation and early stopping, when there are enough
        n_groups = len(np.unique(X.groups))
        train_idx, val_idx = np.arange(len(X)), None
        if self.val_folds >= 2 and n_groups >= self.val_folds and len(X) >= 4 * self.val_folds:
            train_idx, val_idx = grouped_kfold(X.groups, n_splits=self.val_folds, seed=self.random_state)[0]
        items = self._items(X, yv)
        self.history_ = train_fusion(
            self, [items[i] for i in train_idx], None if val_idx is None else [items[i] for i in val_idx]
        )
        self.model_.eval()
        return self

    # -- prediction
    def predict(self, X) -> pd.DataFrame:
        from tqdm.auto import tqdm

        if not hasattr(self, "model_"):
            raise MemoError("the llm model is not trained yet; run `memo train llm` or call fit first.")
        items = self._items(X)
        dev = next(p for p in self.model_.trainable_modules()["head"].parameters()).device
        self.model_.eval()
        # batches of similar lengths pad little; positions count real tokens only, so a prompt scores the same
        # in any batch (up to float rounding)
        order = np.argsort([len(it["input_ids"]) for it in items], kind="stable")
        scores = np.zeros((len(items), len(self.targets_)), np.float32)
        with torch.no_grad():
            for start in tqdm(
                range(0, len(items), self.eval_batch_size),
                desc="llm predict",
                disable=not self.verbose,
                unit="batch",
            ):
                rows = order[start : start + self.eval_batch_size]
                batch = collate([items[i] for i in rows], self.model_.spec["pad_id"], self.padding_side)
                batch = {
                    k: ({s: t.to(dev) for s, t in v.items()} if isinstance(v, dict) else v.to(dev))
                    for k, v in batch.items()
                }
                scores[rows] = torch.sigmoid(self.model_(**batch)).float().cpu().numpy()
        return pd.DataFrame(
            np.clip(np.nan_to_num(scores, nan=0.5), 0, 1),
            index=pd.Index(X.ids, name="id"),
            columns=self.targets_,
        )

    # -- persistence: only what was trained
    def save(self, folder: str | Path) -> Path:
        from memo.models import describe
        from memo.store import atomic_write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model_.save_trained(folder)
        meta = {
            "params": self.get_params(),
            "streams": self.streams_,
            "stream_dims": self.stream_dims_,
            "targets": self.targets_,
            "backbone": describe(self.backbone_name),
            "history": getattr(self, "history_", []),
        }
        atomic_write_json(folder / META_FILE, meta)  # written last: a folder with it is complete
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> LLMFusion:
        from memo.models import model_revision

        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise MemoError(
                f"{folder} holds no trained llm model ({META_FILE} is missing); run `memo train llm`."
            )
        meta = json.loads((folder / META_FILE).read_text())
        self = cls(**meta["params"])
        if os.environ.get("MEMO_SKIP_REVISION_CHECK") != "1":
            rev = model_revision(self.backbone_name)
            if rev != meta["backbone"]["revision"]:
                raise MemoError(
                    f"backbone {self.backbone_name!r} changed since training (revision {rev}, trained on "
                    f"{meta['backbone']['revision']}); "
                    "restore it or retrain with `memo train llm`."
                )
        self.streams_, self.stream_dims_, self.targets_ = (
            meta["streams"],
            meta["stream_dims"],
            meta["targets"],
        )
        self.history_ = meta.get("history", [])
        self.model_, self.tokenizer_ = self._build(self.stream_dims_, self.targets_)
        self.model_.load_trained(folder)
        self.model_.to(self._device()).eval()
        return self
