"""conv2d: [C, H, W] -> [C', H', W'] with H' = (H + 2 padding - kernel) // stride + 1.
Init: Glorot/He by the edge's activation, as for linear; bias zero."""

from __future__ import annotations

from typing import Tuple, Union

from pydantic import NonNegativeInt, PositiveInt

from ..core.lazy import F, torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt, init_weight

IntOrPair = Union[PositiveInt, Tuple[PositiveInt, PositiveInt]]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def check_spatial(name, in_shape, out_shape, kernel, stride, padding, channels_out):
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise ShapeError(f"{name} maps [C, H, W] to [C, H, W], got {fmt(in_shape)} -> {fmt(out_shape)}")
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    h, w = out_size(in_shape[1], kh, sh, ph), out_size(in_shape[2], kw, sw, pw)
    expected = (channels_out, h, w)
    if h < 1 or w < 1 or tuple(out_shape[1:]) != (h, w) or (channels_out is not None and out_shape[0] != channels_out):
        raise ShapeError(
            f"{name} with kernel {kernel}, stride {stride}, padding {padding} maps {fmt(in_shape)} to "
            f"{fmt(expected if channels_out is not None else (in_shape[0], h, w))}, not {fmt(out_shape)}"
        )


class Conv2dOptions(TransformOptions):
    kernel: IntOrPair
    stride: IntOrPair = 1
    padding: Union[NonNegativeInt, Tuple[NonNegativeInt, NonNegativeInt]] = 0
    bias: bool = True


@register("conv2d")
class Conv2d(Transform):
    Options = Conv2dOptions

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        check_spatial("conv2d", in_shapes[0], out_shape, options.kernel, options.stride, options.padding, out_shape[0])
        kh, kw = pair(options.kernel)
        shapes = {"weight": (out_shape[0], in_shapes[0][0], kh, kw)}
        if options.bias:
            shapes["bias"] = (out_shape[0],)
        return shapes

    def reset_parameters(self):
        init_weight(self.weight, self.activation)
        if self.options.bias:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x):
        o = self.options
        return F.conv2d(
            x, self._parameters["weight"], self._parameters.get("bias"), stride=pair(o.stride), padding=pair(o.padding)
        )

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        """The input, weight and bias gradients from one call of the convolution's
        backward kernel (the transposed convolution and the correlation of the input
        with the output gradient); only the ones asked for are computed."""
        (x,) = inputs
        o = self.options
        w = self._parameters["weight"]
        has_bias = self._parameters.get("bias") is not None
        mask = (bool(need_inputs[0]), bool(need_params), bool(need_params) and has_bias)
        if not any(mask):
            return [None], None
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad_out,
            x,
            w,
            [w.shape[0]] if has_bias else None,
            pair(o.stride),
            pair(o.padding),
            (1, 1),
            False,
            (0, 0),
            1,
            mask,
        )
        gp = None
        if need_params:
            gp = {"weight": gw}
            if has_bias:
                gp["bias"] = gb
        return [gx], gp
