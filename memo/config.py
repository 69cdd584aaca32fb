"""memo.toml: the project config, read into typed dataclasses.

Every command reads `memo.toml` from the working folder (or `--config`); command-line options
override it. Unknown keys, wrong types and values outside a key's fixed set are errors that name
the key, before any work:

    ConfigError: memo.toml: [gbt] n_trails is not a known key; known keys: n_trials, timeout, ...
    ConfigError: --set llm.pooling = 'atention' is not one of mean, attention; did you mean 'attention'?

The schema (every section's dataclass, each key's default, type and meaning) is memo.config_schema;
this module re-exports it, so stages import their section from here (`from memo.config import
GBTConfig`) and the core never imports a stage. Here: TOML -> dataclasses (one checker, driven by
the annotations), --set overrides, and `describe`, the text of `memo config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from memo.config_schema import (
    AspectConfig,
    CaptionPooling,
    Config,
    Device,
    E5Prefix,
    Ensemble,
    EvaluateConfig,
    FeaturesConfig,
    GBTConfig,
    GBTMember,
    LLMConfig,
    LLMPooling,
    Loss,
    MindMemConfig,
    MindMemPooling,
    ModelsConfig,
    PaddingSide,
    Precision,
    ProjectConfig,
    Projector,
    RatingSource,
    RationaleBackend,
    RationaleConfig,
    Reduce,
    RunConfig,
    SubmissionConfig,
    VitPooling,
    meaning,
)
from memo.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "AspectConfig",
    "CaptionPooling",
    "Config",
    "ConfigError",
    "Device",
    "E5Prefix",
    "Ensemble",
    "EvaluateConfig",
    "FeaturesConfig",
    "GBTConfig",
    "GBTMember",
    "LLMConfig",
    "LLMPooling",
    "Loss",
    "MindMemConfig",
    "MindMemPooling",
    "ModelsConfig",
    "PaddingSide",
    "Precision",
    "ProjectConfig",
    "Projector",
    "RatingSource",
    "RationaleBackend",
    "RationaleConfig",
    "Reduce",
    "RunConfig",
    "SubmissionConfig",
    "VitPooling",
    "choices",
    "describe",
    "from_dict",
    "load_config",
    "set_option",
]

CONFIG_NAME = "memo.toml"


# ----------------------------------------------------------------------------- TOML -> dataclasses


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _did_you_mean(word: Any, options: typing.Iterable[str]) -> str:
    near = difflib.get_close_matches(str(word), [o for o in options if o != word], n=1)
    return f"; did you mean {near[0]!r}?" if near else "."


def choices(tp: Any) -> tuple[str, ...]:
    """The allowed values of an enumerated key's annotation (Literal[...], or a list of one); else ()."""
    if typing.get_origin(tp) is list:
        tp = (typing.get_args(tp) or (Any,))[0]
    return typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else ()


def _allowed(value: Any, options: tuple[Any, ...]) -> bool:
    """`value` is one of `options`; an option ending in ":N" (cuda:N) stands for any whole number N."""
    return isinstance(value, str) and any(
        re.fullmatch(re.escape(o[:-1]) + r"\d+", value) if o.endswith(":N") else value == o for o in options
    )


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
    if origin is typing.Literal:  # an enumerated key: one sentence with the allowed values
        options = typing.get_args(tp)
        if not _allowed(value, options):
            raise ConfigError(
                f"{where} = {value!r} is not one of {', '.join(options)}{_did_you_mean(value, options)}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table ([{where}]), not {value!r}.")
        return from_dict(tp, value, where)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        named = item is str or typing.get_origin(item) is typing.Literal
        if isinstance(value, str) and named:  # "a,b" is accepted where a list of names is expected
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


def _keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "path"]


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a TOML table; unknown keys, wrong types and values outside an enumerated
    key's set raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = _keys(cls)
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            section = f"[{where}] " if where else ""
            if key in RENAMED and RENAMED[key] in fields:
                raise ConfigError(
                    f"memo.toml: {section}{key} is now called {RENAMED[key]} (one name for feature "
                    "streams everywhere); rename the key."
                )
            raise ConfigError(
                f"memo.toml: {section}{key} is not a known key; known keys: {', '.join(fields)}"
                f"{_did_you_mean(key, fields)}"
            )
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
    try:
        cfg = from_dict(Config, data)
    except ConfigError as e:  # say which file the wrong value is in
        raise ConfigError(str(e) if str(e).startswith(CONFIG_NAME) else f"{p.name}: {e}") from e
    cfg.path = p.resolve()
    return cfg


