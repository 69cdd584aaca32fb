"""timm-style registries: a plain dict filled by a decorator.

    EXTRACTORS = Registry("feature extractor")

    @EXTRACTORS.register("vit")
    class ViTExtractor: ...

    EXTRACTORS.get("vti")  # MemoError: unknown feature extractor 'vti'; choose one of: vit, e5, ...

Registries whose entries live in modules that may not be imported yet take `lazy`, a map from
name to module: `get(name)` imports only that entry's module (so asking for "gbt" never imports
torch), and `names()` lists lazy names without importing anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from memo.errors import MemoError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, lazy: dict[str, str] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy = dict(lazy or {})

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items and name in self._lazy:
            importlib.import_module(self._lazy[name])  # runs the module's @register decorators
        if name not in self._items:
            raise MemoError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}.")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
