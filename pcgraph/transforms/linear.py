"""linear: W . concat(inputs) + b on the last axis (several sources are concatenated).

Init (``init: auto``): Glorot-uniform scaled by the activation's gain (tanh 5/3,
sigmoid/identity 1), He-uniform for rectifiers; or as ``init`` names it; bias zero.
"""

from __future__ import annotations

from typing import Literal

from ..core.lazy import F, torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt, init_weight


class TorchGemm:
    """The three products of a linear edge with plain torch operations (MKL on CPU,
    cuBLAS on CUDA; autograd differentiates them). The compiler may give an edge other
    kernels with the same interface (``pcgraph/compile/kernels.py``); ``k`` is the
    source whose weight block ``w`` is."""

    @staticmethod
    def linear(x, w, b, k):
        return F.linear(x, w, b)

    @staticmethod
    def input(g, w, k):
        return g @ w

    @staticmethod
    def input_add(a2, g2, w, k, inplace):
        """``a2 + g2 @ w``, in place when ``inplace``: the matmul accumulates, no extra
        pass over memory."""
        return a2.addmm_(g2, w) if inplace else torch.addmm(a2, g2, w)

    @staticmethod
    def weight(g2, x2):
        return g2.t() @ x2


class LinearOptions(TransformOptions):
    bias: bool = True
    #: auto: by the edge's activation (see the module doc); xavier_uniform /
    #: xavier_normal: Glorot with gain 1 whatever the activation; kaiming_uniform:
    #: He-uniform with the activation's gain
    init: Literal["auto", "xavier_uniform", "xavier_normal", "kaiming_uniform"] = "auto"


def check_last_axis(name, in_shapes, out_shape):
    lead = tuple(out_shape[:-1])
    for s in in_shapes:
        if tuple(s[:-1]) != lead:
            shapes = ", ".join(fmt(s) for s in in_shapes)
            raise ShapeError(
                f"{name} acts on the last axis, so the other axes must agree: {shapes} -> {fmt(out_shape)}"
                + (" (use a flatten edge first)" if len(s) > len(out_shape) else "")
            )
    return sum(s[-1] for s in in_shapes)


@register("linear")
class Linear(Transform):
    Options = LinearOptions
    arity = None
    #: the GEMM kernels this edge runs (the compiler may replace them per edge)
    gemm = TorchGemm
    new_output = True  # a product (plus a bias): always a new tensor

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        n_in = check_last_axis("linear", in_shapes, out_shape)
        shapes = {"weight": (out_shape[-1], n_in)}
        if options.bias:
            shapes["bias"] = (out_shape[-1],)
        return shapes

    def __init__(self, options, in_shapes, out_shape, activation):
        super().__init__(options, in_shapes, out_shape, activation)
        self.splits = [s[-1] for s in self.in_shapes]

    def reset_parameters(self):
        how = self.options.init
        if how == "xavier_uniform":
            torch.nn.init.xavier_uniform_(self.weight)
        elif how == "xavier_normal":
            torch.nn.init.xavier_normal_(self.weight)
        else:
            init_weight(self.weight, self.activation, kaiming=how == "kaiming_uniform")
        if getattr(self, "bias", None) is not None:
            torch.nn.init.zeros_(self.bias)

    # (parameters are read from ``_parameters`` directly: nn.Module's attribute lookup
    # is slow for them, and these run several times per inference step)
    def _weights(self):
        w = self._parameters["weight"]
        if len(self.splits) == 1:
            return [w]
        return list(torch.split(w, self.splits, dim=1))

    def forward(self, *xs):
        b = self._parameters.get("bias")
        gemm = self.gemm
        if len(xs) == 1:
            return gemm.linear(xs[0], self._parameters["weight"], b, 0)
        out = None
        for k, (x, w) in enumerate(zip(xs, self._weights())):
            y = gemm.linear(x, w, None, k)
            out = y if out is None else out + y
        return out if b is None else out + b

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        ws = self._weights()
        gemm = self.gemm
        gin = [gemm.input(grad_out, w, k) if need else None for k, (w, need) in enumerate(zip(ws, need_inputs))]
        gp = None
        if need_params:
            g2 = grad_out.reshape(-1, grad_out.shape[-1])
            x2 = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)
            gp = {"weight": gemm.weight(g2, x2.reshape(-1, x2.shape[-1]))}
            if self._parameters.get("bias") is not None:
                gp["bias"] = g2.sum(0)
        return gin, gp

    def vjp_into(self, acc, inputs, grad_out, k):
        w = self._weights()[k]
        flat = grad_out.dim() == 2  # [batch, features]: nothing to reshape
        g2 = grad_out if flat else grad_out.reshape(-1, grad_out.shape[-1])
        if acc is None:
            g = self.gemm.input(g2, w, k)
            return g if flat else g.reshape(inputs[k].shape)
        a2 = acc if flat else acc.reshape(-1, acc.shape[-1])
        if acc.is_contiguous():  # the matmul adds into acc: no extra pass over memory
            self.gemm.input_add(a2, g2, w, k, True)
            return acc
        return self.gemm.input_add(a2, g2, w, k, False).reshape(acc.shape)

    def describe(self, args):
        x = args[0] if len(args) == 1 else "concat(" + ", ".join(args) + ")"
        return f"W·{x}" + (" + b" if getattr(self, "bias", None) is not None else "")
