"""Past one machine's single process: `accelerate launch` with two CPU processes (gloo), for real.

Two checks, each a real launch of two processes on this machine's CPUs:
- `accelerate launch ... -m memo features` splits the ids between the processes and fills the same
  feature store a one-process `memo features` fills: the same files, arrays equal bit for bit, the
  same masks, every id computed exactly once.
- the fusion model (tiny Gemma-3 backbone) trained by its real FusionTrainer under DDP: world size 2
  inside the Trainer, the model wrapped in DistributedDataParallel, each process trains on other
  videos, and both end with the same weights, which moved from where they started.

Why `--multi_gpu` on a CPU machine: `accelerate launch --cpu --num_processes 2` (and the same without
--cpu on a machine without a GPU) starts one process only (accelerate 1.15's simple launcher; two
need mpirun and a host file). `--multi_gpu` hands the processes to torchrun, and without CUDA
accelerate and torch.distributed use gloo on the CPU: the same code path as on several GPUs, with
nccl and cuda:LOCAL_RANK there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("accelerate", reason="accelerate is not installed: `accelerate launch` cannot be tested")
torch = pytest.importorskip("torch")
pytest.importorskip("av")

from tests.projects import sample_project  # noqa: E402

TIMEOUT = 240  # seconds per launch; about 40-70 s on a loaded 2-core machine


def launch(args: list[str], cwd: Path, processes: int = 2) -> subprocess.Popen:
    """Start `accelerate launch --multi_gpu --num_processes N <args>` in cwd (N processes, gloo on CPU), or
    plain python for N = 1."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    if processes == 1:
        cmd = [sys.executable, *args]
    else:
        # a free port per launch: two launches at once (pytest-xdist) must not meet
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(free_port()),
            *args,
        ]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> str:
    """Wait for a launch; its stderr (where memo says what it did), or the failure with both streams."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-5000:]}"
    )
    return err


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """The tiny models these checks need, built once into a temp folder (nothing touches ~/.cache)."""
    from memo.samplekit.tiny_models import tiny_audio_encoder, tiny_gemma3, tiny_vit

    root = tmp_path_factory.mktemp("models")
    return {
        "vit": tiny_vit(root / "vit"),
        "audio": tiny_audio_encoder(root / "audio"),
        "gemma3": tiny_gemma3(root / "gemma3"),
    }


def project_at(root: Path, tiny: dict[str, Path], **settings):
    """A sample project (3 dev brands x 3 videos, 2 test brands x 2) with the tiny models, on the CPU."""
    base = {
        "models.vit": str(tiny["vit"]),
        "models.audio": str(tiny["audio"]),
        "models.llm": str(tiny["gemma3"]),
        "models.device": "cpu",
    }
    return sample_project(
        root, {**base, **settings}, n_brands_dev=3, videos_per_brand=3, n_brands_test=2, seed=0
    )


def stored(project) -> dict[str, dict[str, np.ndarray]]:
    """Every array file of the feature store: {path under the store: {array name: values}}."""
    root = project.store.root
    out = {}
    for f in sorted(root.rglob("*.npz")):
        with np.load(f) as z:
            out[str(f.relative_to(root))] = {k: z[k] for k in z.files}
    return out


def counts(stderr: str) -> dict[tuple[int, str], int]:
    """{(process, extractor): computed} from the summary lines `memo features` says (process 1 alone: no
    prefix).
    Not anchored to line starts: another process's progress bar may share the line."""
    found = re.findall(
        r"(?:process (\d) of \d: )?\b(vit|e5|audio|stats|organiser): (\d+) computed, \d+ already there",
        stderr,
    )
    return {(int(p or 1), name): int(n) for p, name, n in found}


