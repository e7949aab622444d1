"""A query's literal and file values (``--clamp NODE=[...]``, ``NODE=FILE``) checked
against the node before anything runs: a value is one example of the node or a batch
of them, and integers are class indices only where the node takes them (a categorical
node, or a vector bound to a data field of class indices); elsewhere they are numbers.
A value of any other shape is one sentence that says the node's shape."""

from __future__ import annotations

import math

import torch

from ..core.errors import DataError, Issue


def takes_indices(spec, program, node: str) -> bool:
    """Whether integers for ``node`` are class indices (one-hot rows of its last axis)."""
    info = program.nodes[node]
    if info.dtype == "long" or not info.shape:
        return False
    if info.family == "categorical":
        return True
    if info.bind is None or spec.data is None:
        return False
    from ..data import datasets

    return spec.data.dataset in datasets and info.bind in datasets.get(spec.data.dataset).index_fields


def checked_value(program, node: str, text: str, value: torch.Tensor, indices: bool) -> torch.Tensor:
    """``value`` for ``node`` (integers made floats where they are not class indices or
    tokens), or a DataError naming the node's shape when it is neither one example nor
    a batch of them."""
    info = program.nodes[node]
    integer = not (value.is_floating_point() or value.is_complex())
    if integer and not indices and info.dtype != "long":
        value = value.to(torch.get_default_dtype())
        integer = False
    sizes = {math.prod(info.shape), math.prod(info.param_shape)}
    as_index = indices and integer
    one = value.numel() in sizes or (as_index and tuple(value.shape) == tuple(info.shape[:-1]))
    batch = value.dim() > 0 and value.shape[0] > 0 and (value[0].numel() in sizes or (as_index and tuple(value.shape[1:]) == tuple(info.shape[:-1])))
    if one or batch:
        return value
    shape = list(info.shape)
    dims = ", ".join(str(d) for d in shape)
    one_text = f"one example of {math.prod(shape)} numbers" + (f" (shape {shape})" if len(shape) > 1 else "")
    if indices:
        index = "a class index" if len(shape) == 1 else f"class indices of shape {shape[:-1]}"
        kinds = f"{one_text}, a batch [N, {dims}], or {index} (or N of them)"
    else:
        kinds = f"{one_text} or a batch [N, {dims}]"
    raise DataError(Issue(("--clamp",), f"{node}={text}: node '{node}' has shape {shape}, so its value is {kinds}, not shape {list(value.shape)}"))
