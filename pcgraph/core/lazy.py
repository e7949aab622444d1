"""Deferred imports of torch.

Importing torch takes a second or more, and the commands that only read a spec
(``validate``, ``schema``, ``--help``) never compute anything. Families, transforms
and activations therefore name torch through the objects below: ``torch`` is the
real module, loaded by the standard library's ``LazyLoader`` on first attribute
access (after that it is the ordinary module, at no cost per use); ``F`` and ``nn``
stand for ``torch.nn.functional`` and ``torch.nn`` and take their contents on first
use.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys


def lazy_module(name: str):
    """The module ``name``, executed when one of its attributes is first read."""
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    loader.exec_module(mod)
    return mod


class Submodule:
    """A stand-in for a submodule of a lazily loaded package: on first attribute
    access it imports the submodule and copies its namespace, so later reads are
    plain attribute lookups."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str):
        mod = importlib.import_module(object.__getattribute__(self, "_name"))
        self.__dict__.update(vars(mod))
        return getattr(mod, attr)

    def __repr__(self) -> str:
        return f"<lazy {object.__getattribute__(self, '_name')}>"


torch = lazy_module("torch")
np = lazy_module("numpy")
F = Submodule("torch.nn.functional")
nn = Submodule("torch.nn")

__all__ = ["lazy_module", "Submodule", "torch", "np", "F", "nn"]
