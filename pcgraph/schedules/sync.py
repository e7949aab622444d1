"""sync: every free node updates at once, from the same states."""

from __future__ import annotations

from . import register
from .base import Schedule


@register("sync")
class Sync(Schedule):
    description = "all free nodes at once"

    def groups(self, free, generations):
        return [list(free)]
