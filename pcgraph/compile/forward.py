"""The forward pass: what each node shows its children, each edge's output, each
node's prediction, and the state in which every free node holds its prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..core.errors import DataError, Issue
from ..transforms.base import shares_memory
from .clamp import clamped_from_batch, draw_noise
from .prediction import free_prediction
from .state import State


def see(prog, n: str, x: torch.Tensor, clamped, noise: Mapping, natural_leaves: dict | None = None):
    """(mean parameters, what children see) of node ``n`` holding ``x``: an input has
    no mean and is seen as it is; a node without children is not seen (None). A node
    named in ``natural_leaves`` gets its mean as an autograd leaf (stored there)."""
    if prog.nodes[n].role == "input":
        return None, x
    fam = prog.families[n]
    m = fam.mean(x, n in clamped)
    if natural_leaves is not None and n in natural_leaves:
        m = natural_leaves[n] = m if m.requires_grad else m.detach().requires_grad_(True)
    return m, (fam.visible(x, m, noise.get(n)) if prog.out_edges[n] else None)


def vis_mean(prog, state: Mapping[str, torch.Tensor], noise: Mapping, clamped, natural_leaves: dict | None = None):
    """({node: what children see}, {node: mean parameters}) of a state."""
    vis, mean = {}, {}
    for n in prog.order:
        m, v = see(prog, n, state[n], clamped, noise, natural_leaves)
        if m is not None:
            mean[n] = m
        if v is not None:
            vis[n] = v
    return vis, mean


def edge_forward(prog, e, vis: Mapping[str, torch.Tensor], inplace: bool = False):
    """(output after activation, pre-activation) of one edge. ``inplace`` (no
    autograd) applies the activation in place when the pre-activation is not needed
    for its derivative; the pre-activation is then None."""
    mod = prog.transforms[e.name]
    a = mod(*[vis[s] for s in e.sources])
    act = prog.acts[e.name]
    if act.name == "identity":
        return a, a
    if (
        inplace
        and not act.needs_pre
        and act.fn_ is not None
        and (mod.new_output or not any(shares_memory(a, vis[s]) for s in e.sources))
    ):
        return act.fn_(a), None
    return act.fn(a), a


def predict_node(prog, n: str, vis, out: dict | None = None, pre: dict | None = None) -> torch.Tensor:
    """Node ``n``'s prediction mu: the sum of its in-edges' outputs (kept in ``out``
    and ``pre`` by edge when given)."""
    mu = None
    for e in prog.in_edges[n]:
        y, a = edge_forward(prog, e, vis)
        if out is not None:
            out[e.name] = y
            pre[e.name] = a
        mu = y if mu is None else mu + y
    return mu


@dataclass
class ForwardPass:
    """What a forward pass computed, by node or edge."""

    values: dict  # node -> state
    vis: dict  # node -> what children see
    mean: dict  # node -> mean parameters
    mu: dict  # node -> prediction
    out: dict  # edge -> output
    pre: dict  # edge -> pre-activation


def forward_pass(prog, clamped: dict, noise: dict, batch_size: int, copy: bool = True) -> ForwardPass:
    """Every free node takes its prediction (zero energy), or its prior's state if it
    has no parents. ``copy=False`` lets states alias predictions (no in-place updates follow)."""
    fp = ForwardPass({}, {}, {}, {}, {}, {})
    for n in prog.order:
        info = prog.nodes[n]
        if info.role != "input" and prog.in_edges[n]:
            fp.mu[n] = predict_node(prog, n, fp.vis, fp.out, fp.pre)
        if n in clamped:
            x = clamped[n]
        elif info.role == "input":
            raise DataError(Issue(("nodes", n), f"input node '{n}' has no data", info.location))
        elif n in fp.mu:
            x = prog.families[n].from_prediction(fp.mu[n], copy)
        else:
            x = prog.families[n].from_prior(info.prior, batch_size, prog.dtype, prog.device)
        fp.values[n] = x
        m, v = see(prog, n, x, clamped, noise)
        if m is not None:
            fp.mean[n] = m
        if v is not None:
            fp.vis[n] = v
    return fp


def forward_state(prog, batch: Mapping[str, Any], fixed: Mapping[str, torch.Tensor] | None = None, noise=None) -> State:
    """The forward pass as a State: every free node takes its prediction, except the
    nodes in ``fixed`` (node -> state), which keep the given state. Targets are free."""
    clamped = clamped_from_batch(prog, batch, targets=False)
    for n, v in (fixed or {}).items():
        if n not in prog.nodes:
            raise KeyError(f"no node '{n}'")
        clamped[n] = v.to(prog.device, prog.dtype) if v.is_floating_point() else v.to(prog.device)
    B = next(iter(clamped.values())).shape[0]
    nz = draw_noise(prog, B, noise)
    fp = forward_pass(prog, clamped, nz, B)
    return State(fp.values, nz, frozenset(n for n in clamped if prog.nodes[n].role == "input"))


def predict(prog, batch: Mapping[str, Any], steps: int | None = None) -> dict[str, torch.Tensor]:
    """The mean parameters of the targets' predicted distributions: the forward pass's
    (a DAG), or the free prediction's (a cyclic graph, ``prediction.free_prediction``:
    ``steps``, default the spec's eval_steps or steps)."""
    clamped = clamped_from_batch(prog, batch, targets=False)
    B = next(iter(clamped.values())).shape[0]
    nz = draw_noise(prog, B, None)
    if prog.graph.is_dag:
        mu = forward_pass(prog, clamped, nz, B, copy=False).mu
    else:
        mu = prog.mu(free_state(prog, batch, steps=steps))
    return {t: prog.families[t].prediction_value(mu[t]) for t in prog.targets}


def free_state(prog, batch: Mapping[str, Any], noise=None, steps: int | None = None) -> State:
    """The free prediction of a cyclic graph for ``batch``: its inputs clamped, every
    other node relaxed from zero (``prediction.free_prediction``)."""
    inputs_only = {prog.nodes[n].bind: batch[prog.nodes[n].bind] for n in prog.inputs}
    state = prog.init_state(inputs_only, init="zeros", noise=noise)
    return free_prediction(prog, state, steps=steps)
