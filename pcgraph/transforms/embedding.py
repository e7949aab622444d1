"""embedding: long token ids [L] -> vectors [L, d] (d read off the target), plus an
optional positional term: ``learned`` (a [L, d] table) or ``sinusoidal`` (fixed).
Init: N(0, 1/d) for the token and learned position tables.

Token ids take no gradient; a token row's gradient is the sum of the output
gradients at the positions holding that token, a learned position's the batch sum."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import PositiveInt

from ..core.lazy import torch
from . import register
from .base import ShapeError, Transform, TransformOptions, fmt


class EmbeddingOptions(TransformOptions):
    vocab: PositiveInt
    positional: Literal["none", "learned", "sinusoidal"] = "none"


def sinusoid(length: int, d: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, i / d)
    table = torch.zeros(length, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d // 2])
    return table


@register("embedding")
class Embedding(Transform):
    Options = EmbeddingOptions
    input_dtype = "long"

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        (inp,) = in_shapes
        if len(out_shape) != len(inp) + 1 or tuple(out_shape[:-1]) != tuple(inp):
            want = fmt(inp)[:-1] + (", d]" if inp else "d]")
            raise ShapeError(f"embedding maps token ids {fmt(inp)} to {want}, not {fmt(out_shape)}")
        shapes = {"weight": (options.vocab, out_shape[-1])}
        if options.positional == "learned":
            shapes["position"] = tuple(out_shape)
        return shapes

    def __init__(self, options, in_shapes, out_shape, activation):
        super().__init__(options, in_shapes, out_shape, activation)
        if options.positional == "sinusoidal":
            self.register_buffer("position_table", sinusoid(out_shape[-2] if len(out_shape) > 1 else 1, out_shape[-1]))

    def reset_parameters(self):
        std = 1.0 / math.sqrt(self.out_shape[-1])
        torch.nn.init.normal_(self.weight, 0.0, std)
        if self.options.positional == "learned":
            torch.nn.init.normal_(self.position, 0.0, std)

    def forward(self, tokens):
        out = torch.nn.functional.embedding(tokens, self.weight)
        if self.options.positional == "learned":
            out = out + self.position
        elif self.options.positional == "sinusoidal":
            out = out + self.position_table.to(out.dtype)
        return out

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        if not need_params:
            return [None], None
        w = self._parameters["weight"]
        d = w.shape[-1]
        gw = w.new_zeros(w.shape).index_add_(0, inputs[0].reshape(-1), grad_out.reshape(-1, d))
        gp = {"weight": gw}
        if self.options.positional == "learned":
            gp["position"] = grad_out.sum(0)
        return [None], gp

    def describe(self, args):
        pos = {"none": "", "learned": " + P", "sinusoidal": " + sinusoid"}[self.options.positional]
        return f"E[{args[0]}]{pos}"
