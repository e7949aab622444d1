"""avgpool2d and maxpool2d: [C, H, W] -> [C, H', W'], stride defaults to the kernel.

Vector-Jacobian products in closed form: an average spreads each output's gradient
evenly over its window; a maximum routes it to the entry that won the window (the
first of equal ones, as the forward's argmax does), summed where windows overlap."""

from __future__ import annotations

import weakref
from typing import Literal, Optional


from ..core.lazy import F, torch
from . import register
from .base import Transform, TransformOptions
from .conv2d import IntOrPair, check_spatial, out_size, pair


class _PoolOptions(TransformOptions):
    kernel: IntOrPair
    stride: Optional[IntOrPair] = None


class AvgPoolOptions(_PoolOptions):
    type: Literal["avgpool2d"] = "avgpool2d"


class MaxPoolOptions(_PoolOptions):
    type: Literal["maxpool2d"] = "maxpool2d"


class _Pool(Transform):
    @classmethod
    def output_shape(cls, options, in_shapes):
        shape = tuple(in_shapes[0])
        if len(shape) != 3:
            return None  # the shape rule says what a pooling needs
        (kh, kw), (sh, sw) = pair(options.kernel), pair(options.stride or options.kernel)
        return (shape[0], out_size(shape[1], kh, sh, 0), out_size(shape[2], kw, sw, 0))

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        stride = options.stride or options.kernel
        check_spatial(cls.name, in_shapes[0], out_shape, options.kernel, stride, 0, in_shapes[0][0] if len(in_shapes[0]) == 3 else None)
        return {}

    def _args(self):
        return pair(self.options.kernel), pair(self.options.stride or self.options.kernel)


@register
class AvgPool2d(_Pool):
    name = "avgpool2d"
    Options = AvgPoolOptions

    def forward(self, x):
        k, s = self._args()
        return F.avg_pool2d(x, k, s)

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        if not need_inputs[0]:
            return [None], {}
        k, s = self._args()
        # every input entry of a window gets the window's gradient / (kernel area)
        return [torch.ops.aten.avg_pool2d_backward(grad_out, inputs[0], k, s, (0, 0), False, True, None)], {}


@register
class MaxPool2d(_Pool):
    name = "maxpool2d"
    Options = MaxPoolOptions

    def __init__(self, options, in_shapes, out_shape, activation):
        super().__init__(options, in_shapes, out_shape, activation)
        self._winners = None  # (weak reference to the last input, its version, argmax)

    def forward(self, x):
        k, s = self._args()
        y, where = F.max_pool2d(x, k, s, return_indices=True)  # the same kernel computes both
        if not torch.compiler.is_compiling() and not x.is_inference():
            self._winners = (weakref.ref(x), x._version, where)
        return y

    def _argmax(self, x):
        """The winners' flat positions in each [H, W] plane: those of the last forward
        while its input is this very tensor, unchanged since; else computed anew."""
        last = None if torch.compiler.is_compiling() else self._winners
        if last is not None and last[0]() is x and not x.is_inference() and x._version == last[1]:
            return last[2]
        k, s = self._args()
        return F.max_pool2d(x, k, s, return_indices=True)[1]

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        if not need_inputs[0]:
            return [None], {}
        (x,) = inputs
        where = self._argmax(x)
        b, c = where.shape[:2]
        g = x.new_zeros(x.shape)
        g.view(b, c, -1).scatter_add_(2, where.reshape(b, c, -1), grad_out.reshape(b, c, -1))
        return [g], {}
