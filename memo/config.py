"""memo.toml: the project config, read into typed dataclasses.

Every command reads `memo.toml` from the working folder (or `--config`); command-line options
override it. Unknown keys and wrong types are errors that name the key:

    ConfigError: memo.toml: [gbt] n_trails is not a known key; known keys: n_trials, timeout, ...

Each stage owns the dataclass of its own section, in its own folder (memo.features.config,
memo.rationales.config, ...); this module holds the project-wide sections, the root `Config`,
and the machinery that turns TOML into dataclasses and back.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memo.baselines.config import GBTConfig, MindMemConfig
from memo.errors import ConfigError
from memo.features.config import FeaturesConfig
from memo.llm_fusion.config import LLMConfig
from memo.rationales.config import AspectConfig, RationaleConfig
from memo.submission.config import RunConfig, SubmissionConfig

CONFIG_NAME = "memo.toml"


@dataclass
class ProjectConfig:
    data: str = ""  # the dataset folder (organiser layout); relative to memo.toml's folder
    layout: str = ""  # videm | mediaeval2021 | csv; empty = detect from the folder
    team: str = "myteam"
    targets: list[str] = field(default_factory=list)  # empty = every target the dataset has
    workdir: str = ".memo"  # feature store, logs, trained models, studies
    seed: int = 0


@dataclass
class ModelsConfig:
    """Hugging Face ids or local folders, one per role; `memo init --offline` picks local ones."""

    vit: str = "google/vit-base-patch16-224-in21k"
    e5: str = "intfloat/e5-large-v2"
    audio: str = "MIT/ast-finetuned-audioset-10-10-0.4593"
    llm: str = "google/gemma-3-4b-it"  # rationale writer and fusion backbone
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps


@dataclass
class EvaluateConfig:
    folds: int = 5
    # K-fold splits with seeds seed, seed+1, ...; the mean over repeats is the expected score on unseen
    # brands (one split of 25 brands moves by about 0.15). `memo init` sets 5 on small data (under 2,000 videos).
    repeats: int = 1
    bootstrap: int = 1000
    baselines: list[str] = field(default_factory=lambda: ["duration", "metadata_gbt", "text_ridge"])


@dataclass
class Config:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    rationale: RationaleConfig = field(default_factory=RationaleConfig)
    gbt: GBTConfig = field(default_factory=GBTConfig)
    mindmem: MindMemConfig = field(default_factory=MindMemConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    runs: dict[str, RunConfig] = field(default_factory=dict)
    aspects: dict[str, AspectConfig] = field(default_factory=dict)
    path: Path | None = None  # where it was read from; not a TOML key

    @property
    def root(self) -> Path:
        """The folder relative paths in the config are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.root / q)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


# ----------------------------------------------------------------------------- TOML -> dataclasses


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting only the lossless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table ([{where}]), not {value!r}.")
        return from_dict(tp, value, where)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and item is str:  # "a,b" is accepted where a list of names is expected
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {value!r}.")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_t, val_t = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {value!r}.")
        return {str(k): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, not {value!r}.")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where} must be a whole number, not {value!r}.")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where} must be a {_type_name(tp)}, not {value!r}.")
    return value


RENAMED = {"blocks": "streams", "features": "streams"}  # old key -> new key, for a helpful error


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a TOML table; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            section = f"[{where}] " if where else ""
            if key in RENAMED and RENAMED[key] in fields:
                raise ConfigError(f"memo.toml: {section}{key} is now called {RENAMED[key]} (one name for feature streams everywhere); rename the key.")
            raise ConfigError(f"memo.toml: {section}{key} is not a known key; known keys: {', '.join(fields)}.")
        kwargs[key] = _coerce(value, hints[key], name)
    return cls(**kwargs)


def load_config(path: str | Path | None = None, required: bool = False) -> Config:
    """Read memo.toml (default: the working folder's); with none there, the defaults."""
    p = Path(path) if path else Path.cwd() / CONFIG_NAME
    if not p.is_file():
        if required or path:
            raise ConfigError(f"no config at {p}; run `memo init --data PATH` first, or pass --config.")
        return Config()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML ({e}); fix the line it names.") from e
    cfg = from_dict(Config, data)
    cfg.path = p.resolve()
    return cfg


def set_option(cfg: Config, dotted: str, value: Any) -> None:
    """Override one key from the command line, type-checked like the file: set_option(cfg, "gbt.n_trials", 20).

    Every step of the dotted name must exist (a section, a defined run or aspect, a key), else one
    ConfigError says which part is unknown and what is there.
    """
    parts = dotted.split(".")
    obj: Any = cfg
    tp: Any = Config
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if dataclasses.is_dataclass(obj):
            hints = typing.get_type_hints(type(obj))
            known = [f.name for f in dataclasses.fields(obj) if f.name != "path"]
            if part not in known:
                where = f"[{'.'.join(parts[:depth])}] " if depth else ""
                raise ConfigError(f"--set {dotted}: {where}{part or '(empty)'} is not a known key; known keys: {', '.join(known)}.")
            if last:
                setattr(obj, part, _coerce(value, hints[part], dotted))
                return
            obj, tp = getattr(obj, part), hints[part]
        elif isinstance(obj, dict):
            val_t = (typing.get_args(tp) or (str, Any))[1]
            if dataclasses.is_dataclass(val_t):  # runs, aspects: an entry must be defined in memo.toml first
                if part not in obj:
                    defined = f"defined: {', '.join(obj)}" if obj else "none is defined"
                    raise ConfigError(f"--set {dotted}: {here} is not in memo.toml ({defined}); add a [{here}] table to memo.toml first.")
                if last:
                    raise ConfigError(f"--set {dotted}: {here} is a table; set one of its keys, e.g. --set {here}.{dataclasses.fields(val_t)[0].name}=...")
                obj, tp = obj[part], val_t
            elif last:  # a free-form table (a run's params): any key, any TOML value
                obj[part] = value
                return
            else:
                raise ConfigError(f"--set {dotted}: {'.'.join(parts[:depth])} is a table of plain values; {here} cannot hold keys.")
        else:
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[:depth])} is a single value, not a table; drop what follows it.")
