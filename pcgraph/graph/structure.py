"""What the graph stage produces: the node and edge records and the networkx
DiGraph the checks run their graph algorithms on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import functools

import networkx

from ..core.errors import Location
from ..core.registry import suggest
from ..families import Family
from ..spec.models import Spec
from ..spec.source import SourceMap
from ..transforms import Transform
from .datafacts import data_facts


@dataclass
class NodeInfo:
    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    bind: str | None
    family: str | None
    family_cls: type[Family] | None
    options: Any
    param_shape: tuple[int, ...]
    prior: Any
    node_params: dict[str, tuple[int, ...]]
    location: Location

    @property
    def clamped(self) -> bool:
        return self.role in ("input", "target")

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in self.node_params.values())


@dataclass
class EdgeInfo:
    index: int
    name: str
    sources: tuple[str, ...]
    target: str
    transform: str
    transform_cls: type[Transform]
    options: Any
    activation: str
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    param_shapes: dict[str, tuple[int, ...]]
    share: str | None
    #: parameters this edge owns (tied ones are counted on the edge they come from)
    params: int
    location: Location
    shared_names: tuple[str, ...] = ()


def digraph(name: str, nodes: dict[str, NodeInfo], edges: list[EdgeInfo]):
    """The networkx DiGraph of the nodes and edges: node attributes (role, family,
    shapes, dtype, bind) and per (source, target) pair the spec edges on it (the
    first one's attributes on the pair itself)."""
    g = networkx.DiGraph(name=name)
    for n in nodes.values():
        g.add_node(
            n.name, role=n.role, family=n.family, shape=n.shape, param_shape=n.param_shape, dtype=n.dtype, bind=n.bind
        )
    for e in edges:
        for arg, s in enumerate(e.sources):
            rec = {
                "edge": e.name, "index": e.index, "transform": e.transform, "activation": e.activation, "arg": arg,
                "params": e.params
            }
            if g.has_edge(s, e.target):
                g.edges[s, e.target]["spec_edges"].append(rec)
            else:
                g.add_edge(s, e.target, **rec, spec_edges=[rec])
    return g


@dataclass
class PCGraph:
    """The validated graph. ``nx`` is its networkx DiGraph, one edge per (source,
    target) pair of each spec edge, on which the graph stage found the order and the
    generations (each node carries its ``generation``)."""

    name: str
    spec: Spec
    nodes: dict[str, NodeInfo]
    edges: list[EdgeInfo]
    order: list[str] | None
    generations: list[list[str]] | None
    source: SourceMap | None = field(default=None, repr=False)
    nx: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.nx is None:
            self.nx = digraph(self.name, self.nodes, self.edges)
        self.nx.graph["params_total"] = self.params_total
        for n, k in self.generation_of.items():
            self.nx.nodes[n]["generation"] = k

    @functools.cached_property
    def generation_of(self) -> dict[str, int]:
        """{node: its topological generation} (empty for a cyclic graph)."""
        return {n: k for k, group in enumerate(self.generations or []) for n in group}

    @property
    def params_on_edges(self) -> int:
        return sum(e.params for e in self.edges)

    @property
    def params_on_nodes(self) -> int:
        return sum(n.params for n in self.nodes.values())

    @property
    def params_total(self) -> int:
        return self.params_on_edges + self.params_on_nodes

    @property
    def is_dag(self) -> bool:
        return self.order is not None

    def in_edges(self, node: str) -> list[EdgeInfo]:
        return [e for e in self.edges if e.target == node]

    def out_edges(self, node: str) -> list[EdgeInfo]:
        return [e for e in self.edges if node in e.sources]

    def data_facts(self):
        """The plain values the data stage needs (bound nodes, data section, locator)."""
        return data_facts(self)

    def vocab_of(self, node: str) -> int | None:
        """The vocabulary of a token node: the ``vocab`` of an edge reading it."""
        for e in self.out_edges(node):
            vocab = getattr(e.options, "vocab", None)
            if vocab is not None:
                return int(vocab)
        return None

    def edge(self, name: str) -> EdgeInfo:
        for e in self.edges:
            if e.name == name:
                return e
        raise KeyError(f"no edge named '{name}'{suggest(name, [e.name for e in self.edges])}")

    def where(self, what: str) -> str:
        """'FILE:LINE:COL' of a node or edge (by name)."""
        if what in self.nodes:
            return str(self.nodes[what].location)
        return str(self.edge(what).location)

    def summary(self) -> dict:
        """JSON-ready description (the ``inspect --format json`` output)."""
        return {
            "name": self.name,
            "nodes": [
                {
                    "name": n.name,
                    "role": n.role,
                    "family": n.family,
                    "shape": list(n.shape),
                    "param_shape": list(n.param_shape),
                    "dtype": n.dtype,
                    "bind": n.bind,
                    "prior": n.prior.type if n.prior is not None else None,
                    "params": n.params,
                    "generation": self.generation_of.get(n.name),
                }
                for n in self.nodes.values()
            ],
            "edges": [
                {
                    "name": e.name,
                    "from": list(e.sources),
                    "to": e.target,
                    "transform": e.transform,
                    "activation": e.activation,
                    "param_shapes": {k: list(v) for k, v in e.param_shapes.items()},
                    "params": e.params,
                    "share": e.share,
                }
                for e in self.edges
            ],
            "params_total": self.params_total,
            "order": self.order,
            "generations": self.generations,
        }


__all__ = ["PCGraph", "NodeInfo", "EdgeInfo"]
