"""Datasets: a registry of sources that give named fields (tensors) per split.

``load_dataset(spec.data, graph)`` loads what a spec's ``data:`` section names;
``pcgraph data fetch NAME`` (``pcgraph.data.fetch``) puts the files in place.
"""

from __future__ import annotations

from ..core.registry import import_modules
from .registry import (
    Dataset,
    DatasetOptions,
    datasets,
    default_data_dir,
    fetch_command,
    load_dataset,
    register,
    resolve_data_dir,
)

# every loader module registers its datasets; fetch and cli are imported on demand
import_modules(__name__, __path__, skip=("registry", "fetch", "cli"))

from .text import text_tokenizer  # noqa: E402

__all__ = [
    "Dataset",
    "DatasetOptions",
    "datasets",
    "register",
    "load_dataset",
    "resolve_data_dir",
    "default_data_dir",
    "fetch_command",
    "text_tokenizer",
]
