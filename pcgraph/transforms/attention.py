"""Attention as two edges, so that the attention matrix can be a node of its own
(a categorical node: softmax over the last axis).

attention_scores: q [L, d], k [L', d] -> q k^T / sqrt(d)  [L, L']; ``causal`` puts
    MASK (a large negative logit, finite so that no inf - inf arises) on future
    positions, so their probability is exactly zero.
attention_apply: p [L, L'], v [L', d] -> p v  [L, d].

Both are bilinear, so their vector-Jacobian products are two matrix products each;
the masked (future) scores are constants and pass no gradient back.
"""

from __future__ import annotations

import math


from ..core.lazy import torch
from . import register
from .base import ShapeError, Transform, TransformOptions, bmm_into, fmt

from ..core.constants import MASK


class ScoresOptions(TransformOptions):
    causal: bool = False


@register("attention_scores")
class AttentionScores(Transform):
    Options = ScoresOptions
    arity = 2

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        q, k = in_shapes
        if len(q) != 2 or len(k) != 2 or q[1] != k[1] or tuple(out_shape) != (q[0], k[0]):
            raise ShapeError(
                f"attention_scores maps q [L, d] and k [L', d] to [L, L'], got {fmt(q)}, {fmt(k)} -> {fmt(out_shape)}"
            )
        if options.causal and q[0] != k[0]:
            raise ShapeError(f"causal attention needs as many queries as keys, got {fmt(q)}, {fmt(k)}")
        return {}

    def __init__(self, options, in_shapes, out_shape, activation):
        super().__init__(options, in_shapes, out_shape, activation)
        self.scale = 1.0 / math.sqrt(in_shapes[0][-1])
        if options.causal:
            n = out_shape[0]
            self.register_buffer("future", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)

    def support(self):
        """Where the output can put probability: on or before the diagonal if causal."""
        return ~self.future if self.options.causal else None

    def forward(self, q, k):
        s = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if self.options.causal:
            s = s.masked_fill(self.future, MASK)
        return s

    def _live(self, grad_out):
        """The output gradient on the entries that depend on q and k."""
        return grad_out.masked_fill(self.future, 0.0) if self.options.causal else grad_out

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        q, k = inputs
        g = self._live(grad_out)
        # d/dq = scale g k,  d/dk = scale g^T q
        gq = torch.matmul(g, k).mul_(self.scale) if need_inputs[0] else None
        gk = torch.matmul(g.transpose(-1, -2), q).mul_(self.scale) if need_inputs[1] else None
        return [gq, gk], {}

    def vjp_into(self, acc, inputs, grad_out, k):
        g = self._live(grad_out)
        a, b = (g, inputs[1]) if k == 0 else (g.transpose(-1, -2), inputs[0])
        return bmm_into(acc, a, b, self.scale)

    def describe(self, args):
        m = "causal_mask(" if self.options.causal else "("
        return f"{m}{args[0]}·{args[1]}ᵀ/√d)"


@register("attention_apply")
class AttentionApply(Transform):
    arity = 2

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        p, v = in_shapes
        if len(p) != 2 or len(v) != 2 or p[1] != v[0] or tuple(out_shape) != (p[0], v[1]):
            raise ShapeError(
                f"attention_apply maps p [L, L'] and v [L', d] to [L, d], got {fmt(p)}, {fmt(v)} -> {fmt(out_shape)}"
            )
        return {}

    def forward(self, p, v):
        return torch.matmul(p, v)

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        p, v = inputs
        # d/dp = g v^T,  d/dv = p^T g
        gp = torch.matmul(grad_out, v.transpose(-1, -2)) if need_inputs[0] else None
        gv = torch.matmul(p.transpose(-1, -2), grad_out) if need_inputs[1] else None
        return [gp, gv], {}

    def vjp_into(self, acc, inputs, grad_out, k):
        p, v = inputs
        a, b = (grad_out, v.transpose(-1, -2)) if k == 0 else (p.transpose(-1, -2), grad_out)
        return bmm_into(acc, a, b)

    def describe(self, args):
        return f"{args[0]}·{args[1]}"
