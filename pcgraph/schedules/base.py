"""The schedule interface: which free nodes an inference step updates together."""

from __future__ import annotations

from typing import ClassVar, Sequence


class Schedule:
    name: ClassVar[str]
    #: one line for the spec's documentation (``pcgraph schema``)
    description: ClassVar[str] = ""
    #: whether the weights take a step after every inference step (they change during
    #: inference, so the gradient at the state inference ends in is not the one to use)
    steps_weights: ClassVar[bool] = False
    #: whether the nodes follow their predictions: once a step has moved a node, each
    #: node below it moves by the change of its prediction, so its error stays the one
    #: its own step left (the step's errors are held while the sweep goes on)
    follows: ClassVar[bool] = False

    def groups(self, free: Sequence[str], generations: Sequence[Sequence[str]]) -> list[list[str]]:
        """The groups of free nodes one inference step updates, in order: each group's
        update sees the states the groups before it left. ``free``: the free nodes in
        topological order (or the spec's, for a cyclic graph); ``generations``: the
        graph's topological generations, from the roots."""
        raise NotImplementedError

    def at_fixed_weights(self) -> "Schedule":
        """The schedule to run where the weights must not change (a query)."""
        return self

    def __repr__(self) -> str:
        return f"<schedule {self.name}>"
