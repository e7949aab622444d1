"""The guard (``guard: true``): an inference step that never raises a sample's energy.

After a group of nodes takes its step, each sample keeps the first of the long step
alpha * full and the short one alpha * GUARD_SHRINK * full that does not raise its
total energy, else no step; alpha, per group and sample, doubles after a kept long
step (up to 1) and otherwise becomes the fraction tried last. The decision is made
on the device, without a host synchronisation."""

from __future__ import annotations

import torch

#: the guard's second, shorter step, as a fraction of the first
GUARD_SHRINK = 0.25


def guard_tolerance(before: torch.Tensor) -> torch.Tensor:
    """How much a step may raise a sample's energy before the guard calls it a rise:
    rounding, a few ulps of the energy's size."""
    return (before.abs() + 1.0) * (16 * torch.finfo(before.dtype).eps)


def guard_choice(before, e_long, e_short, alpha):
    """The guard's decision per sample: (the step fraction to keep, the fraction to
    try next step). The long step alpha is kept if it does not raise the energy (and
    alpha doubles, up to 1), else the short one alpha * GUARD_SHRINK (which becomes the
    next alpha), else none (alpha shrinks twice)."""
    limit = before + guard_tolerance(before)
    long_ok = e_long <= limit
    short_ok = e_short <= limit
    short = alpha * GUARD_SHRINK
    take = torch.where(long_ok, alpha, torch.where(short_ok, short, torch.zeros_like(alpha)))
    nxt = torch.where(long_ok, (2 * alpha).clamp_(max=1.0), torch.where(short_ok, short, short * GUARD_SHRINK))
    return take, nxt


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector [B] shaped to broadcast against ``like`` [B, ...]."""
    return v.view((-1,) + (1,) * (like.dim() - 1))


def guarded(state, old: dict, before: torch.Tensor, alpha: torch.Tensor, total, moved) -> torch.Tensor:
    """Apply the guard to the step just taken from the states ``old`` {node: state}
    (``before``: the total energy per sample there): try the long and the short step,
    keep each sample's choice, and return the next step fractions. ``total()`` gives
    the total energy per sample at the current state; ``moved(n)`` is told of each
    state changed in place."""
    full = {n: state[n] - x for n, x in old.items()}

    def place(frac):
        for n, x in old.items():
            state[n].copy_(x + per_sample(frac, x) * full[n])
            moved(n)

    energy = []
    for frac in (alpha, alpha * GUARD_SHRINK):
        place(frac)
        energy.append(total())
    take, nxt = guard_choice(before, energy[0], energy[1], alpha)
    place(take)
    return nxt
