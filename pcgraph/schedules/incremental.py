"""incremental (iPC, Salvatori et al.): every free node at once, and a weight step
after every inference step."""

from __future__ import annotations

from . import get, register
from .base import Schedule


@register("incremental")
class Incremental(Schedule):
    description = "incremental (iPC): a weight step after every inference step"
    steps_weights = True

    def groups(self, free, generations):
        return [list(free)]

    def at_fixed_weights(self):
        return get("sync")
