"""sweep: one topological generation after another, from the targets back to the
inputs, each generation updating from the states the later ones just left."""

from __future__ import annotations

from . import register
from .base import Schedule


@register("sweep")
class Sweep(Schedule):
    description = "by topological generation, from the targets back"

    def groups(self, free, generations):
        free = set(free)
        return [[n for n in g if n in free] for g in reversed(generations) if any(n in free for n in g)]
