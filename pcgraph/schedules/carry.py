"""carry: a sweep from the targets back to the inputs in which every node, after its
step, holds its error while the nodes above it step, and the nodes then follow their
predictions down the graph, so that a parent's step does not take away the error its
children hold.

A plain sweep lets each generation's step absorb the error of the generation below,
so on a deep graph the error spreads back like heat: reaching the energy's minimum
takes a number of steps that grows with the square of the depth. Held errors make one
step a block coordinate descent in the nodes' errors (each node's state is its
prediction plus its error), which reaches the minimum of a nudged energy in about one
step on any DAG; later steps correct for the graph's curvature. Every quantity a node
uses is local: its children's errors and its parents' states.
"""

from __future__ import annotations

from . import get, register
from .sweep import Sweep


@register("carry")
class Carry(Sweep):
    description = "sweep from the targets back with held errors; the nodes below then follow their predictions (DAGs)"
    follows = True

    def at_fixed_weights(self):
        return get("sweep")
