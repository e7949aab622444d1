"""layernorm: normalise the last axis, then (``affine``) scale and shift."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveFloat

from ..core.lazy import torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class LayerNormOptions(TransformOptions):
    type: Literal["layernorm"] = "layernorm"
    eps: PositiveFloat = 1e-5
    affine: bool = True


@register
class LayerNorm(Transform):
    name = "layernorm"
    Options = LayerNormOptions

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        if tuple(in_shapes[0]) != tuple(out_shape):
            raise ShapeError(f"layernorm keeps the shape, got {fmt(in_shapes[0])} -> {fmt(out_shape)}")
        d = out_shape[-1]
        return {"weight": (d,), "bias": (d,)} if options.affine else {}

    def reset_parameters(self):
        if self.options.affine:
            torch.nn.init.ones_(self.weight)
            torch.nn.init.zeros_(self.bias)

    def forward(self, x):
        w = self.weight if self.options.affine else None
        b = self.bias if self.options.affine else None
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, self.options.eps)
