"""The LLM stages on a CPU (issue #32): [models] precision, the backbone read once per process, batches
of similar lengths, and the cost said from a fit's first step.

The suite runs in fp32 (conftest makes `precision = "auto"` see a CPU without native bf16, whatever the
machine has); the bf16 tests here force it on the tiny Gemma, which is slow but small where the CPU
only emulates bf16.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from memo.errors import ConfigError  # noqa: E402
from tests.test_llm_fusion import make_features, make_model  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return make_features()


# ----------------------------------------------------------------------------- precision


def test_precision_resolution(monkeypatch):
    """auto: bf16 on a CPU with native bf16 only, each stage's own default on an accelerator; fp32 and bf16
    force."""
    import memo.models as models

    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert not models.use_bf16("auto", "cpu")
    assert models.use_bf16("auto", "cuda") and not models.use_bf16("auto", "cuda", accelerator_default=False)
    assert not models.use_bf16("fp32", "cuda")
    said = []
    monkeypatch.setattr("memo.progress.say", said.append)
    monkeypatch.setattr(models, "_WARNED", set())
    assert models.use_bf16("bf16", "cpu")
    assert said and "slower" in said[0]  # forced on a CPU that emulates it: said once
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.use_bf16("auto", "cpu")


def test_precision_is_a_checked_key(tmp_path):
    from memo.config import Config, apply_overrides

    cfg = Config()
    assert cfg.models.precision == "auto"
    with pytest.raises(ConfigError, match="one of auto, fp32, bf16"):
        apply_overrides(cfg, ["models.precision=fp16"])


def test_fusion_and_writer_follow_precision(tiny_gemma_path, monkeypatch):
    """[models] precision reaches the fusion (from_config) and the writer (writer_for)."""
    import memo.models as models
    from memo.config import Config, apply_overrides
    from memo.llm_fusion.model import LLMFusion
    from memo.project import Project
    from memo.rationales.runner import writer_for

    cfg = Config()
    apply_overrides(cfg, ["models.precision=bf16", f"models.llm={tiny_gemma_path}"])
    p = LLMFusion.from_config(cfg, device="cpu")
    assert p.precision == "bf16" and p._bf16()
    assert not LLMFusion.from_config(cfg, device="cpu", bf16=False)._bf16()  # [llm] bf16 = false: fp32
    writer = writer_for(Project(cfg), "cpu").load()
    assert next(writer._model.parameters()).dtype == torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    cfg = Config()
    apply_overrides(cfg, [f"models.llm={tiny_gemma_path}"])  # auto on a CPU without bf16
    assert next(writer_for(Project(cfg), "cpu").load()._model.parameters()).dtype == torch.float32


def test_bf16_scores_agree_with_fp32(tiny_gemma_path, data, tmp_path):
    """The same trained fusion model predicts in bf16 (the backbone loaded in bf16) close to fp32: the
    scores keep their order and move little."""
    from memo.llm_fusion.model import LLMFusion
    from memo.metrics import spearman

    X, y = data
    fp32 = make_model(tiny_gemma_path, precision="fp32", max_steps=8).fit(X, y)
    fp32.save(tmp_path / "m")
    as_bf16 = LLMFusion.load(tmp_path / "m").set_params(precision="bf16")
    as_bf16.model_, as_bf16.tokenizer_ = as_bf16._build(as_bf16.stream_dims_, as_bf16.targets_)
    as_bf16.model_.load_trained(tmp_path / "m")
    assert next(as_bf16.model_.decoder.parameters()).dtype == torch.bfloat16
    a, b = fp32.predict(X), as_bf16.predict(X)
    for t in a.columns:
        assert spearman(a[t].to_numpy(), b[t].to_numpy()) > 0.9
    assert float((a - b).abs().max().max()) < 0.05


# ----------------------------------------------------------------------------- the backbone read once


def test_reused_backbone_gives_the_same_fit_and_stays_untouched(tiny_gemma_path, data):
    """A fit whose backbone is reused from an earlier fit equals one that read it from disk, and training
    never writes the shared weights."""
    from memo.llm_fusion import modules

    X, y = data
    modules._LOADED.clear()
    cold = make_model(tiny_gemma_path, max_steps=6).fit(X, y)
    (shared,) = modules._LOADED.values()
    before = {k: v.clone() for k, v in shared[0].state_dict().items()}
    warm = make_model(tiny_gemma_path, max_steps=6).fit(X, y)
    assert len(modules._LOADED) == 1
    np.testing.assert_array_equal(cold.predict(X).to_numpy(), warm.predict(X).to_numpy())
    after = shared[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the shared tensors are the very ones both models read through their LoRA-wrapped layers
    w = dict(shared[0].named_parameters())["layers.0.self_attn.q_proj.weight"]
    q = cold.model_.decoder.get_base_model().layers[0].self_attn.q_proj
    assert q.base_layer.weight is w


# ----------------------------------------------------------------------------- batches of similar lengths


def test_length_buckets_cover_each_video_once_per_epoch_and_pad_less():
    from memo.llm_fusion.train import LengthBuckets, padded_share

    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 400, size=61).tolist()
    s = LengthBuckets(lengths, batch_size=8, window=4, seed=3)
    epochs = []
    for e in range(3):
        s.set_epoch(e)
        order = list(s)
        assert sorted(order) == list(range(61)) and len(s) == 61
        batches = s.batches()
        assert [len(b) for b in batches[:-1]] == [8] * 7 and len(batches[-1]) == 5  # short one last
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # batches change between epochs
    random = [list(rng.permutation(61)[i : i + 8]) for i in range(0, 61, 8)]
    assert padded_share(lengths, epochs[0]) < padded_share(lengths, random) / 2


def test_training_uses_length_buckets(tiny_gemma_path, data, monkeypatch):
    from memo.llm_fusion import train

    seen = []
    real = train.LengthBuckets.batches
    monkeypatch.setattr(train.LengthBuckets, "batches", lambda self: seen.append(1) or real(self))
    X, y = data
    make_model(tiny_gemma_path, max_steps=2).fit(X, y)
    assert seen


def test_prediction_in_length_order_returns_the_input_order(tiny_gemma_path, data):
    """Prediction batches videos by length and puts the scores back in X's order: the same scores as one
    video at a time."""
    X, y = data
    m = make_model(tiny_gemma_path, max_steps=2).fit(X, y)
    batched = m.predict(X).to_numpy()
    m.eval_batch_size = 1
    np.testing.assert_allclose(m.predict(X).to_numpy(), batched, atol=1e-5)


# ----------------------------------------------------------------------------- the cost, said first


def test_a_cpu_fit_says_its_cost_from_its_first_step(tiny_gemma_path, data, monkeypatch):
    import memo.llm_fusion.train as fusion_train

    said = []
    monkeypatch.setattr(fusion_train, "say", said.append)
    X, y = data
    make_model(tiny_gemma_path, max_steps=-1, epochs=2, val_folds=2).fit(X, y)
    cost = [s for s in said if "(its first step)" in s]
    assert len(cost) == 1, said
    assert cost[0].startswith("llm fusion on cpu: ") and "evaluations of" in cost[0] and "Ctrl-C" in cost[0]
