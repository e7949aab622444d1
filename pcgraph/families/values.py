"""What a node's values mean to the rest of pcgraph, in the families' default form:
how they are scored against data, laid out as a table, or drawn. A family changes
these by overriding the ``Family`` methods that call them."""

from __future__ import annotations

import math

from ..core.lazy import torch

#: metric name -> (sum, count): a metric is the sum over the count
Scores = dict


def holds_indices(value: torch.Tensor, truth: torch.Tensor) -> bool:
    """Whether integer ``truth`` gives one class index per row of ``value``'s last axis."""
    return not truth.is_floating_point() and truth.numel() * value.shape[-1] == value.numel()


def accuracy(value: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(correct, count) of ``value``'s most probable class on the last axis against
    ``truth``: class indices, or rows whose largest entry names the class."""
    label = truth if not truth.is_floating_point() else truth.argmax(-1)
    label = label.reshape(value.shape[:-1])
    return (value.argmax(-1) == label).sum(), label.numel()


def score_values(value: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> Scores:
    """The scores of values against data: with class indices as data, the accuracy and
    the squared error against their one-hot rows; else the mean squared error (and
    with ``mask``, True where observed, the squared error where it is not)."""
    truth = truth.to(value.device)
    out = {}
    if holds_indices(value, truth):
        out["accuracy"] = accuracy(value, truth)
        truth = torch.nn.functional.one_hot(truth.long().reshape(value.shape[:-1]), value.shape[-1])
    truth = truth.reshape(value.shape).to(value.dtype)
    sq = (value - truth) ** 2
    out["mse"] = (sq.sum(), sq.numel())
    if mask is not None:
        out["mse_unobserved"] = (sq[~mask].sum(), int((~mask).sum()))
    return out


def plain_table(values: torch.Tensor, prefix: str = "x") -> tuple[list[str], torch.Tensor]:
    """(column names, [N, units]) of values, one column per unit."""
    flat = values.reshape(values.shape[0], -1)
    return [f"{prefix}{i}" for i in range(flat.shape[1])], flat


def units(shape) -> int:
    return math.prod(shape)
