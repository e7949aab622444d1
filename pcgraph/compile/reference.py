"""The plain inference path: autograd on the total energy, step by step -- the
definition the fast engine (``engine.py``) must match, and what ``Program.infer``
runs with ``fast=False``."""

from __future__ import annotations

import torch

from .energy import energy_terms, total_energy
from .guard import guarded
from .state import State


def infer_reference(prog, state: State, T: int, opt, groups: list[list[str]], steps_weights: bool, weight_step) -> None:
    """T steps of plain autograd on the total energy, group by group (``groups``: the
    schedule's); with ``steps_weights`` the weights' gradient is set and
    ``weight_step()`` called after every group's update."""
    natural = {n for n in state.free if prog.families[n].natural}
    params = list(prog.parameters())
    precondition = getattr(opt.cfg, "precondition", False)
    guard = getattr(opt.cfg, "guard", False)
    alphas: dict[int, torch.Tensor] = {}
    for _ in range(T):
        opt.begin_step()
        for k, group in enumerate(groups):
            with torch.enable_grad():
                values = {n: (state[n].detach().requires_grad_(n in group and n not in natural)) for n in state}
                leaves: dict = {n: None for n in group if n in natural}
                terms, mus = energy_terms(prog, values, state.noise, state.clamped, natural_leaves=leaves)
                per_sample = total_energy(terms)
                wrt = [leaves[n] if n in natural else values[n] for n in group]
                grads = torch.autograd.grad(
                    per_sample.sum(), wrt + (params if steps_weights else []), allow_unused=True
                )
            if steps_weights:
                B = per_sample.shape[0]
                for p, g in zip(params, grads[len(wrt) :]):
                    p.grad = torch.zeros_like(p) if g is None else g / B
            old = {n: state[n].clone() for n in group}
            for n, g in zip(group, grads[: len(wrt)]):
                if g is not None:
                    d = prog.families[n].project(g)
                    if precondition:
                        mu = mus[n].detach() if prog.in_edges[n] else None
                        d = d * prog.families[n].step_scale(state[n], mu, prog.params_of(n), prog.nodes[n].prior)
                    opt.update(n, state[n], d)
            if guard:
                before = per_sample.detach()
                alpha = alphas.get(k, torch.ones_like(before))
                alphas[k] = guarded(state, old, before, alpha, lambda: _total(prog, state), lambda n: None)
            if steps_weights:
                weight_step()


def _total(prog, state) -> torch.Tensor:
    """The total energy per sample [B] of the state, from scratch."""
    return total_energy(energy_terms(prog, state, state.noise, state.clamped)[0])