def set_option(cfg: Config, dotted: str, value: Any) -> None:
    """Override one key from the command line, type-checked like the file: set_option(cfg, "gbt.n_trials",
    20).

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
            known = _keys(type(obj))
            if part not in known:
                where = f"[{'.'.join(parts[:depth])}] " if depth else ""
                raise ConfigError(
                    f"--set {dotted}: {where}{part or '(empty)'} is not a known key; known keys: "
                    f"{', '.join(known)}{_did_you_mean(part, known)}"
                )
            if last:
                setattr(obj, part, _coerce(value, hints[part], f"--set {dotted}"))
                return
            obj, tp = getattr(obj, part), hints[part]
        elif isinstance(obj, dict):
            val_t = (typing.get_args(tp) or (str, Any))[1]
            if dataclasses.is_dataclass(val_t):  # runs, aspects: an entry must be defined in memo.toml first
                if part not in obj:
                    defined = f"defined: {', '.join(obj)}" if obj else "none is defined"
                    raise ConfigError(
                        f"--set {dotted}: {here} is not in memo.toml ({defined}); add a [{here}] table "
                        "to memo.toml first."
                    )
                if last:
                    raise ConfigError(
                        f"--set {dotted}: {here} is a table; set one of its keys, e.g. --set "
                        f"{here}.{dataclasses.fields(val_t)[0].name}=..."
                    )
                obj, tp = obj[part], val_t
            elif last:  # a free-form table (a run's params): any key, any TOML value
                obj[part] = value
                return
            else:
                raise ConfigError(
                    f"--set {dotted}: {'.'.join(parts[:depth])} is a table of plain values; {here} "
                    "cannot hold keys."
                )
        else:
            raise ConfigError(
                f"--set {dotted}: {'.'.join(parts[:depth])} is a single value, not a table; drop what "
                "follows it."
            )


def apply_overrides(cfg: Config, overrides: Mapping[str, Any] | Iterable[str] | None) -> None:
    """Set keys for this session, each type-checked like memo.toml (set_option): `memo --set` passes
    ["gbt.n_trials=10", ...] (each value read as TOML, a bare word as a string), the Python API
    passes {"gbt.n_trials": 10}."""
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            set_option(cfg, str(key).strip(), value)
        return
    if isinstance(overrides, str):
        overrides = [overrides]
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} needs the form key=value, e.g. --set gbt.n_trials=10.")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        set_option(cfg, key.strip(), value)


# ----------------------------------------------------------------------------- `memo config`: keys, values,
# meanings


def _toml(value: Any) -> str:
    """A value as TOML text, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = (k if re.fullmatch(r"[A-Za-z0-9_-]+", str(k)) else json.dumps(str(k)) for k in value)
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in zip(keys, value.values())) + "}"
    return repr(value)


def _sections(cfg: Config) -> list[tuple[str, str, str, Any]]:
    """(section, table header, the section's meaning, its dataclass) for every table memo.toml may hold;
    a [runs.N] or [aspects.NAME] with none defined shows its defaults."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name == "path":
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.append((f.name, f.name, meaning(f), value))
            continue
        entry_t = typing.get_args(typing.get_type_hints(Config)[f.name])[1]
        if not value:
            placeholder = "N" if f.name == "runs" else "NAME"
            why = f"{meaning(f)}; none in memo.toml, each takes these keys"
            out.append((f.name, f"{f.name}.{placeholder}", why, entry_t()))
        out += [(f.name, f"{f.name}.{name}", meaning(f), entry) for name, entry in value.items()]
    return out


def _table(header: str, about: str, obj: Any, only: str | None) -> list[str]:
    hints = typing.get_type_hints(type(obj))
    rows = []
    for f in dataclasses.fields(obj):
        if only is not None and f.name != only:
            continue
        options, each = choices(hints[f.name]), typing.get_origin(hints[f.name]) is list
        told = (
            f"{meaning(f)}; {'each ' if each else ''}one of: {', '.join(options)}" if options else meaning(f)
        )
        rows.append((f"{f.name} = {_toml(getattr(obj, f.name))}", told))
    width = min(max((len(kv) for kv, _ in rows), default=0), 40)
    return [f"[{header}]  # {about}"] + [f"{kv:<{width}}  # {told}" for kv, told in rows]


def describe(cfg: Config, name: str | None = None) -> str:
    """memo.toml's keys as commented TOML: each key's value in `cfg` and its meaning (an enumerated key's
    allowed values too). `name` picks a section (llm), a named table (runs, runs.1) or one key (llm.pooling,
    runs.1.predictor); None = every section."""
    tables = _sections(cfg)
    only = None
    if name:
        parts = name.split(".")
        sections = list(dict.fromkeys(s for s, *_ in tables))
        if parts[0] not in sections:
            raise ConfigError(
                f"{parts[0]!r} is not a section of memo.toml; sections: {', '.join(sections)}"
                f"{_did_you_mean(parts[0], sections)}"
            )
        named = not dataclasses.is_dataclass(getattr(cfg, parts[0]))
        tables = [t for t in tables if t[0] == parts[0]]
        if named and len(parts) > 1:
            if parts[1] not in getattr(cfg, parts[0]):
                defined = ", ".join(getattr(cfg, parts[0])) or "none"
                raise ConfigError(f"{'.'.join(parts[:2])} is not in memo.toml; defined: {defined}.")
            tables = [t for t in tables if t[1] == ".".join(parts[:2])]
        keys = parts[1 + named :]
        if len(keys) > 1:
            raise ConfigError(f"{name} is not a key of memo.toml; name a section, or a section and one key.")
        only = keys[0] if keys else None
        known = _keys(type(tables[0][3]))
        if only is not None and only not in known:
            raise ConfigError(
                f"[{tables[0][1]}] {only} is not a known key; known keys: {', '.join(known)}"
                f"{_did_you_mean(only, known)}"
            )
    return "\n\n".join("\n".join(_table(header, about, obj, only)) for _, header, about, obj in tables)
