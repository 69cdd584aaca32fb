"""memo.toml's keys: every key has a meaning, enumerated keys are Literal types refused at load and at --set
with one sentence, and `memo config` prints keys, values and meanings."""

import dataclasses
import subprocess
import sys
import tomllib
import typing

import pytest
from typer.testing import CliRunner

from memo.cli import app
from memo.config import Config, RunConfig, choices, describe, from_dict, load_config, set_option
from memo.config_schema import meaning
from memo.errors import ConfigError


def _sections() -> list[type]:
    """Every dataclass memo.toml holds: the root, its sections and the classes of [runs.N], [aspects.NAME]."""
    out = [Config]
    for tp in typing.get_type_hints(Config).values():
        tp = typing.get_args(tp)[-1] if typing.get_origin(tp) is dict else tp
        if dataclasses.is_dataclass(tp):
            out.append(tp)
    return out


def test_every_key_of_every_section_has_a_one_line_meaning():
    assert {c.__name__ for c in _sections()} >= {"ProjectConfig", "LLMConfig", "RunConfig", "AspectConfig"}
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in _sections()
        for f in dataclasses.fields(cls)
        if f.name != "path" and (not meaning(f).strip() or "\n" in meaning(f))
    ]
    assert missing == []


ENUMERATED = {
    "features.vit_pooling",
    "features.e5_prefix",
    "features.caption_pooling",
    "rationale.backend",
    "rationale.ratings",
    "gbt.members",
    "gbt.reduce",
    "gbt.ensemble",
    "mindmem.pooling",
    "mindmem.loss",
    "llm.projector",
    "llm.pooling",
    "llm.loss",
    "llm.padding_side",
    "models.device",
    "models.precision",
}


def test_the_enumerated_keys_are_literal_types():
    hints = typing.get_type_hints(Config)
    found = {
        f"{section}.{key}"
        for section, tp in hints.items()
        if dataclasses.is_dataclass(tp)
        for key, key_t in typing.get_type_hints(tp).items()
        if choices(key_t)
    }
    assert found == ENUMERATED
    for cls in (RunConfig,):  # no enumerated key in a run (predictor names are a registry)
        assert not any(choices(t) for t in typing.get_type_hints(cls).values())


def test_the_stages_read_their_allowed_values_from_the_literal():
    from memo.baselines.gbt import ENSEMBLES, REDUCERS
    from memo.baselines.members import MEMBERS
    from memo.baselines.mindmem_net import POOLINGS
    from memo.config import (
        CaptionPooling,
        E5Prefix,
        Ensemble,
        GBTMember,
        Loss,
        MindMemPooling,
        RatingSource,
        RationaleBackend,
        Reduce,
    )
    from memo.features.text import CAPTION_POOLING, PREFIXES
    from memo.losses import LOSSES
    from memo.rationales.settings import RATINGS
    from memo.rationales.writer import BACKENDS

    pairs = [
        (REDUCERS, Reduce),
        (ENSEMBLES, Ensemble),
        (MEMBERS, GBTMember),
        (POOLINGS, MindMemPooling),
        (LOSSES, Loss),
        (CAPTION_POOLING, CaptionPooling),
        (BACKENDS, RationaleBackend),
        (RATINGS, RatingSource),
    ]
    assert all(tuple(code) == typing.get_args(literal) for code, literal in pairs)
    assert tuple(PREFIXES) == typing.get_args(E5Prefix)  # the prefix text of each allowed value


def test_a_wrong_value_in_memo_toml_is_refused_at_load_with_one_sentence(tmp_path):
    path = tmp_path / "memo.toml"
    path.write_text('[project]\ndata = "data"\n\n[llm]\npooling = "atention"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert (
        str(e.value)
        == "memo.toml: llm.pooling = 'atention' is not one of mean, attention; did you mean 'attention'?"
    )
    with pytest.raises(ConfigError, match=r"gbt.reduce = 'umap' is not one of pca, svd, none\.$"):
        from_dict(Config, {"gbt": {"reduce": "umap"}})  # nothing close: no suggestion
    with pytest.raises(ConfigError, match=r"gbt.members\[1\] = 'randomforest' is not one of xgboost, "):
        from_dict(Config, {"gbt": {"members": ["xgboost", "randomforest"]}})


