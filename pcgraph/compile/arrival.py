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
from .engine import Engine
from .inference import free_groups

#: the sweep the error arrives by: one generation after another, from the targets back
SWEEP = get_schedule("sweep")


def arrival_errors(eng: Engine) -> tuple[dict, dict]:
    """({node: dE/dmu}, {node: state}) of every node the error reaches, at its arrival
    (clamped targets and prior terms: the forward state)."""
    prog, st = eng.prog, eng.state
    eng.refresh(prog.energy_nodes)
    arrival = eng.errors(prog.energy_nodes)
    states = {n: st[n] for n in arrival}
    for group in free_groups(prog, st, SWEEP):
        group = [n for n in group if prog.in_edges[n]]  # a root has no edge to train
        leaving = [e for e in prog.edges if any(s in group for s in e.sources)]
        ga = eng.edge_errors({k: v for k, v in arrival.items() if k not in group}, leaving)
        for n, d in eng.directions(group, ga, own=False).items():
            fam = prog.families[n]
            # one inverse curvature of the prediction's term (a prior's pull is in d already)
            step = d * eng.step_scale(n, prior=False)
            states[n] = st[n] - step
            arrival[n] = _error_after(fam, st[n], step, eng.mu[n], eng.params[n])
    return arrival, states


def _error_after(fam, x, step, mu, params):
    """dE/dmu after the state ``x`` takes ``-step``, to first order in the step: the
    error's value at x plus its directional derivative (forward mode), so a family's
    link (softmax, the log-variance's exponential) is linearised over the step and the
    error equals the one an infinitesimal step of the same direction would carry."""

    def error(state):
        return fam.grad_mu(state, fam.mean(state, False), mu, params, False)

    if fam.errors_affine:  # the first-order value is the value (and costs no forward-mode pass)
        return error(x - step)
    value, slope = torch.func.jvp(error, (x,), (-step,))
    return value + slope


def arrival_grads(eng: Engine) -> None:
    """Set ``.grad`` of every parameter to its gradient at first arrival (batch mean)."""
    prog = eng.prog
    arrival, states = arrival_errors(eng)
    grads: dict = {}
    eng.edge_param_grads(eng.edge_errors(arrival, prog.edges), prog.edges, grads)
    eng.node_param_grads(grads, states, nodes=arrival)  # a learned variance, at the arrival state
    eng.set_grads(grads)
