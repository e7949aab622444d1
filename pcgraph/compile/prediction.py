"""The free prediction of a graph without a forward pass (a cyclic graph): what
evaluation, ``predict`` and a query take as the nodes' values when nothing below them
is observed.

On a DAG the prediction is the forward pass: each free node at its parents'
prediction. A cycle has no order to compute that in, so the prediction is the state
inference reaches from the clamped values: the free nodes start from zero and take
``train.inference.prediction_steps`` steps (``eval_steps``, else ``steps``) of the run's
own state optimiser and schedule, at fixed weights, on the energy as written (no
nudge). With nothing clamped below them, the free nodes relax towards agreeing with
their predictions: the fixed point the forward pass would compute if it could.
The start is zero whatever ``train.inference.init`` says (``normal`` draws training's
starting states around zero): a prediction is the same on every call, and the same
in evaluation, ``predict`` and a query.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..schedules import Schedule
from .clamp import draw_noise
from .state import State


class Only(Schedule):
    """A schedule's groups restricted to some nodes: the others keep their states
    (their energies still count, as constants, where they do not depend on the moving nodes)."""

    name = "only"

    def __init__(self, inner: Schedule, nodes):
        self.inner = inner
        self.nodes = frozenset(nodes)
        self.follows = inner.follows

    def groups(self, free: Sequence[str], generations: Sequence[Sequence[str]]) -> list[list[str]]:
        groups = ([n for n in g if n in self.nodes] for g in self.inner.groups(free, generations))
        return [g for g in groups if g]

    def at_fixed_weights(self) -> "Only":
        return self


def relax_start(prog, values: Mapping[str, torch.Tensor], batch: int, noise=None) -> State:
    """The state a free prediction starts from: the nodes in ``values`` clamped to
    them, every other node at zero (the mean of either ``train.inference.init``)."""
    out = {
        n: values[n]
        if n in values
        else torch.zeros((batch,) + prog.nodes[n].param_shape, dtype=prog.dtype, device=prog.device)
        for n in prog.order
    }
    return State(out, draw_noise(prog, batch, noise), frozenset(values))


def free_prediction(prog, state: State, nodes=None, steps: int | None = None, optimizer=None) -> State:
    """Relax ``state`` in place: ``steps`` (default: ``prediction_steps``) steps of the
    run's inference at fixed weights, moving only ``nodes`` (default: every free node)."""
    cfg = prog.train_cfg.inference
    schedule = prog.schedule.at_fixed_weights()
    if nodes is not None:
        schedule = Only(schedule, nodes)
    T = cfg.prediction_steps if steps is None else steps
    return prog.infer(state, steps=T, optimizer=optimizer, schedule=schedule)
