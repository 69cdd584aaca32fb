"""One process of test_distributed's DDP check (run by torchrun, not collected by pytest).

Fits the fusion model through FusionTrainer and writes what it saw to OUT/rank<r>.{json,npz}.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from memo.features import load_features
from memo.llm_fusion import train as fusion_train
from memo.llm_fusion.model import LLMFusion
from memo.project import Project

toml, out = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])
seen = {"labels": []}


class Watched(fusion_train.FusionTrainer):
    """The real trainer, watched: trained weights before the first step, the rows each process trains on."""

    def train(self, *args, **kwargs):
        seen["start"] = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        result = super().train(*args, **kwargs)
        seen["world_size"], seen["wrapped"] = self.args.world_size, type(self.model_wrapped).__name__
        seen["best"], seen["steps"] = self.state.best_model_checkpoint, self.state.global_step
        return result

    def compute_loss(self, model, inputs, *args, **kwargs):
        if model.training:
            seen["labels"] += inputs["labels"].float().cpu().numpy().round(6).tolist()
        return super().compute_loss(model, inputs, *args, **kwargs)


fusion_train.FusionTrainer = Watched  # train_fusion looks the class up when it runs
project = Project.open(toml)
X = load_features(project, "dev", ["metadata"])  # streams read from the table: no feature run needed
y = project.dataset.splits["dev"].table.loc[X.ids, project.targets]
# val_folds=2: a brand-held-out validation fold, per-epoch evaluation and the best checkpoint reloaded at
# the end, as `memo evaluate` and `memo submit` train it; one step per epoch here, and with this seed
# step 3 is the best of 4 (step 4 only ties it), so the reload really changes the weights
model = LLMFusion.from_config(
    project.config,
    device="cpu",
    streams=("metadata",),
    max_steps=4,
    batch_size=2,
    eval_batch_size=4,
    val_folds=2,
    lora_r=4,
    lora_alpha=8,
    head_hidden=16,
    max_length=128,
    lr=1e-2,
    warmup_ratio=0.0,
    verbose=False,
)
model.fit(X, y)
end = {n: p.detach() for n, p in model.model_.named_parameters() if p.requires_grad}
np.savez(out / f"rank{rank}.npz", **{n: t.numpy() for n, t in end.items()})
(out / f"rank{rank}.json").write_text(
    json.dumps(
        {
            "world_size": seen["world_size"],
            "wrapped": seen["wrapped"],
            "initialized": torch.distributed.is_initialized(),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "labels": seen["labels"],
            "changed": sorted(n for n in end if not torch.equal(end[n], seen["start"][n])),
            "evaluated": any("eval_spearman" in h for h in model.history_),
            "best": seen["best"],
            "steps": seen["steps"],
            "scores": model.predict(X).to_numpy().tolist(),
        }
    )
)
