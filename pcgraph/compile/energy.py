"""Energies: the one per-node energy formula, the one total, and the places that use
them -- the reference path (from scratch, differentiable), evaluation and the
backprop loss. The fast engine calls the same ``node_energy`` and ``total_energy``."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from ..core.errors import CompileError, DataError, Issue
from .clamp import clamped_from_batch, draw_noise
from .forward import forward_pass, free_state, predict_node, vis_mean
from .state import State


def node_energy(prog, n: str, x, mean, mu, clamped, params, fam=None, weight: float = 1.0) -> torch.Tensor | None:
    """Node ``n``'s energy per sample [B] holding ``x`` (mean parameters ``mean``):
    its family's term against the prediction ``mu`` (None: no parents, no term) plus
    its prior's term when it has a prior and is free. ``fam``: another form of the
    node's family to score it with (default: the program's). None: no term at all.
    ``weight`` multiplies the loss terms: a clamped node's term and a prior term
    (``State.loss_weight``)."""
    fam = prog.families[n] if fam is None else fam
    e = None if mu is None else fam.energy(x, mean, mu, params, n in clamped)
    if e is not None and weight != 1.0 and n in clamped:
        e = e * weight
    prior = prog.nodes[n].prior
    if prior is None or n in clamped:
        return e
    p = fam.prior_energy(x, mean, prior, params)
    if weight != 1.0:
        p = p * weight
    return p if e is None else e + p


def grad_state(fam, x, mu, params, g_vis, noise, prior, weight: float = 1.0) -> torch.Tensor:
    """The family's update direction of a free state (``Family.grad_state``) with its
    prior's term weighted by ``weight``."""
    if prior is None or weight == 1.0:
        return fam.grad_state(x, mu, params, g_vis, noise, prior)
    g = fam.grad_state(x, None, params, None, noise, prior).mul_(weight)
    if mu is None and g_vis is None:
        return g
    return g.add_(fam.grad_state(x, mu, params, g_vis, noise, None))


def step_scale(fam, x, mu, params, prior, weight: float = 1.0):
    """The inverse curvature of a node's own terms (``Family.step_scale``) with its
    prior's weighted by ``weight``: the preconditioner of its step."""
    if prior is None or weight == 1.0:
        return fam.step_scale(x, mu, params, prior)
    curvature = weight / fam.step_scale(x, None, params, prior)
    if mu is not None:
        curvature = curvature + 1.0 / fam.step_scale(x, mu, params, None)
    return 1.0 / curvature


def total_energy(terms: Mapping[str, torch.Tensor | None]) -> torch.Tensor | None:
    """The total energy per sample [B]: the sum of the nodes' terms (None: no term)."""
    return sum_terms(terms.values())


def sum_terms(terms: Iterable[torch.Tensor | None]) -> torch.Tensor | None:
    """The sum of the terms that are not None, in order (None when all are)."""
    total = None
    for e in terms:
        if e is not None:
            total = e if total is None else total + e
    return total


def mean_energy(terms: Mapping[str, torch.Tensor | None]) -> torch.Tensor:
    """The batch mean of the total energy: the weights' objective."""
    return total_energy(terms).mean()


def energy_terms(
    prog,
    state: Mapping[str, torch.Tensor],
    noise: Mapping,
    clamped,
    natural_leaves: dict | None = None,
    weight: float = 1.0,
):
    """({node: energy [B]}, {node: prediction}) computed from scratch (differentiable);
    ``weight`` multiplies the loss terms (``node_energy``)."""
    vis, mean = vis_mean(prog, state, noise, clamped, natural_leaves)
    energies, mus = {}, {}
    for n in prog.energy_nodes:
        if prog.in_edges[n]:
            mus[n] = predict_node(prog, n, vis)
        energies[n] = node_energy(prog, n, state[n], mean[n], mus.get(n), clamped, prog.params_of(n), weight=weight)
    return energies, mus


