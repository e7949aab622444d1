"""mlp: a small multi-layer perceptron on the last axis (hidden widths given, the
output width read off the target). Init as for linear, per layer.

The vector-Jacobian product reruns the layers (without autograd) to get each
layer's input and pre-activation, then carries the gradient back layer by layer."""

from __future__ import annotations

from typing import List, Literal

from pydantic import PositiveInt

from ..core.lazy import F, torch
from ..core import activations
from . import register
from .base import Transform, TransformOptions, init_weight
from .linear import check_last_axis


class MLPOptions(TransformOptions):
    hidden: List[PositiveInt] = []
    activation: Literal[activations.ACTIVATION_NAMES] = "relu"  # type: ignore[valid-type]
    bias: bool = True


@register("mlp")
class MLP(Transform):
    Options = MLPOptions
    arity = None

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        n_in = check_last_axis("mlp", in_shapes, out_shape)
        widths = [n_in, *options.hidden, out_shape[-1]]
        shapes = {}
        for i in range(len(widths) - 1):
            shapes[f"weight{i}"] = (widths[i + 1], widths[i])
            if options.bias:
                shapes[f"bias{i}"] = (widths[i + 1],)
        return shapes

    def reset_parameters(self):
        inner = activations.get(self.options.activation)
        n = len(self.options.hidden) + 1
        for i in range(n):
            init_weight(getattr(self, f"weight{i}"), inner if i < n - 1 else self.activation)
            if self.options.bias:
                torch.nn.init.zeros_(getattr(self, f"bias{i}"))

    def _layers(self, xs):
        """[(layer input, its output before the activation)] of every layer."""
        h = xs[0] if len(xs) == 1 else torch.cat(xs, -1)
        act = activations.get(self.options.activation).fn
        p = self._parameters
        n = len(self.options.hidden) + 1
        out = []
        for i in range(n):
            a = F.linear(h, p[f"weight{i}"], p.get(f"bias{i}"))
            out.append((h, a))
            h = act(a) if i < n - 1 else a
        return out

    def forward(self, *xs):
        return self._layers(xs)[-1][1]

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        if not any(need_inputs) and not need_params:
            return [None] * len(inputs), None
        act = activations.get(self.options.activation)
        p = self._parameters
        layers = self._layers(inputs)
        gp = {} if need_params else None
        g = grad_out  # the gradient on layer i's pre-activation
        for i in range(len(layers) - 1, -1, -1):
            h, _ = layers[i]
            if need_params:
                g2 = g.reshape(-1, g.shape[-1])
                gp[f"weight{i}"] = g2.t() @ h.reshape(-1, h.shape[-1])
                if self.options.bias:
                    gp[f"bias{i}"] = g2.sum(0)
            if i == 0 and not any(need_inputs):
                break
            g = g @ p[f"weight{i}"]
            if i > 0:
                g = act.grad_pre(g, layers[i - 1][1], h)
        gin = [None] * len(inputs)
        if any(need_inputs):
            parts = [g] if len(inputs) == 1 else torch.split(g, [x.shape[-1] for x in inputs], -1)
            gin = [part if need else None for part, need in zip(parts, need_inputs)]
        return gin, gp
