"""The plain inference path: autograd on the total energy, step by step -- the
definition the fast engine (``engine.py``) must match, and what ``Program.infer``
runs with ``fast=False``. The guard is written out here as plainly as the step."""

from __future__ import annotations

import torch

from .engine import GUARD_SHRINK, guard_choice
from .state import State


def infer_reference(prog, state: State, T: int, opt, schedule, weight_step) -> None:
    """Plain autograd on the total energy: the definition the fast path must match."""
    natural = {n for n in state.free if prog.families[n].natural}
    params = [p for p in prog.parameters()]
    precondition = getattr(opt.cfg, "precondition", False)
    guard = getattr(opt.cfg, "guard", False)
    alphas: dict[int, torch.Tensor] = {}
    for _ in range(T):
        opt.begin_step()
        for k, group in enumerate(prog.free_groups(state, schedule)):
            with torch.enable_grad():
                values = {n: (state[n].detach().requires_grad_(n in group and n not in natural)) for n in state}
                leaves: dict = {n: None for n in group if n in natural}
                terms, mus = prog.energy_terms(values, state.noise, state.clamped, natural_leaves=leaves)
                per_sample = torch.stack(list(terms.values())).sum(0)
                wrt = [leaves[n] if n in natural else values[n] for n in group]
                want_w = schedule.steps_weights
                grads = torch.autograd.grad(
                    per_sample.sum(), wrt + (params if want_w else []), allow_unused=True
                )
            if want_w:
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
                alphas[k] = guard_reference(prog, state, old, before, alphas.get(k, torch.ones_like(before)))
            if want_w:
                weight_step()

def total_energy(prog, state) -> torch.Tensor:
    terms, _ = prog.energy_terms(state, state.noise, state.clamped)
    return torch.stack(list(terms.values())).sum(0)

def guard_reference(prog, state: State, old: dict, before: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The guard, written plainly (see ``engine.guard_choice``)."""
    full = {n: state[n] - x for n, x in old.items()}

    def place(frac):
        for n, x in old.items():
            state[n].copy_(x + frac.view((-1,) + (1,) * (x.dim() - 1)) * full[n])

    place(alpha)
    e_long = total_energy(prog, state)
    place(alpha * GUARD_SHRINK)
    e_short = total_energy(prog, state)
    take, nxt = guard_choice(before, e_long, e_short, alpha)
    place(take)
    return nxt
