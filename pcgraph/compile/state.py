"""The state of a program on one batch: node name -> tensor."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Iterator

import torch


class State(MutableMapping):
    """Node states for one batch (mapping node name -> tensor, assignable).

    ``noise`` holds the per-sample noise of sampling nodes (drawn when the state was
    initialised); ``clamped`` names the nodes held fixed to data. Free states are
    updated in place by ``Program.infer``; assigning a new tensor to a node is seen
    by the next ``infer`` call (so are in-place edits, via tensor version counters).

    ``loss_weight`` (beta) weights the loss terms -- the clamped nodes' energies and the
    prior terms -- in the energy the state relaxes on: 1 is the energy as written; a
    training step's E-step uses ``train.weights.nudge``.
    """

    def __init__(
        self,
        values: dict[str, torch.Tensor],
        noise: dict[str, torch.Tensor],
        clamped: frozenset[str],
        loss_weight: float = 1.0,
    ):
        self._values = dict(values)
        self.loss_weight = float(loss_weight)
        self.noise = dict(noise)
        self.clamped = frozenset(clamped)
        self.engine = None  # fast-path caches, built by Program

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._values[key]

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        if key not in self._values:
            raise KeyError(f"no node '{key}' in this state")
        self._values[key] = value
        if self.engine is not None:
            self.engine.assigned(key)

    def __delitem__(self, key: str) -> None:
        raise TypeError("nodes cannot be removed from a state")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def free(self) -> list[str]:
        return [k for k in self._values if k not in self.clamped]

    @property
    def batch_size(self) -> int:
        return next(iter(self._values.values())).shape[0]

    def clone(self) -> "State":
        """A detached copy (no caches)."""
        return State(
            {k: v.clone() for k, v in self._values.items()}, {k: v.clone() for k, v in self.noise.items()},
            self.clamped,
            self.loss_weight,
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}{'*' if k in self.clamped else ''}: {list(v.shape)}" for k, v in self._values.items())
        return f"State({inner})"