def test_two_processes_fill_the_same_store_as_one(tmp_path, tiny):
    from memo.features import load_features

    one = project_at(tmp_path / "one", tiny)
    two = project_at(tmp_path / "two", tiny)
    # one unreadable video in each process's share (ids go to processes in turn): both failures must be
    # recorded
    broken = [one.dataset.splits["dev"].ids[i] for i in (0, 1)]
    for project in (one, two):
        for vid in broken:
            Path(project.dataset.splits["dev"].table.loc[vid, "video_path"]).write_bytes(
                b"\x00not a video" * 100
            )
    # both at once: the machine's cores are shared anyway, and the wait is one launch long
    a = launch(["-m", "memo", "features"], cwd=one.config.path.parent, processes=1)
    b = launch(["-m", "memo", "features"], cwd=two.config.path.parent, processes=2)
    solo, pair = counts(finished(a)), counts(finished(b))

    # every id computed once: the two processes' counts add up to the one process's, and each did some
    names = ("vit", "e5", "audio", "stats", "organiser")
    assert set(solo) == {(1, n) for n in names} and set(pair) == {(p, n) for p in (1, 2) for n in names}, (
        solo,
        pair,
    )
    for n in names:
        assert pair[1, n] + pair[2, n] == solo[1, n] and min(pair[1, n], pair[2, n]) > 0, (n, solo, pair)

    # the same files, arrays equal bit for bit, no temp file left
    x, y = stored(one), stored(two)
    assert len(x) > 100 and sorted(x) == sorted(y)
    for path in x:
        assert sorted(x[path]) == sorted(y[path]), path
        for k in x[path]:
            assert np.array_equal(x[path][k], y[path][k]), (path, k)
    assert not list(two.store.root.rglob("*.tmp"))
    # the failures of both processes are in each table's failures.json, as one process records them
    fails = sorted(f.relative_to(one.store.root) for f in one.store.root.rglob("failures.json"))
    assert len(fails) == 3  # vit, audio, stats
    for f in fails:
        # {id: reason}; a reason names the project's file
        recorded = json.loads((two.store.root / f).read_text())
        assert sorted(recorded) == sorted(json.loads((one.store.root / f).read_text())) == sorted(broken), (
            f,
            recorded,
        )
    # each table's manifest counts every video, whichever process wrote it last
    for m in one.store.root.rglob("manifest.json"):
        assert (
            json.loads(m.read_text())["count"]
            == json.loads((two.store.root / m.relative_to(one.store.root)).read_text())["count"]
        )

    # and loaded as a predictor sees it: same ids, values and masks
    for split in ("dev", "test"):
        fa, fb = load_features(one, split, None), load_features(two, split, None)
        assert fa.ids == fb.ids and set(fa.streams) == set(fb.streams)
        for s in fa.streams:
            assert np.array_equal(fa.streams[s].mask, fb.streams[s].mask), (split, s)
            assert np.array_equal(fa.streams[s].values, fb.streams[s].values), (split, s)
        assert fa.streams["vit"].present.sum() == len(fa.ids) - (2 if split == "dev" else 0)


# one process of the DDP check, launched twice by torchrun
RANK_SCRIPT = Path(__file__).with_name("ddp_rank.py")


def test_fusion_trains_under_ddp_on_two_processes(tmp_path, tiny):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    project = project_at(tmp_path / "proj", tiny)
    script = RANK_SCRIPT
    out = tmp_path / "out"
    out.mkdir()
    finished(launch([str(script), str(project.config.path), str(out)], cwd=tmp_path, processes=2))

    info = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]
    for i in info:  # DDP was really in use, over gloo
        assert i["world_size"] == 2 and i["initialized"] and i["backend"] == "gloo", i
        assert i["wrapped"] == "DistributedDataParallel" and i["evaluated"], i
    # only the main process writes checkpoints, so only it knows the best one; here it is not the last step,
    # so the weights it reloads differ from the last step's (the case where processes could part ways)
    assert info[1]["best"] is None and info[0]["steps"] == 4, info[0]
    assert info[0]["best"] and not info[0]["best"].endswith("checkpoint-4"), (
        f"the best checkpoint is {info[0]['best']}: this check needs one before the last step; change "
        "max_steps or the seed"
    )
    # the processes trained on different rows (each its share of the batches) ...
    assert info[0]["labels"] and info[1]["labels"] and info[0]["labels"] != info[1]["labels"]
    # ... and end with the same weights, bit for bit, so they predict the same scores
    assert sorted(weights[0]) == sorted(weights[1]) and len(weights[0]) > 10
    for name in weights[0]:
        assert np.array_equal(weights[0][name], weights[1][name]), name
    assert info[0]["scores"] == info[1]["scores"]
    # and training moved every one of them: LoRA, the streams' projectors, the head
    assert info[0]["changed"] == info[1]["changed"] == sorted(weights[0]), info[0]["changed"]