def node_energies(prog, state: State, weight: float = 1.0) -> dict[str, torch.Tensor]:
    """{node: energy per sample [B]} for every non-input node, prior terms included:
    the energy as written, or with the loss terms weighted by ``weight``."""
    return energy_terms(prog, state, state.noise, state.clamped, weight=weight)[0]


def mu(prog, state: State) -> dict[str, torch.Tensor]:
    """{node: mu [B, *param_shape]}: each node's prediction from the parents' current states,
    before the family's link (logits for categorical)."""
    return energy_terms(prog, state, state.noise, state.clamped)[1]


def kl_family(prog, n: str):
    """The F_KL form of node n's family (the program's own when compiled with kl)."""
    if prog.kl:
        return prog.families[n]
    if n not in prog.kl_families:
        info = prog.nodes[n]
        prog.kl_families[n] = info.family_cls(info.options, info.shape, kl=True, natural=False, dtype=prog.dtype)
    return prog.kl_families[n]


def loss_terms(
    prog, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None, *, kl_targets: bool = False
):
    """Under the plain forward pass: ({node: energy [B]} for the targets and the prior
    terms, {target: prediction mu}). Differentiable w.r.t. parameters. ``kl_targets``
    scores the targets with their F_KL energy whatever the program's energy
    (cross-entropy for a categorical target), so that losses compare across energies."""
    if not prog.graph.is_dag:
        raise CompileError(Issue(("train", "method"), "backprop needs a forward pass; this graph is cyclic"))
    clamped = clamped_from_batch(prog, batch)
    missing = [t for t in prog.targets if t not in clamped]
    if missing:
        info = prog.nodes[missing[0]]
        msg = f"the batch has no field '{info.bind}' for target node '{missing[0]}'"
        raise DataError(Issue(("nodes", missing[0], "bind"), msg, info.location))
    B = next(iter(clamped.values())).shape[0]
    fp = forward_pass(prog, clamped, draw_noise(prog, B, noise), B, copy=False)
    terms = {}
    for n in prog.energy_nodes:
        # under the forward pass only the clamped nodes (targets) differ from their
        # predictions; free nodes contribute their prior terms
        fam = kl_family(prog, n) if kl_targets and n in clamped else prog.families[n]
        m = fp.mean[n] if fam is prog.families[n] else fam.mean(fp.values[n], True)
        mu = fp.mu[n] if n in clamped else None
        e = node_energy(prog, n, fp.values[n], m, mu, clamped, prog.params_of(n), fam)
        if e is not None:
            terms[n] = e
    return terms, {t: fp.mu[t] for t in prog.targets}


def loss_bp(prog, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The backprop loss: batch mean of the target nodes' energies plus the prior
    terms, under the plain forward pass (differentiable w.r.t. parameters)."""
    return mean_energy(loss_terms(prog, batch, noise)[0])


@torch.no_grad()
def evaluate_batch(prog, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None):
    """({node: energy [B]}, {target: mu}) for evaluation: the targets' F_KL energy (their
    negative log-likelihood) under the prediction, plus the free nodes' prior terms. The
    prediction is the forward pass on a DAG (the BP loss terms) and the free prediction
    on a cyclic graph (``forward.free_state``: inference with the targets free), so
    that the loss means the same on both."""
    if prog.graph.is_dag:
        return loss_terms(prog, batch, noise, kl_targets=True)
    state = free_state(prog, batch, noise)
    clamped = clamped_from_batch(prog, batch)
    mus = mu(prog, state)
    terms = {}
    for n in prog.energy_nodes:
        if n in prog.targets and n in clamped:
            fam = kl_family(prog, n)
            x = clamped[n]
            e = node_energy(prog, n, x, fam.mean(x, True), mus[n], clamped, prog.params_of(n), fam)
        else:  # its prior term, if it has a prior
            e = node_energy(prog, n, state[n], prog.families[n].mean(state[n], False), None, state.clamped,
                            prog.params_of(n))
        if e is not None:
            terms[n] = e
    return terms, {t: mus[t] for t in prog.targets}
