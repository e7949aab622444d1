"""Datasets: a registry of sources that give named fields (tensors) per split.

``load_dataset(spec.data, graph)`` loads what a spec's ``data:`` section names;
``fetch_dataset`` (``pcgraph data fetch NAME``, ``pcgraph.data.fetch``) puts the
files in place. The layout: ``dataset`` (the Dataset class, the registry of names,
options, loading), ``check`` (what loading needs of a graph, as plain values, and the
fit checks), ``loaders/`` (one module per file format), ``synthetic`` (generated data),
``fetch/`` (one module per source).
"""

from __future__ import annotations

import importlib

from . import loaders  # noqa: F401  (registers the datasets)
from . import synthetic  # noqa: F401  (registers the generated datasets)
from .check import BoundNode, GraphFacts
from .loaders.text import prepare_text, text_tokenizer
from .dataset import (
    Dataset,
    DatasetOptions,
    datasets,
    default_data_dir,
    fetch_command,
    load_dataset,
    register,
    resolve_data_dir,
)

#: names from ``fetch`` (which loads the download machinery), imported on first use
_FETCH_NAMES = {
    "fetch_dataset": "fetch", "FetchResult": "FetchResult", "SOURCES": "SOURCES",
    "NOTHING_TO_FETCH": "NOTHING_TO_FETCH", "read_source": "read_source", "summary": "summary"
}


def __getattr__(name: str):
    if name in _FETCH_NAMES:
        return getattr(importlib.import_module(f"{__name__}.fetch"), _FETCH_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "prepare_text",
    "fetch_dataset",
    "FetchResult",
    "SOURCES",
    "NOTHING_TO_FETCH",
    "read_source",
    "summary",
    "BoundNode",
    "GraphFacts",
]
