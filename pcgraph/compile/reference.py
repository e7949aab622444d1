"""The plain inference path: autograd on the total energy, step by step -- the
definition the fast engine (``engine.py``) must match, and what ``Program.infer``
runs with ``fast=False``."""

from __future__ import annotations

import torch

from .energy import energy_terms, node_energy, step_scale, total_energy
from .forward import predict_node, vis_mean
from .guard import Guard
from .state import State


def infer_reference(
    prog, state: State, T: int, opt, groups: list[list[str]], steps_weights: bool, weight_step, follows: bool = False
) -> None:
    """T steps of plain autograd on the total energy, group by group (``groups``: the
    schedule's); with ``steps_weights`` the weights' gradient is set and
    ``weight_step()`` called after every group's update; with ``follows`` each node's
    children enter its gradient with the errors they held after their own steps, and
    the nodes then follow their predictions (``schedules/carry.py``)."""
    precondition = getattr(opt.cfg, "precondition", False)
    guard = Guard() if getattr(opt.cfg, "guard", False) else None
    free = [n for g in groups for n in g]
    w = state.loss_weight
    for _ in range(T):
        opt.begin_step()
        if guard is not None:
            guard.start(state, free, lambda: _total(prog, state))
        held: dict = {}  # node -> dE/dmu held (following schedules)
        mu_at: dict = {}
        for group in groups:
            grads, mus, B = _gradients(prog, state, group, steps_weights, held if follows else None)
            if steps_weights:
                for p, g in zip(prog.parameters(), grads[len(group) :]):
                    p.grad = torch.zeros_like(p) if g is None else g / (B * w)
            for n, g in zip(group, grads[: len(group)]):
                mu = mus[n].detach() if n in mus else None
                if follows and mu is not None:
                    mu_at[n] = mu
                if g is not None:
                    d = prog.families[n].project(g)
                    if precondition:
                        d = d * step_scale(prog.families[n], state[n], mu, prog.params_of(n), prog.nodes[n].prior, w)
                    opt.update(n, state[n], d)
            if guard is not None:
                guard.scale(state, group, lambda n: None)
            if follows:
                held.update(_errors(prog, state, group, w))
            if steps_weights:
                weight_step()
        if follows:
            for n in prog.order:
                if n in mu_at:
                    vis, _ = vis_mean(prog, state, state.noise, state.clamped)
                    state[n].add_(predict_node(prog, n, vis) - mu_at[n])
        if guard is not None:
            guard.judge(state, lambda: _total(prog, state), lambda n: None)


def _gradients(prog, state: State, group, steps_weights: bool, held: dict | None):
    """(gradients of the group's states -- of their mean parameters for natural updates
    -- and, with ``steps_weights``, of the weights; the group's predictions; B). With
    ``held`` the children of the group enter through the errors held there."""
    natural = {n for n in group if prog.families[n].natural}
    params = list(prog.parameters()) if steps_weights else []
    with torch.enable_grad():
        values = {n: (state[n].detach().requires_grad_(n in group and n not in natural)) for n in state}
        leaves: dict = {n: None for n in natural}
        terms, mus = energy_terms(prog, values, state.noise, state.clamped, leaves, state.loss_weight)
        if held is None:
            objective = total_energy(terms).sum()
        else:  # the group's own terms; each child's term linear in its prediction, its error held
            for c in {e.target for n in group for e in prog.out_edges[n]}:
                if c not in held and c in state.clamped:
                    held[c] = _errors(prog, state, [c], state.loss_weight)[c]
            own = [terms[n] for n in group if terms.get(n) is not None]
            linear = [(held[c] * mus[c]).sum() for c in held if c in mus and mus[c].requires_grad]
            objective = sum(t.sum() for t in own) + sum(linear)
        wrt = [leaves[n] if n in natural else values[n] for n in group]
        grads = torch.autograd.grad(objective, wrt + params, allow_unused=True)
    B = next(iter(terms.values())).shape[0]
    return grads, mus, B


def _errors(prog, state: State, nodes, weight: float) -> dict:
    """{node: dE/dmu} at the current state, by autograd on the node's energy."""
    vis, mean = vis_mean(prog, state, state.noise, state.clamped)
    out = {}
    for n in nodes:
        if not prog.in_edges[n]:
            continue
        with torch.enable_grad():
            mu = predict_node(prog, n, vis).detach().requires_grad_(True)
            e = node_energy(prog, n, state[n], mean[n], mu, state.clamped, prog.params_of(n), weight=weight)
            out[n] = torch.autograd.grad(e.sum(), mu)[0]
    return out


def _total(prog, state) -> torch.Tensor:
    """The total energy per sample [B] of the state, from scratch (loss terms weighted)."""
    return total_energy(energy_terms(prog, state, state.noise, state.clamped, weight=state.loss_weight)[0])
