"""identity: out = in (a residual or skip connection, summed with the other edges)."""

from typing import Literal

import torch

from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class IdentityOptions(TransformOptions):
    type: Literal["identity"] = "identity"


@register
class Identity(Transform):
    name = "identity"
    Options = IdentityOptions
    closed_form = True

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        if tuple(in_shapes[0]) != tuple(out_shape):
            raise ShapeError(f"identity needs equal shapes, got {fmt(in_shapes[0])} -> {fmt(out_shape)}")
        return {}

    def forward(self, x):
        return x

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        return [grad_out if need_inputs[0] else None], {}

    def vjp_into(self, acc, acc_sign, owned, inputs, grad_out, sign, k):
        if acc is None:
            return grad_out, sign, False
        if owned:
            return acc.add_(grad_out, alpha=sign * acc_sign), acc_sign, True
        return torch.add(acc, grad_out, alpha=sign * acc_sign), acc_sign, True

    def describe(self, args):
        return args[0]
