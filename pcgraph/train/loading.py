"""A graph's dataset with what only a compiled graph can give it: the ``synthetic``
dataset's teacher, the graph's own network built under the dataset's seed."""

from __future__ import annotations

import os
from typing import Any

from ..compile import graph_teacher
from ..data import load_dataset


def load_data(data_spec: Any, graph, data_dir: str | os.PathLike | None = None):
    """``pcgraph.data.load_dataset(data_spec, graph, data_dir)`` with ``graph``'s teacher
    (``data_spec`` None: the graph's spec's ``data`` section)."""
    return load_dataset(data_spec, graph, data_dir, teacher=graph_teacher(graph))
