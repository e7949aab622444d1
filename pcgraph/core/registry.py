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

    def register_typed(self, name: str) -> Callable[[T], T]:
        """Class decorator for a class the spec names by ``type`` (families and
        transforms): the class takes ``name`` as its ``name``, and its ``Options`` model
        the field ``type: Literal[name] = name`` that the spec's tagged unions read."""

        def deco(cls):
            cls.name = name
            cls.Options = typed_options(cls.Options, name, f"{cls.__name__}Options")
            return self.register(name)(cls)

        return deco

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


def typed_options(options, name: str, title: str):
    """A subclass of the pydantic model ``options`` (named ``title``) with the field
    ``type: Literal[name] = name``."""
    from typing import Literal

    from pydantic import Field, create_model

    return create_model(title, __base__=options, __module__=options.__module__, type=(Literal[name], Field(name)))


def import_modules(package: str, path, skip=("base",)) -> None:
    """Import every module of a package (so that each registers itself)."""
    for m in pkgutil.iter_modules(path):
        if m.name not in skip and not m.name.startswith("_"):
            importlib.import_module(f"{package}.{m.name}")
