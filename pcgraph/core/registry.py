"""Name -> object registries with "did you mean" suggestions."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


def suggest(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """A named collection of classes; ``register`` is a decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or getattr(obj, "name")
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = obj
            return obj

        return deco

    def register_typed(self, cls):
        """Register a class whose ``Options`` model carries ``type: Literal[name]``
        (families and transforms: the spec names them by that ``type``)."""
        fields = cls.Options.model_fields
        if "type" not in fields or fields["type"].default != cls.name:
            raise TypeError(f"{cls.__name__}.Options needs `type: Literal['{cls.name}'] = '{cls.name}'`")
        return self.register(cls.name)(cls)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        return f"unknown {self.kind} '{name}'{suggest(name, self._items)}; known: {', '.join(sorted(self._items))}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self):
        return sorted(self._items.items())

    def __len__(self) -> int:
        return len(self._items)


def import_modules(package: str, path, skip=("base",)) -> None:
    """Import every module of a package (so that each registers itself)."""
    for m in pkgutil.iter_modules(path):
        if m.name not in skip and not m.name.startswith("_"):
            importlib.import_module(f"{package}.{m.name}")
