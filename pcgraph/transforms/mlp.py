"""mlp: a small multi-layer perceptron on the last axis (hidden widths given, the
output width read off the target). Init as for linear, per layer."""

from __future__ import annotations

from typing import List, Literal

from pydantic import PositiveInt

from ..core.lazy import torch
from ..core import activations
from . import register
from .base import Transform, TransformOptions, init_weight
from .linear import check_last_axis


class MLPOptions(TransformOptions):
    type: Literal["mlp"] = "mlp"
    hidden: List[PositiveInt] = []
    activation: Literal[activations.ACTIVATION_NAMES] = "relu"  # type: ignore[valid-type]
    bias: bool = True


@register
class MLP(Transform):
    name = "mlp"
    Options = MLPOptions
    arity = None

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        n_in = check_last_axis("mlp", in_shapes, out_shape)
        widths = [n_in, *options.hidden, out_shape[-1]]
        shapes = {}
        for i in range(len(widths) - 1):
            shapes[f"weight{i}"] = (widths[i + 1], widths[i])
            if options.bias:
                shapes[f"bias{i}"] = (widths[i + 1],)
        return shapes

    def reset_parameters(self):
        inner = activations.get(self.options.activation)
        n = len(self.options.hidden) + 1
        for i in range(n):
            init_weight(getattr(self, f"weight{i}"), inner if i < n - 1 else self.activation)
            if self.options.bias:
                torch.nn.init.zeros_(getattr(self, f"bias{i}"))

    def forward(self, *xs):
        h = xs[0] if len(xs) == 1 else torch.cat(xs, -1)
        act = activations.get(self.options.activation).fn
        n = len(self.options.hidden) + 1
        for i in range(n):
            h = torch.nn.functional.linear(h, getattr(self, f"weight{i}"), getattr(self, f"bias{i}", None))
            if i < n - 1:
                h = act(h)
        return h
