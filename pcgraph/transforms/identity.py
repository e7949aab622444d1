"""identity: out = in (a residual or skip connection, summed with the other edges)."""

from __future__ import annotations


from . import register
from .base import ShapeError, Transform, fmt


@register("identity")
class Identity(Transform):

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        if tuple(in_shapes[0]) != tuple(out_shape):
            raise ShapeError(f"identity needs equal shapes, got {fmt(in_shapes[0])} -> {fmt(out_shape)}")
        return {}

    def forward(self, x):
        return x

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        return [grad_out if need_inputs[0] else None], {}

    def describe(self, args):
        return args[0]
