"""The state inference starts from: the forward pass (every free node at its
prediction, the fast path's caches already filled), or zeros or a normal draw."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..core.errors import CompileError, Issue
from .clamp import clamped_from_batch, draw_noise, per_example
from .engine import Engine
from .forward import forward_pass
from .state import State

INITS = ("forward", "zeros", "normal")


def init_state(
    prog,
    batch: Mapping[str, Any],
    init: str = "forward",
    noise: Mapping[str, torch.Tensor] | None = None,
    loss_weight: float = 1.0,
) -> State:
    """A State for ``batch`` (bind name -> tensor). Inputs are clamped, and targets
    too when the batch has their field. ``init``: forward | zeros | normal.
    ``loss_weight``: the weight of the loss terms in the energy the state relaxes on
    (``State.loss_weight``)."""
    clamped = clamped_from_batch(prog, batch)
    B = next(iter(clamped.values())).shape[0]
    nz = draw_noise(prog, B, noise)
    with torch.no_grad():
        if init == "forward":
            if not prog.graph.is_dag:
                msg = "a cyclic graph has no forward pass: use init='zeros' or 'normal'"
                raise CompileError(Issue(("train", "inference", "init"), msg))
            fp = forward_pass(prog, clamped, nz, B)
            state = State(fp.values, nz, frozenset(clamped), loss_weight)
            state.engine = Engine(prog, state, fp.vis, fp.mean, fp.mu, fp.out, fp.pre, fresh=True)
            return state
        if init not in INITS:
            raise ValueError(f"init must be {', '.join(INITS[:-1])} or {INITS[-1]}, got {init!r}")
        values = {}
        for n in prog.order:
            if n in clamped:
                values[n] = clamped[n]
                continue
            shape = (B,) + prog.nodes[n].param_shape
            if init == "zeros":
                values[n] = torch.zeros(shape, dtype=prog.dtype, device=prog.device)
            else:
                values[n] = per_example(
                    prog, lambda b, tail=shape[1:]: torch.randn((b,) + tail, dtype=prog.dtype, device=prog.device), B
                )
        state = State(values, nz, frozenset(clamped), loss_weight)
        state.engine = Engine.from_state(prog, state)
        return state
