"""Datasets: a registry of sources that give named fields (tensors) per split."""

from __future__ import annotations

import importlib
import pkgutil

from .registry import Dataset, DatasetOptions, datasets, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("registry",) and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Dataset", "DatasetOptions", "datasets", "register"]
