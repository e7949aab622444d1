"""Clamping: a batch's data fields -> the tensors clamped nodes hold, and the
per-example noise of sampling nodes."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from ..core.errors import DataError, Issue
from .tokens import token_problem


def _input_value(prog, name: str, value: torch.Tensor) -> torch.Tensor:
    """An input node's tensor from its field: token ids checked against the vocabulary,
    class indices of a vector input as one-hot rows, a flat field reshaped."""
    info = prog.nodes[name]
    per = tuple(value.shape[1:])
    if info.dtype == "long":
        if value.is_floating_point() or value.is_complex():
            msg = f"data field '{info.bind}' holds {value.dtype} but node '{name}' takes integer tokens (dtype long)"
            raise DataError(Issue(("nodes", name, "bind"), msg, info.location))
        value = value.long()
        problem = token_problem(prog.graph, name, value)
        if problem is not None:
            msg = f"data field '{info.bind}' for node '{name}': {problem}"
            raise DataError(Issue(("nodes", name, "bind"), msg, info.location))
    elif not value.is_floating_point() and info.shape and per == info.shape[:-1]:
        value = torch.nn.functional.one_hot(value.long(), info.shape[-1]).to(prog.dtype)  # class indices
        per = info.shape
    else:
        value = value.to(prog.dtype)
    if per != info.shape:
        if value[0].numel() != math.prod(info.shape):
            msg = (
                f"data field '{info.bind}' has per-sample shape {list(per)}, node '{name}' has shape {list(info.shape)}"
            )
            raise DataError(Issue(("nodes", name, "bind"), msg, info.location))
        value = value.reshape((value.shape[0],) + info.shape)
    return value


def clamp_value(prog, name: str, value: Any, batch_size: int | None) -> torch.Tensor:
    """The tensor node ``name`` holds clamped to the data ``value`` (``batch_size``: the
    other fields' batch size, which this one must have)."""
    info = prog.nodes[name]
    if not torch.is_tensor(value):
        try:
            value = torch.as_tensor(value)
        except Exception as e:  # noqa: BLE001 - reported as a data error
            msg = f"data field '{info.bind}' for node '{name}' is not array-like: {e}"
            raise DataError(Issue(("nodes", name, "bind"), msg, info.location)) from None
    value = value.to(prog.device, non_blocking=True)
    if batch_size is not None and value.shape[:1] != (batch_size,):
        have = value.shape[0] if value.dim() else 0
        msg = f"data field '{info.bind}' has batch size {have}, other fields have {batch_size}"
        raise DataError(Issue(("nodes", name, "bind"), msg, info.location))
    if info.role == "input":
        return _input_value(prog, name, value)
    fam = prog.families[name]
    problem = fam.check_data(value)
    if problem is not None and value.is_floating_point() and value[0].numel() == math.prod(info.param_shape):
        value = value.reshape((value.shape[0],) + info.param_shape)
        problem = fam.check_data(value)
    if problem is not None:
        msg = f"data field '{info.bind}' does not fit {info.family} node '{name}': {problem} (dtype {value.dtype})"
        raise DataError(Issue(("nodes", name, "bind"), msg, info.location))
    return fam.from_data(value)


def clamped_from_batch(prog, batch: Mapping[str, Any], *, targets: bool = True) -> dict[str, torch.Tensor]:
    """{node: clamped tensor} for the inputs (and the targets whose fields the batch
    has, unless ``targets`` is False)."""
    out: dict[str, torch.Tensor] = {}
    size = None
    for n in prog.inputs + (prog.targets if targets else []):
        info = prog.nodes[n]
        if info.bind not in batch:
            if info.role == "input":
                msg = f"the batch has no field '{info.bind}' for input node '{n}' (fields: {', '.join(batch)})"
                raise DataError(Issue(("nodes", n, "bind"), msg, info.location))
            continue
        out[n] = clamp_value(prog, n, batch[info.bind], size)
        size = out[n].shape[0]
    if size is None:
        raise DataError(Issue(("<spec>",), "the batch binds no node"))
    return out


def per_example(prog, draw, batch_size: int) -> torch.Tensor:
    """``draw(batch_size)``, a random tensor with one row per example; drawn for the
    whole batch and sliced when this batch is ``prog.rows`` of a larger one."""
    if prog.rows is None:
        return draw(batch_size)
    start, stop, total = prog.rows
    if stop - start != batch_size:
        raise ValueError(f"the batch has {batch_size} examples, but rows {start}:{stop} of {total} were announced")
    return draw(total)[start:stop]


def draw_noise(prog, batch_size: int, noise: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """The per-example noise of every sampling node (``noise``'s where it gives one)."""
    out = {}
    like = torch.empty(0, dtype=prog.dtype, device=prog.device)
    for n in prog.sampling:
        if noise is not None and n in noise:
            out[n] = noise[n].to(prog.device, prog.dtype)
        else:
            out[n] = per_example(prog, lambda b, n=n: prog.families[n].sample_noise(b, like), batch_size)
    return out
