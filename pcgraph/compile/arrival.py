"""Weight gradients at the error's first arrival (Z-IL, Song et al. 2020, on any DAG).

From a forward-initialised state only the clamped targets and the prior terms carry
error. A reverse-topological sweep carries it back to the inputs: each free node takes
one step from its forward value, of one inverse curvature of its prediction's term
(Z-IL's step; training uses it whatever optimizer inference names), driven by the
errors its children held when the error first reached them -- the predictions stay at
their forward values until the sweep has passed (the fixed-prediction assumption), so
a node's message does not depend on which of its siblings the sweep visited first. The
node's own error right after that step is its *arrival error*. Each edge's weight
gradient is the one its target's arrival error gives with the edge's sources at their
forward values: local, as in any PC weight update -- an edge sees its own sources and
its target's error, never a loss.

A family's link from state to error (the softmax of a categorical node, the exponential
of a log-variance) is linearised over the step: the arrival error is the one an
infinitesimal step in the same direction carries, scaled to the step. With a step of
one inverse curvature a node's arrival error is then exactly the sum of its children's
messages -- backprop's delta -- and the weight gradients equal BP's on any DAG of any
families (Millidge et al. 2020 show the same for the fixed-prediction assumption). The
states themselves stay at their forward values.
"""

from __future__ import annotations

import torch

from ..schedules import get as get_schedule
from .engine import _accumulate


def arrival_errors(eng) -> tuple[dict, dict]:
    """({node: (g, sign)} with dE/dmu = sign * g, {node: state}) of every node the
    error reaches, at its arrival (clamped targets and prior terms: the forward state)."""
    prog = eng.prog
    st = eng.state
    eng._refresh(prog.energy_nodes)
    arrival, _ = eng._errors(prog.energy_nodes)
    states = {n: st[n] for n in arrival}
    for group in prog.free_groups(st, get_schedule("sweep")):
        group = [n for n in group if prog.in_edges[n]]  # a root has no edge to train
        leaving = [e for e in prog.edges if any(s in group for s in e.sources)]
        dirs = eng._directions(group, {k: v for k, v in arrival.items() if k not in group}, {}, None, leaving)
        for n, (d, sign) in dirs.items():
            fam = prog.families[n]
            # one inverse curvature of the prediction's term (a prior's pull is in d already)
            step = (d if sign > 0 else -d) * eng.step_scale(n, prior=False)
            states[n] = st[n] - step
            arrival[n] = (_error_after(fam, st[n], step, eng.mu[n], eng.params[n]), 1.0)
    return arrival, states


def _error_after(fam, x, step, mu, params):
    """dE/dmu after the state ``x`` takes ``-step``, to first order in the step: the
    error's value at x plus its directional derivative (forward mode), so a family's
    link (softmax, the log-variance's exponential) is linearised over the step and the
    error equals the one an infinitesimal step of the same direction would carry."""

    def error(state):
        g, sign, _ = fam.errors(state, fam.mean(state, False), mu, params, False)
        return g if sign > 0 else -g

    if fam.errors_affine:  # the first-order value is the value (and costs no forward-mode pass)
        return error(x - step)
    value, slope = torch.func.jvp(error, (x,), (-step,))
    return value + slope


def arrival_grads(eng) -> None:
    """Set ``.grad`` of every parameter to its gradient at first arrival (batch mean)."""
    arrival, states = arrival_errors(eng)
    acc: dict = {}
    eng._directions([], arrival, {}, acc)
    prog = eng.prog
    clamped = eng.state.clamped
    for n, pd in prog.node_params.items():
        if prog.in_edges[n] and n in arrival:  # a learned variance, at the arrival state
            x, fam = states[n], prog.families[n]
            for k, g in fam.grad_params(x, fam.mean(x, n in clamped), eng.mu[n], eng.params[n], n in clamped).items():
                _accumulate(acc, pd[k], g, 1.0)
    eng._set_grads(acc)
