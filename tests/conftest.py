"""Shared pytest fixtures: offline mode, one CPU thread, and the tiny models from
memo.samplekit.tiny_models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# huggingface_hub reads these when it is first imported, which may happen while test modules are
# collected, before any fixture runs; so set them here too, not only in the fixture below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _offline_single_thread():
    """No test may reach a model hub, tests share the machine's cores with other work, and they run in
    fp32."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            # fp32 is what the suite tests: `precision = "auto"` sees a CPU without native bf16 on any
            # machine (tests/test_cpu_llm.py forces bf16 where it tests it)
            mp.setattr("memo.models.cpu_has_bf16", lambda: False)
        yield
        if torch is not None:
            torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, _offline_single_thread) -> dict[str, Path]:
    """Folders of tiny random models of the real architectures: vit, e5, gemma3, audio."""
    from memo.samplekit.tiny_models import tiny_models as build

    return build(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_vit_path(tiny_models) -> Path:
    return tiny_models["vit"]


@pytest.fixture(scope="session")
def tiny_e5_path(tiny_models) -> Path:
    return tiny_models["e5"]


@pytest.fixture(scope="session")
def tiny_gemma_path(tiny_models) -> Path:
    return tiny_models["gemma3"]


@pytest.fixture(scope="session")
def tiny_audio_path(tiny_models) -> Path:
    return tiny_models["audio"]


@pytest.fixture
def said(caplog):
    """The progress messages (memo.progress, the `memo` logger) said during the test, as a list of strings."""
    import logging

    caplog.set_level(logging.INFO, logger="memo")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "memo"]

    return lines
