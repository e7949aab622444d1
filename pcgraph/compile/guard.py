"""The guard (``guard: true``): an inference step that never raises a sample's energy.

Each sample has a step fraction alpha (1 to start with): every group's step is taken
as alpha times the optimiser's step. When a whole inference step has raised a
sample's total energy (or made it non-finite), the sample goes back to where the step
started and its alpha halves (Song et al. 2024's rule for the value step); otherwise
the step is kept. The energy after the step is the next step's starting energy, so
the guard evaluates the energy once per step, on predictions the next step reuses.
"""

from __future__ import annotations

import torch


def guard_tolerance(before: torch.Tensor) -> torch.Tensor:
    """How much a step may raise a sample's energy before the guard calls it a rise:
    rounding, a few ulps of the energy's size."""
    return before.abs().add_(1.0).mul_(16 * torch.finfo(before.dtype).eps)


def guard_limit(before: torch.Tensor) -> torch.Tensor:
    """The largest energy a sample may have after a step that started at ``before``:
    ``before`` plus its tolerance (in the tolerance's buffer)."""
    return guard_tolerance(before).add_(before)


def may_sync(t: torch.Tensor) -> bool:
    """Whether the guard may ask the host if any sample's energy rose (one sync per
    step): on the CPU it costs nothing and spares recomputing every prediction after a
    step no sample undid; on an accelerator, or inside compiled code, it never asks."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector [B] shaped to broadcast against ``like`` [B, ...]."""
    return v.view((-1,) + (1,) * (like.dim() - 1))


def shrink(state, old: dict, alpha: torch.Tensor, nodes, moved) -> None:
    """Take only the fraction ``alpha`` (per sample) of the step the ``nodes`` just took
    from ``old`` {node: state}."""
    for n in nodes:
        x = old[n]
        state[n].copy_(torch.lerp(x, state[n], per_sample(alpha, x)))
        moved(n)


class Guard:
    """The guard's memory over one ``infer`` call: each sample's alpha, whether any is
    below 1, the energy the current step started from and the states it started at."""

    def __init__(self):
        self.alpha = None
        self.scaled = False  # some sample takes less than the full step
        self.before = None
        self.old: dict = {}

    def start(self, state, nodes, total) -> None:
        """Before a step: remember the free states and (first step) the energy."""
        if self.before is None:
            self.before = total()
            self.alpha = torch.ones_like(self.before)
        old = self.old  # the buffers of the last step, refilled
        for n in nodes:
            x = state[n]
            b = old.get(n)
            if b is None or b.shape != x.shape or b.dtype != x.dtype or b.device != x.device:
                old[n] = x.clone()
            else:
                b.copy_(x)

    def scale(self, state, nodes, moved) -> None:
        """After a group's step: shrink it to each sample's alpha (nothing to do while
        every alpha is 1)."""
        if self.scaled:
            shrink(state, self.old, self.alpha, nodes, moved)

    def judge(self, state, total, moved) -> None:
        """After a whole step: a sample whose energy rose goes back and halves its alpha."""
        after = total()
        sync = may_sync(after)
        # where no sample's energy rose at all the tolerance cannot matter: ask that first
        if sync and bool((after <= self.before).all()):
            self.before = after
            return
        kept = after <= guard_limit(self.before)  # a non-finite energy rose
        if sync and bool(kept.all()):
            self.before = after
            return
        rose = ~kept
        for n, x in self.old.items():
            state[n].copy_(torch.where(per_sample(rose, x), x, state[n]))
            moved(n)
        self.alpha = torch.where(rose, 0.5 * self.alpha, self.alpha)
        self.before = torch.where(rose, self.before, after)
        self.scaled = True
