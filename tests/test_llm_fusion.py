"""LLM fusion (llm_fusion/): the tiny random Gemma-3 from memo.samplekit.tiny_models, trained with
transformers.Trainer on CPU.

Features are built here with a planted signal (a score that depends on the `vit` stream), so the
tests can tell whether the features reach the model. The tiny Gemma is random: these tests check
plumbing (training, saving, masking, padding), not what a real Gemma knows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from memo.errors import ConfigError, MemoError  # noqa: E402
from memo.store import Features, Stream  # noqa: E402


def make_features(n: int = 24, seed: int = 0) -> tuple[Features, pd.DataFrame]:
    """N videos in 6 brands: vit (N, 3, 16) frames (last frame missing), e5.title (N, 1, 8), metadata (N, 1,
    3)."""
    rng = np.random.default_rng(seed)
    ids = [f"v{i:02d}" for i in range(n)]
    vit = rng.normal(size=(n, 3, 16)).astype(np.float32)
    vit_mask = np.ones((n, 3), bool)
    vit_mask[:, 2] = False
    e5 = rng.normal(size=(n, 1, 8)).astype(np.float32)
    e5_mask = np.ones((n, 1), bool)
    e5_mask[3] = False  # one video lacks its title embedding
    meta = rng.normal(size=(n, 1, 3)).astype(np.float32)
    signal = vit[:, :2, 0].mean(1) * 2.0
    y = pd.DataFrame(
        {"memorability_score": 1 / (1 + np.exp(-signal)), "brand_memorability": 1 / (1 + np.exp(signal))},
        index=ids,
    )
    words = ["bank", "savings", "funny dog", "car", "music", "family"]
    table = pd.DataFrame(
        {
            "title": [f"{words[i % 6]} ad number {i}" for i in range(n)],
            "description": [
                "A funny advertisement for a bank uses a talking dog to explain savings accounts."
            ]
            * n,
            "transcript": [
                ("the narrator speaks in a calm warm voice " * (1 + i % 4)).strip() for i in range(n)
            ],
        },
        index=ids,
    )
    streams = {
        "vit": Stream(vit, vit_mask),
        "e5.title": Stream(e5, e5_mask),
        "metadata.absolute": Stream(meta, np.ones((n, 1), bool), ["a", "b", "c"]),
    }
    return Features(ids, np.array([f"brand{i % 6}" for i in range(n)]), table, streams), y


def make_model(path, **kw):
    from memo.llm_fusion.model import LLMFusion

    params = dict(
        backbone=str(path),
        batch_size=4,
        lr=3e-3,
        max_steps=24,
        device="cpu",
        verbose=False,
        val_folds=0,
        lora_r=4,
        lora_alpha=8,
        head_hidden=32,
        max_length=256,
        eval_batch_size=8,
    )
    params.update(kw)
    return LLMFusion(**params)


@pytest.fixture(scope="module")
def data():
    return make_features()


@pytest.fixture(scope="module")
def fitted(tiny_gemma_path, data):
    X, y = data
    return make_model(tiny_gemma_path, random_state=0).fit(X, y)


def test_registered_and_from_config(tiny_gemma_path):
    from memo.config import Config
    from memo.llm_fusion.model import LLMFusion
    from memo.predictors import PREDICTORS

    assert PREDICTORS.get("llm") is LLMFusion
    cfg = Config()
    cfg.models.llm = str(tiny_gemma_path)
    cfg.llm.streams = ["vit", "rationales"]
    cfg.project.seed = 7
    m = LLMFusion.from_config(cfg, device="cpu")
    assert m.backbone == str(tiny_gemma_path) and m.random_state == 7 and m.device == "cpu"
    # selectors as written; memo.streams reads rationales as rationale
    assert m.streams == ["vit", "rationales"] and m.rationale_log
    assert set(m.get_params()) >= {"backbone", "streams", "lora_r", "loss"}
    cfg.llm.backbone = "somewhere/else"
    assert LLMFusion.from_config(cfg).backbone == "somewhere/else"
    # one default: the estimator alone loads what memo.toml's defaults load
    assert LLMFusion().backbone_name == Config().models.llm == LLMFusion.from_config(Config()).backbone


def test_the_predictor_module_does_not_import_the_trainer():
    """memo.llm_fusion.train imports transformers' Trainer at its top, so only `fit` imports it (predict's
    batches come from modules.collate)."""
    import subprocess
    import sys

    code = (
        "import sys; import memo.llm_fusion.model; print(sorted(m for m in ('trl', 'transformers.trainer', "
        "'memo.llm_fusion.train') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_training_lowers_the_loss(fitted):
    losses = [h["loss"] for h in fitted.history_ if "loss" in h]
    assert len(losses) >= 3
    assert losses[-1] < losses[0], losses


def test_predictions_shape_and_range(fitted, data):
    X, y = data
    p = fitted.predict(X)
    assert list(p.index) == X.ids and list(p.columns) == list(y.columns)
    assert p.notna().all().all() and ((p >= 0) & (p <= 1)).all().all()


def test_save_load_identical_and_small(fitted, data, tmp_path, tiny_gemma_path):
    from safetensors.torch import load_file

    from memo.llm_fusion.model import LLMFusion

    X, _ = data
    folder = fitted.save(tmp_path / "llm")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["adapter_config.json", "adapter_model.safetensors", "fusion.json", "fusion.safetensors"]
    # only trained parts: LoRA matrices, projectors (with their z-score statistics), head; never the backbone
    lora = load_file(str(folder / "adapter_model.safetensors"))
    assert lora and all("lora_" in k for k in lora)
    fusion = load_file(str(folder / "fusion.safetensors"))
    assert {k.split(".")[0] for k in fusion} == {"projectors", "head"}
    assert not any("embed_tokens" in k for k in [*lora, *fusion])
    backbone_bytes = sum(p.stat().st_size for p in tiny_gemma_path.glob("*.safetensors"))
    saved_bytes = sum(p.stat().st_size for p in folder.iterdir())
    assert saved_bytes < backbone_bytes
    assert json.loads((folder / "fusion.json").read_text())["streams"] == [
        "vit",
        "e5.title",
        "metadata.absolute",
    ]

    loaded = LLMFusion.load(folder)
    np.testing.assert_array_equal(loaded.predict(X).to_numpy(), fitted.predict(X).to_numpy())


def test_soft_tokens_reach_the_model(fitted, data):
    X, _ = data
    base = fitted.predict(X).to_numpy()
    shuffled = Features(X.ids, X.groups, X.table, dict(X.streams))
    vit = X.streams["vit"]
    shuffled.streams["vit"] = Stream(vit.values[::-1].copy(), vit.mask)
    changed = fitted.predict(shuffled).to_numpy()
    assert np.abs(changed - base).max() > 1e-4

    # a masked-out (missing) stream is invisible: changing its values changes nothing
    e5 = X.streams["e5.title"]
    values = e5.values.copy()
    values[3] = 100.0  # video 3 has no title embedding (mask False)
    hidden = Features(X.ids, X.groups, X.table, {**X.streams, "e5.title": Stream(values, e5.mask)})
    np.testing.assert_allclose(fitted.predict(hidden).to_numpy(), base, atol=1e-6)


def test_padding_side_and_batch_size_do_not_change_scores(fitted, data):
    X, _ = data
    left = fitted.predict(X).to_numpy()
    old = fitted.padding_side, fitted.eval_batch_size
    try:
        fitted.padding_side = "right"
        right = fitted.predict(X).to_numpy()
        fitted.eval_batch_size = 1  # no padding at all
        single = fitted.predict(X).to_numpy()
    finally:
        fitted.padding_side, fitted.eval_batch_size = old
    np.testing.assert_allclose(left, right, atol=1e-5)
    np.testing.assert_allclose(left, single, atol=1e-5)


def test_no_vocabulary_logits_are_built(tiny_gemma_path, data):
    """A global forward hook sees every module output in training and prediction: none is vocabulary-wide."""
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(tiny_gemma_path).vocab_size
    widest = []

    def hook(module, args, output):
        out = output[0] if isinstance(output, tuple) else getattr(output, "last_hidden_state", output)
        if torch.is_tensor(out):
            widest.append((type(module).__name__, out.shape[-1]))

    X, y = data
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        m = make_model(tiny_gemma_path, max_steps=2).fit(X, y)
        m.predict(X.take(np.arange(4)))
    finally:
        handle.remove()
    assert widest, "the hook saw nothing"
    assert not [w for w in widest if w[1] == vocab]
    assert not any("lm_head" in n for n, _ in m.model_.named_modules())


def test_validation_fold_and_rank_loss(tiny_gemma_path, data):
    X, y = data
    m = make_model(
        tiny_gemma_path,
        val_folds=3,
        epochs=2,
        max_steps=-1,
        loss="mse+pairwise",
        pooling="attention",
        projector="mlp",
        projector_hidden=16,
    )
    m.fit(X, y)
    evals = [h for h in m.history_ if "eval_spearman" in h]
    assert len(evals) == 2  # evaluated once per epoch on the held-out brands
    assert all(np.isfinite(h["eval_loss"]) for h in evals)


def test_prompt_keeps_every_soft_token_slot(tiny_gemma_path):
    from transformers import AutoTokenizer

    from memo.llm_fusion.model import build_prompt_ids, prompt_body
    from memo.llm_fusion.modules import SOFT_MARKER, soft_marker_id

    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    marker_id = soft_marker_id(tok)
    row = pd.Series(
        {
            "title": f"a bank {SOFT_MARKER} ad",
            "description": "money " * 500,
            "rationale.humor": "A talking dog makes it funny.",
        }
    )
    body = prompt_body(row, ["title", "description"], words=400)
    assert SOFT_MARKER not in body and "humor: A talking dog" in body
    streams = ["vit", "e5.title", "rationale.humor"]
    ids = build_prompt_ids(tok, body, streams, k=2, marker=SOFT_MARKER, max_length=120)
    assert len(ids) <= 120 and ids.count(marker_id) == 6
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    with pytest.raises(ConfigError):
        build_prompt_ids(tok, body, streams, k=2, marker=SOFT_MARKER, max_length=10)


def test_multimodal_checkpoint_uses_its_language_model(tmp_path):
    from memo.llm_fusion.modules import load_backbone
    from memo.samplekit.tiny_models import tiny_gemma3

    decoder, tok = load_backbone(str(tiny_gemma3(tmp_path / "gemma3mm", multimodal=True)))
    assert type(decoder).__name__ == "Gemma3TextModel"
    assert not any("vision" in n for n, _ in decoder.named_modules())


def test_errors_name_the_fix(tiny_gemma_path, data, tmp_path):
    from memo.llm_fusion.model import LLMFusion

    X, y = data
    with pytest.raises(ConfigError, match="loss"):
        make_model(tiny_gemma_path, loss="huber").fit(X, y)
    with pytest.raises(MemoError, match="memo train llm"):
        LLMFusion.load(tmp_path / "nothing")
    with pytest.raises(MemoError, match="not trained"):
        make_model(tiny_gemma_path).predict(X)


def test_rationales_from_the_log_join_the_prompt(tmp_path):
    from memo.llm_fusion.model import prompt_body, rationale_texts
    from memo.rationales.log import GenerationLog, Record

    log_file = tmp_path / "log.sqlite"
    with GenerationLog(log_file) as log:
        log.add(
            [
                Record(
                    key="a",
                    video="v1",
                    response="Old zero-shot humor text.",
                    aspect="humor",
                    stage="zero-shot",
                ),
                Record(
                    key="b", video="v1", response="Few-shot humor text.", aspect="humor", stage="few-shot"
                ),
                Record(
                    key="c",
                    video="v1",
                    response="Newer zero-shot humor text.",
                    aspect="humor",
                    stage="zero-shot",
                ),
                Record(key="d", video="v1", response="Warm and sad.", aspect="emotion", stage="zero-shot"),
            ]
        )
    got = rationale_texts(log_file, ["v1", "v2"])
    assert got == {"v1": {"humor": "Few-shot humor text.", "emotion": "Warm and sad."}}
    # once `memo rationale` has recorded its choice (e.g. zero-shot after few_shot = 0), that text wins
    with GenerationLog(log_file) as log:
        log.set_final({("v1", "humor"): "c"})
    assert rationale_texts(log_file, ["v1"])["v1"] == {
        "humor": "Newer zero-shot humor text.",
        "emotion": "Warm and sad.",
    }
    with GenerationLog(log_file) as log:
        log.set_final({("v1", "humor"): "b"})  # a later run's choice replaces it
    assert rationale_texts(log_file, ["v1"])["v1"]["humor"] == "Few-shot humor text."
    assert rationale_texts(tmp_path / "none.sqlite", ["v1"]) == {}
    body = prompt_body(
        pd.Series({"title": "A bank", **{f"rationale.{a}": t for a, t in got["v1"].items()}}), ["title"], 50
    )
    assert "- humor: Few-shot humor text." in body and "- emotion: Warm and sad." in body


def test_text_only_model(tiny_gemma_path, data):
    """With no feature stream at all (e.g. VIDEM's public dev split has texts only), the prompt alone is
    read."""
    X, y = data
    text_only = Features(X.ids, X.groups, X.table, {})
    m = make_model(tiny_gemma_path, max_steps=2).fit(text_only, y)
    assert m.streams_ == []
    p = m.predict(text_only)
    assert p.shape == (len(X), 2) and p.notna().all().all()


def test_memo_init_runs_2_and_3_exercise_the_whole_card(tmp_path, monkeypatch):
    """`memo init`'s run 3 on the sample data with tiny models: run 2 writes humor and emotion rationales and
    fits the Gemma-3 fusion on one CV split (killed in its CV, it resumes at the next fold), run 3 picks per
    target among runs 1, 2 and their rank average on grouped CV, fits run 2 on all videos only if a pick takes
    it, and its run file is valid."""
    from memo.llm_fusion.model import LLMFusion
    from memo.submission import submit_runs, validate_run_file
    from tests.projects import Killed, sample_project

    settings = {
        "evaluate.bootstrap": 50,
        "evaluate.repeats": 2,
        "llm.epochs": 1,
        "rationale.max_new_tokens": 6,
    }
    project = sample_project(
        tmp_path, settings, n_brands_dev=5, videos_per_brand=3, n_brands_test=2, seconds=1.0, size=32, fps=4
    )
    run2 = project.config.runs["2"]
    assert (
        run2.predictor == "llm" and run2.aspects == ["humor", "emotion"] and project.config.runs["3"].choose
    )
    fits: list[int] = []
    killed: list[bool] = []
    real = LLMFusion.fit

    def counted(self, X, y):
        fits.append(len(X))
        # folds 0 and 1 of run 2's CV done (the CV comes first), killed in fold 2
        if len(fits) == 3 and not killed:
            killed.append(True)
            raise Killed
        assert sorted(s for s in X.streams if s.startswith("rationale.")) == [
            "rationale.emotion",
            "rationale.humor",
        ]
        return real(self, X, y)

    monkeypatch.setattr(LLMFusion, "fit", counted)
    with pytest.raises(Killed):
        submit_runs(project, ["3"])
    fits.clear()
    (path,) = submit_runs(project, ["3"])
    manifest = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
    chosen = manifest["cv"]["chosen"]
    assert set(chosen) == set(project.targets) and set(chosen.values()) <= {"rank average", "run 1", "run 2"}
    taken = bool({"rank average", "run 2"} & set(chosen.values()))
    # the 3 folds left of one CV split; the full fit only if a target takes run 2
    assert len(fits) == 5 - 2 + taken
    assert validate_run_file(path, project) == []
    fits.clear()
    submit_runs(project, ["2"])  # run 2's own run file reuses its CV: only the full fit, unless run 3 made it
    assert len(fits) == 1 - taken
    # the fitted run 2 quotes its two aspects' rationales, not other aspects the log holds
    from memo.features import load_features
    from memo.rationales.log import GenerationLog, Record, log_file
    from memo.submission.plan import resolve_run, run_folder

    plan = resolve_run(project, "2")
    model = LLMFusion.load(run_folder(project, plan) / "model")
    vid = project.dataset.labelled().ids[0]
    with GenerationLog(log_file(project.workdir)) as log:
        # memo rationale recorded what it embedded
        assert {a for (_, a) in log.final_keys([vid])} == {"humor", "emotion"}
        log.add(
            [
                Record(
                    key="extra",
                    video=vid,
                    response="Zebra stripes everywhere.",
                    aspect="narrative",
                    stage="few-shot",
                )
            ]
        )
    X = load_features(project, "dev", plan.streams).take([0])
    text = model.tokenizer_.decode(model._prompts(X)[0])
    assert "- humor:" in text and "- emotion:" in text and "Zebra" not in text


def test_trainer_logs_are_memo_lines_not_raw_dicts(tiny_gemma_path, data, capsys, monkeypatch):
    """With progress on, the fusion's Trainer shows its bars and says each log as one readable line
    through memo's logger; none of its raw log dicts reach the output."""
    import memo.llm_fusion.train as fusion_train

    said = []
    monkeypatch.setattr(fusion_train, "say", said.append)
    X, y = data
    make_model(tiny_gemma_path, verbose=True, val_folds=2, epochs=2, max_steps=-1).fit(X, y)
    out = capsys.readouterr()
    assert "{'loss'" not in out.out + out.err and "{'eval_loss'" not in out.out + out.err
    assert any(line.startswith("llm fusion, epoch ") and " loss " in line for line in said), said
    assert any("eval spearman" in line for line in said), said
