"""avgpool2d and maxpool2d: [C, H, W] -> [C, H', W'], stride defaults to the kernel."""

from __future__ import annotations

from typing import Literal, Optional


from ..core.lazy import F
from . import register
from .base import Transform, TransformOptions
from .conv2d import IntOrPair, check_spatial, pair


class _PoolOptions(TransformOptions):
    kernel: IntOrPair
    stride: Optional[IntOrPair] = None


class AvgPoolOptions(_PoolOptions):
    type: Literal["avgpool2d"] = "avgpool2d"


class MaxPoolOptions(_PoolOptions):
    type: Literal["maxpool2d"] = "maxpool2d"


class _Pool(Transform):
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


@register
class MaxPool2d(_Pool):
    name = "maxpool2d"
    Options = MaxPoolOptions

    def forward(self, x):
        k, s = self._args()
        return F.max_pool2d(x, k, s)
