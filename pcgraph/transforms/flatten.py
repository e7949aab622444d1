"""flatten: any per-sample shape -> [product]."""

from __future__ import annotations

import math
from typing import Literal

from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class FlattenOptions(TransformOptions):
    type: Literal["flatten"] = "flatten"


@register
class Flatten(Transform):
    name = "flatten"
    Options = FlattenOptions

    @classmethod
    def output_shape(cls, options, in_shapes):
        return (math.prod(in_shapes[0]),)

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        n = math.prod(in_shapes[0])
        if tuple(out_shape) != (n,):
            raise ShapeError(f"flatten maps {fmt(in_shapes[0])} to [{n}], not {fmt(out_shape)}")
        return {}

    def forward(self, x):
        return x.reshape(x.shape[0], -1)

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        return [grad_out.reshape(inputs[0].shape) if need_inputs[0] else None], {}
