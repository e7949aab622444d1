"""What the data stage needs of a PCGraph, as plain values (``PCGraph.data_facts``)."""

from __future__ import annotations

from ..data.check import BoundNode, GraphFacts


def data_facts(graph) -> GraphFacts:
    """The graph's nodes (with the vocabulary of token inputs), its spec's ``data``
    section and the locator of spec paths."""
    nodes = tuple(
        BoundNode(
            name=n.name,
            role=n.role,
            shape=tuple(n.shape),
            dtype=n.dtype,
            bind=n.bind,
            family=n.family,
            vocab=graph.vocab_of(name) if n.role == "input" and n.dtype == "long" else None,
        )
        for name, n in graph.nodes.items()
    )
    src = graph.source
    return GraphFacts(nodes=nodes, data=graph.spec.data, locate=src.locate if src is not None else None)
