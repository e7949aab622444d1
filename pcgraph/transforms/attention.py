"""Attention as two edges, so that the attention matrix can be a node of its own
(a categorical node: softmax over the last axis).

attention_scores: q [L, d], k [L', d] -> q k^T / sqrt(d)  [L, L']; ``causal`` puts
    MASK (a large negative logit, finite so that no inf - inf arises) on future
    positions, so their probability is exactly zero.
attention_apply: p [L, L'], v [L', d] -> p v  [L, d].
"""

from __future__ import annotations

import math
from typing import Literal


from ..core.lazy import torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt

from ..core.constants import MASK


class ScoresOptions(TransformOptions):
    type: Literal["attention_scores"] = "attention_scores"
    causal: bool = False


@register
class AttentionScores(Transform):
    name = "attention_scores"
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

    def describe(self, args):
        m = "causal_mask(" if self.options.causal else "("
        return f"{m}{args[0]}·{args[1]}ᵀ/√d)"


class ApplyOptions(TransformOptions):
    type: Literal["attention_apply"] = "attention_apply"


@register
class AttentionApply(Transform):
    name = "attention_apply"
    Options = ApplyOptions
    arity = 2

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        p, v = in_shapes
        if len(p) != 2 or len(v) != 2 or p[1] != v[0] or tuple(out_shape) != (p[0], v[1]):
            raise ShapeError(f"attention_apply maps p [L, L'] and v [L', d] to [L, d], got {fmt(p)}, {fmt(v)} -> {fmt(out_shape)}")
        return {}

    def forward(self, p, v):
        return torch.matmul(p, v)

    def describe(self, args):
        return f"{args[0]}·{args[1]}"
