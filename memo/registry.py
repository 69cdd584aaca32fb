"""timm-style registries: a plain dict filled by a decorator.

    EXTRACTORS = Registry("feature extractor")

    @EXTRACTORS.register("vit")
    class ViTExtractor: ...

    EXTRACTORS.get("vti")  # MemoError: unknown feature extractor 'vti'; choose one of: vit, e5, ...

Registries that are filled by modules users may not have imported yet take `populate`, a
function that imports those modules the first time the registry is read.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from memo.errors import MemoError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, populate: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._populate = populate
        self._populated = populate is None

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _ensure(self) -> None:
        if not self._populated:
            self._populated = True
            self._populate()

    def get(self, name: str) -> T:
        self._ensure()
        if name not in self._items:
            raise MemoError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}.")
        return self._items[name]

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._ensure()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
