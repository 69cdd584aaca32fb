"""MindMem: attention fusion of video, audio and text embeddings into a memorability score.

After MindMem (arXiv 2502.18371). Frozen-encoder embeddings of each modality go through:

    streams of a modality   (B, T_s, D_s) + mask (B, T_s), one per stream (vit, e5.title, ...)
      -> projection         Linear -> LayerNorm -> Dropout into the shared width W, plus a
                            learned stream embedding, so every row is a token (B, T_s, W)
      -> tokens             concatenated over the modality's streams (B, L, W) + mask (B, L)
      -> pooling            self-attention over the tokens, then attention-weighted pooling
                            (or a masked mean / max for the ablation) -> one vector (B, W)
      -> cross-attention    each modality's vector attends to the other modalities' vectors,
                            added back to its own (residual) -> (B, M, W)
      -> fusion head        concatenate (B, M*W) -> Linear -> ReLU -> Dropout -> Linear -> sigmoid,
                            one output per target, in [0, 1]

Missing data is masked, never zero-filled: padding rows and absent streams are excluded by the
masks of the self-attention and the pooling; a modality a video lacks altogether is replaced by a
learned 'missing' embedding and is never a key of the cross-attention, so a video with no data at
all still gets a prediction (a learned bias). Modality dropout during training teaches those
embeddings. Inputs are standardised with statistics of the training data only.

    model = MindMem(use=["text", "metadata"], width=256, epochs=40).fit(X, y)   # X: memo.store.Features
    model.predict(X)                                                           # DataFrame ids x targets
    model.save(folder); MindMem.load(folder)

The hyperparameters are [mindmem] of memo.toml (memo.config.MindMemConfig). This file is the
estimator (fit, predict, save, load); the torch modules of the diagram are
memo.baselines.mindmem_net, the training loop (AdamW, warm-up and cosine decay, modality dropout,
early stopping) memo.baselines.mindmem_train. They import torch at the top, like any model file;
the predictor registry imports this one only when a predictor is asked for, so `memo --help`
stays instant.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memo.baselines.mindmem_net import POOLINGS, MindMemNet
from memo.baselines.mindmem_train import TRAINING_PARAMS, predict_scores, train_net
from memo.config import MindMemConfig
from memo.errors import ConfigError, MemoError
from memo.losses import check_loss, regression_loss
from memo.predictors import PREDICTORS, Predictor
from memo.store import Features, atomic_write_bytes, atomic_write_json
from memo.streams import select

log = logging.getLogger(__name__)

DEFAULTS = MindMemConfig()
WEIGHTS = "model.safetensors"  # weights and scaler; tensors only, so loading runs no code


@PREDICTORS.register("mindmem")
class MindMem(Predictor):
    """MindMem attention fusion, scikit-learn shaped; hyperparameters are [mindmem] of memo.toml.

    Extra parameters beyond MindMemConfig: `random_state` (seeds torch and the batch order),
    `device` (auto | cpu | cuda | ...), `inference_drop` (modalities masked out at predict time:
    the 'zeroed at inference' ablation; training is unchanged).
    """

    name = "mindmem"

    def __init__(
        self,
        modalities: dict[str, list[str]] | None = None,
        use: list[str] | None = None,
        width: int = DEFAULTS.width,
        heads: int = DEFAULTS.heads,
        dropout: float = DEFAULTS.dropout,
        pooling: str = DEFAULTS.pooling,
        cross_attention: bool = DEFAULTS.cross_attention,
        modality_dropout: float = DEFAULTS.modality_dropout,
        loss: str = DEFAULTS.loss,
        rank_weight: float = DEFAULTS.rank_weight,
        rank_temperature: float = DEFAULTS.rank_temperature,
        lr: float = DEFAULTS.lr,
        weight_decay: float = DEFAULTS.weight_decay,
        epochs: int = DEFAULTS.epochs,
        batch_size: int = DEFAULTS.batch_size,
        warmup: float = DEFAULTS.warmup,
        grad_clip: float = DEFAULTS.grad_clip,
        valid_fraction: float = DEFAULTS.valid_fraction,
        patience: int = DEFAULTS.patience,
        amp: bool = DEFAULTS.amp,
        random_state: int = 0,
        device: str = "auto",
        inference_drop: list[str] | None = None,
    ):
        self.modalities = modalities
        self.use = use
        self.width = width
        self.heads = heads
        self.dropout = dropout
        self.pooling = pooling
        self.cross_attention = cross_attention
        self.modality_dropout = modality_dropout
        self.loss = loss
        self.rank_weight = rank_weight
        self.rank_temperature = rank_temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.warmup = warmup
        self.grad_clip = grad_clip
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.amp = amp
        self.random_state = random_state
        self.device = device
        self.inference_drop = inference_drop

    config_section = "mindmem"

    # -- which streams make which modality

    def _modality_map(self) -> dict[str, list[str]]:
        """The modalities in use -> their stream patterns, checked."""
        groups = self.modalities if self.modalities is not None else DEFAULTS.modalities
        use = list(self.use) if self.use else list(groups)
        unknown = [m for m in use if m not in groups]
        if unknown:
            raise ConfigError(
                f"[mindmem] use names modality {unknown[0]!r}, which [mindmem] modalities does not "
                f"define; define it or use one of: {', '.join(groups)}."
            )
        return {m: list(groups[m]) for m in use}

    @property
    def streams(self) -> list[str]:
        """Stream names and prefixes this model reads (what the caller loads into X)."""
        out: list[str] = []
        for patterns in self._modality_map().values():
            out += [p for p in patterns if p not in out]
        return out

    def _check_params(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"[mindmem] pooling = {self.pooling!r} is not known; choose one of: {', '.join(POOLINGS)}."
            )
        check_loss(self.loss, "mindmem")
        if self.width % self.heads:
            raise ConfigError(
                f"[mindmem] width = {self.width} is not a multiple of heads = {self.heads}; change one "
                "of them."
            )

    # -- inputs: Features -> standardised tensors

    def _fit_scaler(self, X: Features, streams: list[str]) -> dict[str, dict[str, np.ndarray]]:
        """Per stream and dimension: mean and std over the real rows of the training data.

        Named numeric streams (metadata, stats, ratings) hold counts with heavy tails (views,
        likes): a column that is never negative and whose 99th percentile passes 100 is taken
        as log1p first.
        """
        scaler = {}
        for s in streams:
            st = X.streams[s]
            rows = st.values[st.mask].astype(np.float64)  # (n_real_rows, D)
            rows[~np.isfinite(rows)] = np.nan  # a missing number inside a real row
            log_cols = np.zeros(st.dim, dtype=bool)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns come out NaN, handled below
                if st.names is not None:
                    nonneg = ~(rows < 0).any(axis=0)
                    q99 = np.nan_to_num(np.nanpercentile(rows, 99, axis=0)) if len(rows) else np.zeros(st.dim)
                    log_cols = nonneg & (q99 > 100)
                    rows[:, log_cols] = np.log1p(rows[:, log_cols])
                mean = np.nan_to_num(np.nanmean(rows, axis=0)) if len(rows) else np.zeros(st.dim)
                std = np.nan_to_num(np.nanstd(rows, axis=0)) if len(rows) else np.ones(st.dim)
            std[std < 1e-6] = 1.0
            scaler[s] = {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "log": log_cols}
        return scaler

    def _encode(self, X: Features) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Features -> stream -> (values (N, T, D) float32, mask (N, T) bool), standardised.

        A stream X lacks is an all-False mask (masked out, its values never read). Values in
        padding rows are left as they are (the masks keep them out); only non-finite numbers are
        replaced, because 0 * NaN is NaN even under a zero attention weight.
        """
        out = {}
        for s in self.stream_names_:
            dim = self.stream_dims_[s]
            st = X.streams.get(s)
            if st is None:
                out[s] = (torch.zeros(len(X), 1, dim), torch.zeros(len(X), 1, dtype=torch.bool))
                continue
            if st.dim != dim:
                raise MemoError(
                    f"stream {s} has {st.dim} dimensions but this mindmem model was trained on {dim}; "
                    "retrain it (`memo train mindmem`)."
                )
            sc = self.scaler_[s]
            v = st.values.astype(np.float32, copy=True)
            if sc["log"].any():
                v[..., sc["log"]] = np.log1p(np.clip(v[..., sc["log"]], 0, None))
            v = (v - sc["mean"]) / sc["std"]
            # a missing number inside a real row: the training mean
            v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
            out[s] = (torch.from_numpy(v), torch.from_numpy(np.asarray(st.mask, dtype=bool)))
        return out

    # -- training

    def _device(self) -> torch.device:
        from memo.models import pick_device

        return torch.device(pick_device(self.device))

    # videos; a Spearman on fewer is too noisy to pick an epoch by (measured on the sample set)
    MIN_VALID = 30

    def _validation_split(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole brands held out for early stopping; none when the held-out part would be too small.

        Without a validation part the model trains for `epochs` and keeps the last weights.
        """
        from memo.splits import grouped_kfold

        idx = np.arange(len(groups))
        n_groups = len(np.unique(groups))
        if (
            self.valid_fraction <= 0
            or self.patience <= 0
            or n_groups < 3
            or len(groups) * self.valid_fraction < self.MIN_VALID
        ):
            return idx, idx[:0]
        k = min(n_groups, max(2, round(1 / self.valid_fraction)))
        train, valid = grouped_kfold(groups, n_splits=k, seed=self.random_state)[0]
        return train, valid

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # MSE divided by each target's training variance (near 1, like the rank terms); memo.losses
        return regression_loss(
            logits, y, self.loss, self.rank_weight, self.rank_temperature, self.target_var_
        )

    def fit(self, X: Features, y: pd.DataFrame) -> MindMem:
        self._check_params()
        X, Y, self.notes_ = self._labelled(X, y)  # Y: (N, K)
        torch.manual_seed(self.random_state)  # the weights' initialisation
        gen = torch.Generator().manual_seed(self.random_state)  # the batch order and the modality dropout
        self.layout_, self.dropped_modalities_ = self._layout(X)
        if self.dropped_modalities_:
            self.notes_.append(
                f"modalities without data in the features are left out: {', '.join(self.dropped_modalities_)}"
            )
            log.warning("mindmem: %s", self.notes_[-1])
        self.stream_names_ = [s for m in self.layout_ for s in self.layout_[m]]
        self.stream_dims_ = {s: int(X.streams[s].dim) for s in self.stream_names_}
        self.scaler_ = self._fit_scaler(X, self.stream_names_)
        self.targets_ = list(y.columns)
        Yn = self._scale_targets(Y)  # (N, K) in [0, 1]

        device = self._device()
        tensors = self._encode(X)  # stream -> (values (N, T_s, D_s), mask (N, T_s))
        train_idx, valid_idx = self._validation_split(np.asarray(X.groups))
        self.target_var_ = torch.tensor(np.maximum(Yn[train_idx].var(axis=0), 1e-4), device=device)
        net = self._new_net(Yn[train_idx]).to(device)
        training = {k: getattr(self, k) for k in TRAINING_PARAMS}
        self.history_, self.best_epoch_ = train_net(
            net, tensors, Yn, train_idx, valid_idx, self._loss, gen, device, **training
        )
        self.net_ = net.eval()
        self.target_var_ = self.target_var_.cpu()
        return self

    def _labelled(self, X: Features, y: pd.DataFrame) -> tuple[Features, np.ndarray, list[str]]:
        """The videos with every target: their Features, targets (N, K), and a note of what was left out."""
        missing = [i for i in X.ids if i not in y.index]
        if missing:
            raise MemoError(
                f"video {missing[0]!r} of X has no row in y; pass targets for every training video."
            )
        Y = y.loc[X.ids].to_numpy(dtype=np.float64)  # (N, K)
        keep = np.isfinite(Y).all(axis=1)
        notes = []  # what was left out, for memo.evaluation.compare's tables and the model's meta.json
        if not keep.all():
            notes.append(f"{int((~keep).sum())} training video(s) without every target are left out")
            log.warning("mindmem: %s", notes[-1])
            X, Y = X.take(np.flatnonzero(keep)), Y[keep]
        if len(X) < 4:
            raise MemoError(
                f"mindmem needs at least 4 labelled videos to train, got {len(X)}; add data or use a "
                "simpler predictor."
            )
        return X, Y, notes

    def _layout(self, X: Features) -> tuple[dict[str, list[str]], list[str]]:
        """modality -> its streams with data in X, and the modalities without any (a stream with no real row
        cannot be learnt)."""
        layout, dropped = {}, []
        for m, patterns in self._modality_map().items():
            found = [
                s
                for s in select(patterns, sorted(X.streams), strict=False)
                if X.streams[s].dim > 0 and X.streams[s].present.any()
            ]
            if found:
                layout[m] = found
            else:
                dropped.append(m)
        if not layout:
            raise MemoError(
                f"none of the mindmem modalities ({', '.join(self._modality_map())}) has data in the "
                "features given; "
                "compute them (`memo features`) or change [mindmem] use."
            )
        return layout, dropped

    def _scale_targets(self, Y: np.ndarray) -> np.ndarray:
        """(N, K) targets -> (N, K) float32 in [0, 1]: the head ends in a sigmoid, so a target outside [0, 1]
        is mapped into it by its training range."""
        lo, hi = np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
        inside = (lo >= 0) & (hi <= 1)
        self.target_lo_ = np.where(inside, 0.0, lo)
        self.target_hi_ = np.where(inside, 1.0, np.where(hi > lo, hi, lo + 1))
        return ((Y - self.target_lo_) / (self.target_hi_ - self.target_lo_)).astype(np.float32)

    def _network(self) -> MindMemNet:
        """The network of the fitted layout and hyperparameters, its weights fresh."""
        return MindMemNet(
            self.layout_,
            self.stream_dims_,
            len(self.targets_),
            self.width,
            self.heads,
            self.dropout,
            self.pooling,
            self.cross_attention,
        )

    def _new_net(self, Yn_train: np.ndarray) -> MindMemNet:
        """A fresh network for the fitted layout, its output bias at the training targets' mean (Yn_train: (n,
        K))."""
        net = self._network()
        with torch.no_grad():  # start at the mean score: the head only has to learn the deviations
            mean = torch.from_numpy(Yn_train.mean(axis=0)).clamp(0.02, 0.98)  # (K,)
            net.head[-1].bias.copy_(torch.log(mean / (1 - mean)))
        return net

    # -- prediction

    def predict(self, X: Features) -> pd.DataFrame:
        if not hasattr(self, "net_"):
            raise MemoError(
                "this mindmem model is not trained; call fit first, or train one with `memo train mindmem`."
            )
        drop_names = list(self.inference_drop or [])
        known = set(self.layout_) | set(self.dropped_modalities_)
        unknown = [m for m in drop_names if m not in known]
        if unknown:
            raise ConfigError(
                f"inference_drop names modality {unknown[0]!r}, which this model does not have; choose "
                f"from: {', '.join(self.layout_)}."
            )
        drop = [self.net_.modalities.index(m) for m in drop_names if m in self.layout_]
        device = self._device()
        self.net_.to(device)
        scores = predict_scores(self.net_, self._encode(X), device, self.batch_size, self.amp, drop)
        scores = np.clip(np.nan_to_num(scores, nan=0.5), 0.0, 1.0)  # (N, K) on the sigmoid's scale
        # back to each target's own scale: fit mapped a target outside [0, 1] into it by its training range
        scores = self.target_lo_ + scores * (self.target_hi_ - self.target_lo_)
        return pd.DataFrame(scores, index=pd.Index(list(X.ids), name="id"), columns=self.targets_)

    # -- persistence

    def save(self, folder: str | Path) -> Path:
        """Write mindmem.json (parameters, layout, history) and model.safetensors (weights, scaler),
        atomically.

        safetensors holds tensors and nothing else, so loading a model folder never runs code.
        """
        from safetensors.torch import save as save_tensors

        if not hasattr(self, "net_"):
            raise MemoError("this mindmem model is not trained; there is nothing to save yet.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"net/{k}": v.detach().cpu().clone().contiguous() for k, v in self.net_.state_dict().items()
        }
        for s, sc in self.scaler_.items():  # stream names hold dots, never '/'
            tensors.update(
                {f"scaler/{s}/{k}": torch.from_numpy(np.ascontiguousarray(a)) for k, a in sc.items()}
            )
        tensors["target_var"] = self.target_var_.detach().cpu().clone().contiguous()
        atomic_write_bytes(folder / WEIGHTS, save_tensors(tensors))
        meta = {
            "predictor": self.name,
            "params": self.get_params(),
            # a list: the JSON writer sorts keys, the order matters
            "layout": [[m, s] for m, s in self.layout_.items()],
            "dropped_modalities": self.dropped_modalities_,
            "notes": self.notes_,
            "stream_dims": self.stream_dims_,
            "targets": self.targets_,
            "target_lo": [float(v) for v in self.target_lo_],
            "target_hi": [float(v) for v in self.target_hi_],
            "best_epoch": self.best_epoch_,
            "history": self.history_,
            "torch": torch.__version__,
        }
        atomic_write_json(folder / "mindmem.json", meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> MindMem:
        from safetensors.torch import load as load_tensors

        folder = Path(folder)
        if (folder / "model.pt").is_file() and not (folder / WEIGHTS).is_file():
            raise MemoError(
                f"{folder / 'model.pt'} is a torch pickle from an older memo, which memo no longer loads; "
                "retrain it with `memo train mindmem`."
            )
        if not (folder / "mindmem.json").is_file() or not (folder / WEIGHTS).is_file():
            raise MemoError(f"{folder} holds no saved mindmem model; train one with `memo train mindmem`.")
        try:
            meta = json.loads((folder / "mindmem.json").read_text())
            tensors = load_tensors((folder / WEIGHTS).read_bytes())
        # a truncated or foreign file: whatever the parser says, it is not a model memo saved
        except Exception as e:
            raise MemoError(
                f"{folder} holds a damaged mindmem model ({type(e).__name__}); retrain it with `memo "
                "train mindmem`."
            ) from e
        blob = {"state_dict": {}, "scaler": {}, "target_var": tensors.pop("target_var", None)}
        for key, t in tensors.items():
            kind, _, rest = key.partition("/")
            if kind == "net":
                blob["state_dict"][rest] = t
            elif kind == "scaler":
                stream, _, k = rest.rpartition("/")
                blob["scaler"].setdefault(stream, {})[k] = t
        params = meta["params"]
        if device is not None:
            params["device"] = device
        self = cls(**params)
        self.layout_ = {m: list(s) for m, s in meta["layout"]}
        self.dropped_modalities_ = meta["dropped_modalities"]
        self.notes_ = meta.get("notes", [])
        self.stream_names_ = [s for m in self.layout_ for s in self.layout_[m]]
        self.stream_dims_ = {s: int(d) for s, d in meta["stream_dims"].items()}
        self.scaler_ = {s: {k: t.numpy() for k, t in sc.items()} for s, sc in blob["scaler"].items()}
        self.targets_ = meta["targets"]
        self.target_lo_, self.target_hi_ = np.array(meta["target_lo"]), np.array(meta["target_hi"])
        self.target_var_ = blob["target_var"]
        self.best_epoch_, self.history_ = meta["best_epoch"], meta["history"]
        net = self._network()
        try:
            net.load_state_dict(blob["state_dict"])
        except RuntimeError as e:  # missing or reshaped weights: the two files do not belong together
            raise MemoError(
                f"{folder / WEIGHTS} does not match {folder / 'mindmem.json'}; retrain it with `memo "
                "train mindmem`."
            ) from e
        self.net_ = net.eval()
        return self