def test_set_refuses_a_wrong_value_and_keeps_a_right_one():
    cfg = Config()
    with pytest.raises(ConfigError) as e:
        set_option(cfg, "mindmem.loss", "mse+spearmen")
    assert str(e.value) == (
        "--set mindmem.loss = 'mse+spearmen' is not one of mse, spearman, pairwise, mse+spearman, "
        "mse+pairwise; did you mean 'mse+spearman'?"
    )
    set_option(cfg, "gbt.members", "xgboost, ridge")  # a comma list, each checked
    set_option(cfg, "models.device", "cuda:1")  # cuda:N is any GPU number
    assert cfg.gbt.members == ["xgboost", "ridge"] and cfg.models.device == "cuda:1"
    for bad in ("cuda:x", "cuda:N", "gpu", 1):
        with pytest.raises(
            ConfigError, match="models.device = .* is not one of auto, cpu, cuda, cuda:N, mps"
        ):
            set_option(cfg, "models.device", bad)


def test_cli_set_with_a_misspelt_value_stops_before_any_work(tmp_path):
    (tmp_path / "memo.toml").write_text('[project]\ndata = "data"\n\n[runs.2]\npredictor = "llm"\n')
    r = subprocess.run(
        [sys.executable, "-m", "memo.cli", "evaluate", "--run", "2", "--set", "llm.pooling=atention"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "error: --set llm.pooling = 'atention' is not one of mean, attention; did you mean 'attention'?"
    )
    assert not (tmp_path / ".memo").exists()  # refused before the work folder was touched


def test_memo_config_prints_keys_values_and_meanings(tmp_path):
    path = tmp_path / "memo.toml"
    path.write_text('[project]\ndata = "data"\n\n[gbt]\nreduce = "svd"\n\n[runs.1]\npredictor = "gbt"\n')
    out = CliRunner().invoke(app, ["config", "--config", str(path), "--set", "gbt.n_trials=7"])
    assert out.exit_code == 0, out.output
    gbt = {f.name: f for f in dataclasses.fields(Config().gbt)}
    assert "[gbt]  # the GBT ensemble predictor" in out.output
    assert (
        'reduce = "svd"' in out.output and meaning(gbt["reduce"]) + "; one of: pca, svd, none" in out.output
    )
    assert "n_trials = 7" in out.output and meaning(gbt["n_trials"]) in out.output
    assert "members = [" in out.output and "; each one of: xgboost, lightgbm" in out.output
    headers = [line.split("]")[0] + "]" for line in out.output.splitlines() if line.startswith("[")]
    assert headers == [f"[{s}]" for s in ("project", "models", "features", "rationale", "gbt", "mindmem")] + [
        "[llm]",
        "[evaluate]",
        "[submission]",
        "[runs.1]",
        "[aspects.NAME]",
    ]

    one = CliRunner().invoke(app, ["config", "llm", "--config", str(path)])
    assert one.exit_code == 0 and "[llm]" in one.output and "[gbt]" not in one.output
    key = CliRunner().invoke(app, ["config", "runs.1.predictor", "--config", str(path)])
    assert key.exit_code == 0 and 'predictor = "gbt"' in key.output and "streams =" not in key.output
    bad = CliRunner().invoke(app, ["config", "lmm", "--config", str(path)])
    assert bad.exit_code != 0 and "did you mean 'llm'?" in str(bad.exception)


def test_describe_is_toml_that_reads_back_as_the_same_config():
    cfg = Config(runs={"1": RunConfig(predictor="blend", blend=["2", "3"], params={"alpha": 1e-5})})
    set_option(cfg, "mindmem.modalities", {"video": ["vit"], "my text": ["e5"]})
    back = from_dict(Config, tomllib.loads(describe(cfg).replace("[aspects.NAME]", "[aspects.jingle]")))
    back.aspects = {}
    assert back == cfg
