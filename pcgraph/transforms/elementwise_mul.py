"""elementwise_mul: a * b for equal shapes (gating)."""

from __future__ import annotations

from typing import Literal

from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class MulOptions(TransformOptions):
    type: Literal["elementwise_mul"] = "elementwise_mul"


@register
class ElementwiseMul(Transform):
    name = "elementwise_mul"
    Options = MulOptions
    arity = 2

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        a, b = in_shapes
        if tuple(a) != tuple(b) or tuple(a) != tuple(out_shape):
            raise ShapeError(f"elementwise_mul needs equal shapes, got {fmt(a)}, {fmt(b)} -> {fmt(out_shape)}")
        return {}

    def forward(self, a, b):
        return a * b

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        a, b = inputs
        return [grad_out * b if need_inputs[0] else None, grad_out * a if need_inputs[1] else None], {}

    def describe(self, args):
        return f"{args[0]} ⊙ {args[1]}"
