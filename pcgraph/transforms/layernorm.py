"""layernorm: normalise the last axis, then (``affine``) scale and shift.

With z = (x - mean) / sqrt(var + eps) and h = g * weight the output gradient on z,
the input gradient is (h - mean(h) - z mean(h z)) / sqrt(var + eps) (means over the
last axis); weight and bias get the batch sums of g z and g."""

from __future__ import annotations


from pydantic import PositiveFloat

from ..core.lazy import torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class LayerNormOptions(TransformOptions):
    eps: PositiveFloat = 1e-5
    affine: bool = True


@register("layernorm")
class LayerNorm(Transform):
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
        w = self._parameters.get("weight")
        b = self._parameters.get("bias")
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, self.options.eps)

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        (x,) = inputs
        affine = self.options.affine
        if not need_inputs[0] and not (need_params and affine):
            return [None], {} if need_params else None
        var, mean = torch.var_mean(x, -1, correction=0, keepdim=True)
        rstd = (var + self.options.eps).rsqrt_()
        z = (x - mean).mul_(rstd)
        gx = None
        if need_inputs[0]:
            h = grad_out * self._parameters["weight"] if affine else grad_out
            hz = torch.linalg.vecdot(h, z).unsqueeze_(-1).div_(x.shape[-1])
            gx = (h - h.mean(-1, keepdim=True)).addcmul_(z, hz, value=-1.0).mul_(rstd)
        gp = {} if need_params else None
        if need_params and affine:
            d = x.shape[-1]
            gp = {"weight": (grad_out * z).reshape(-1, d).sum(0), "bias": grad_out.reshape(-1, d).sum(0)}
        return [gx], gp
