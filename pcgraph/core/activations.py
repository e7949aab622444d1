"""Elementwise activations: the function, its derivative in closed form, and the
initialisation gain that suits it.

``derivative(a, y)`` receives the pre-activation ``a`` and the output ``y = f(a)``
so that functions whose derivative is cheapest from the output (tanh, sigmoid)
need not keep ``a`` around. ``needs_pre`` says whether ``a`` must be kept.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

from .lazy import F, torch
from .registry import Registry

LEAKY_SLOPE = 0.01
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]
    needs_pre: bool
    #: weight initialisation: "xavier" (Glorot uniform with ``gain``) or "kaiming" (He uniform)
    init: str
    gain: float
    #: g * f'(a) in as few passes over memory as possible (default: g * derivative)
    fused_grad: Callable | None = None
    #: in-place form of ``fn`` (used where the pre-activation is not kept)
    fn_: Callable | None = None

    def grad_pre(self, g: torch.Tensor, a: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        """The gradient with respect to the pre-activation, given the output's ``g``."""
        if self.fused_grad is not None:
            return self.fused_grad(g, a, y)
        return g * self.derivative(a, y)


activations: Registry[Activation] = Registry("activation")


def _add(a: Activation) -> None:
    activations.register(a.name)(a)


def _gelu_derivative(a, y):
    cdf = 0.5 * (1.0 + torch.erf(a * _SQRT_HALF))
    pdf = torch.exp(-0.5 * a * a) * _INV_SQRT_2PI
    return cdf + a * pdf


def _tanh_grad(g, a, y):
    return torch.addcmul(g, g * y, y, value=-1.0)  # g (1 - y^2)


def _tanh_by_sigmoid_(y):
    """``y <- tanh(y)`` in place as ``2 sigmoid(2 y) - 1``: four vectorised passes where
    the CPU build's float32 tanh kernel is scalar (about 3-6 x slower on the [256, 512]
    blocks of docs/performance.md). Within 1.8e-7 of tanh everywhere (1.5 ulp at
    |tanh| = 1), the same limits at +-inf, nan kept; relative accuracy is lost only
    where |tanh| < 1e-5, where it stays within the same absolute 1.8e-7."""
    y.mul_(2.0)
    torch.sigmoid_(y)
    return y.mul_(2.0).sub_(1.0)


def _by_sigmoid(a) -> bool:
    return a.dtype == torch.float32 and a.device.type == "cpu"


@functools.cache
def _tanh_function():
    """tanh through ``_tanh_by_sigmoid_`` as an autograd function whose backward and
    forward-mode derivative are tanh's own, from the output (defined on first use:
    torch is imported lazily)."""

    class Tanh(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(a):
            return _tanh_by_sigmoid_(a.clone())

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)
            ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return _tanh_grad(g, None, y)

        @staticmethod
        def jvp(ctx, da):
            (y,) = ctx.saved_tensors
            return _tanh_grad(da, None, y)

    return Tanh


def _tanh(a):
    if not _by_sigmoid(a):
        return torch.tanh(a)
    if a.requires_grad and torch.is_grad_enabled():
        return _tanh_function().apply(a)
    return _tanh_by_sigmoid_(a.clone())


def _tanh_(a):
    return _tanh_by_sigmoid_(a) if _by_sigmoid(a) and not a.requires_grad else torch.tanh_(a)


def _sigmoid_grad(g, a, y):
    t = g * y
    return torch.addcmul(t, t, y, value=-1.0)  # g y (1 - y)


_add(
    Activation(
        "identity", lambda a: a, lambda a, y: torch.ones_like(y), False, "xavier", 1.0, lambda g, a, y: g, lambda a: a
    )
)
_add(
    Activation(
        "tanh",
        _tanh,
        lambda a, y: 1.0 - y * y,
        False,
        "xavier",
        5.0 / 3.0,
        _tanh_grad,
        _tanh_,
    )
)
_add(
    Activation(
        "sigmoid",
        lambda a: torch.sigmoid(a),
        lambda a, y: y * (1.0 - y),
        False,
        "xavier",
        1.0,
        _sigmoid_grad,
        lambda a: torch.sigmoid_(a),
    )
)
_add(
    Activation(
        "relu",
        lambda a: torch.relu(a),
        lambda a, y: (y > 0).to(y.dtype),
        False,
        "kaiming",
        math.sqrt(2.0),
        lambda g, a, y: g.masked_fill(y <= 0, 0.0),
        lambda a: torch.relu_(a),
    )
)
_add(
    Activation(
        "hardtanh", lambda a: F.hardtanh(a), lambda a, y: ((a > -1.0) & (a < 1.0)).to(y.dtype), True, "xavier", 1.0
    )
)
_add(
    Activation(
        "leaky_relu",
        lambda a: F.leaky_relu(a, LEAKY_SLOPE),
        lambda a, y: torch.where(a > 0, torch.ones_like(a), torch.full_like(a, LEAKY_SLOPE)),
        True,
        "kaiming",
        math.sqrt(2.0 / (1 + LEAKY_SLOPE**2)),
    )
)
_add(Activation("gelu", lambda a: F.gelu(a), _gelu_derivative, True, "kaiming", math.sqrt(2.0)))
_add(Activation("softplus", lambda a: F.softplus(a), lambda a, y: torch.sigmoid(a), True, "kaiming", math.sqrt(2.0)))

ACTIVATION_NAMES = tuple(activations.names())


def get(name: str) -> Activation:
    return activations.get(name)
