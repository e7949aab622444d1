"""elementwise_mul: a * b for equal shapes (gating)."""

from __future__ import annotations


from . import register
from .base import ShapeError, Transform, fmt


@register("elementwise_mul")
class ElementwiseMul(Transform):
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
