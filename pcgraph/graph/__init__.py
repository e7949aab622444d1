"""Graph stage: a validated Spec -> PCGraph (a networkx DiGraph plus what the
compiler needs), with every semantic problem reported in one pass."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..data.registry import datasets, option_problems
from ..errors import GraphError, Issue, Location
from ..families import Family, families
from ..registry import suggest
from ..spec.models import Spec
from ..spec.source import SourceMap
from ..transforms import ShapeError, Transform, transforms
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


@dataclass
class PCGraph:
    """The validated graph. ``nx`` is a networkx DiGraph with one edge per
    (source, target) pair of each spec edge."""

    name: str
    spec: Spec
    nodes: dict[str, NodeInfo]
    edges: list[EdgeInfo]
    nx: nx.DiGraph
    order: list[str] | None
    generations: list[list[str]] | None
    source: SourceMap | None = field(default=None, repr=False)

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
                    "generation": self.nx.nodes[n.name].get("generation"),
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


def _family_name(fam) -> str | None:
    return None if fam is None else fam.type


def build_graph(spec: Spec) -> PCGraph:
    """Check the spec's semantics and build the graph; GraphError lists every problem."""
    smap = spec.source or SourceMap("<spec>")
    issues: list[Issue] = []

    def err(path, msg, key=False):
        issues.append(smap.issue(tuple(path), msg, key))

    train = spec.train
    kl = train.energy == "kl"

    # ---------------------------------------------------------------- nodes
    nodes: dict[str, NodeInfo] = {}
    for name, n in spec.nodes.items():
        p = ("nodes", name)
        fam = n.family
        fam_cls = families.get(fam.type) if fam is not None else None
        if n.role in ("input", "target") and not n.bind:
            err(p, f"{n.role} node '{name}' needs 'bind': the data field it is clamped to", True)
        if n.role == "latent" and n.bind:
            err(p + ("bind",), f"latent node '{name}' is free during inference and cannot bind data field '{n.bind}' (make it an input or target)", True)
        if n.role == "input":
            # family and prior of an input describe it only when a query leaves it unclamped
            if (fam is not None or n.prior is not None) and n.dtype == "long":
                key = "family" if fam is not None else "prior"
                err(p + (key,), f"input node '{name}' holds integer tokens, which cannot be inferred, so it takes no {key}", True)
            elif fam_cls is not None and fam_cls.node_param_shapes(fam, tuple(n.shape)):
                err(p + ("family",), f"input node '{name}' is never trained as a free node, so its family cannot learn parameters (use a fixed variance)", True)
        elif fam is None:
            err(p, f"{n.role} node '{name}' needs a 'family' (one of: {', '.join(families.names())})", True)
        if n.dtype == "long" and n.role != "input":
            err(p + ("dtype",), f"only input nodes may hold integer tokens (dtype long); '{name}' is a {n.role} node")
        if fam_cls is not None:
            for rel, msg in fam_cls.check_options(fam, tuple(n.shape)):
                err(p + ("family",) + tuple(rel), msg)
            if fam_cls.needs_kl and not kl:
                err(p + ("family",), f"family '{fam.type}' on node '{name}' has no standard-PC form: it needs train.energy kl, not gaussian (--set train.energy=kl)")
            if n.prior is not None and not fam_cls.supports_prior:
                err(p + ("prior",), f"family '{fam.type}' on node '{name}' takes no prior (priors are Gaussian: use gaussian or gaussian_meanvar)", True)
        shape = tuple(n.shape)
        if n.role == "input":  # the compiled program clamps inputs: no family, no prior
            fam = fam_cls = None
        nodes[name] = NodeInfo(
            name=name,
            role=n.role,
            shape=shape,
            dtype=n.dtype,
            bind=n.bind,
            family=_family_name(fam),
            family_cls=fam_cls,
            options=fam,
            param_shape=fam_cls.param_shape_for(shape) if fam_cls else shape,
            prior=None if n.role == "input" else n.prior,
            node_params=fam_cls.node_param_shapes(fam, shape) if fam_cls else {},
            location=smap.locate(p, key=True),
        )

    # ---------------------------------------------------------------- edges
    names_seen: dict[str, int] = {}
    for i, e in enumerate(spec.edges):
        if e.name:
            if e.name in names_seen:
                err(("edges", i, "name"), f"edge name '{e.name}' is already used by edges.{names_seen[e.name]}")
            names_seen.setdefault(e.name, i)
    edges: list[EdgeInfo] = []
    graph = nx.DiGraph()
    for name, info in nodes.items():
        graph.add_node(
            name, role=info.role, family=info.family, shape=info.shape, param_shape=info.param_shape, dtype=info.dtype, bind=info.bind
        )
    bad_edges: set[int] = set()
    for i, e in enumerate(spec.edges):
        p = ("edges", i)
        ok = True
        for j, s in enumerate(e.from_):
            if s not in nodes:
                err(p + ("from",) + ((j,) if len(e.from_) > 1 else ()), _unknown_node(s, nodes))
                ok = False
        if e.to not in nodes:
            err(p + ("to",), _unknown_node(e.to, nodes))
            ok = False
        elif nodes[e.to].role == "input":
            err(p + ("to",), f"node '{e.to}' is an input: it is clamped to data and takes no incoming edges")
            ok = False
        tcls = transforms.get(e.transform.type)
        if tcls.arity is not None and len(e.from_) != tcls.arity:
            err(p + ("from",), f"transform '{tcls.name}' takes {tcls.arity} source node(s), got {len(e.from_)}: {list(e.from_)}")
            ok = False
        if not ok:
            bad_edges.add(i)
            continue
        for j, s in enumerate(e.from_):
            want = tcls.input_dtype
            have = nodes[s].dtype if nodes[s].role == "input" else "float"  # long elsewhere is reported on the node
            if (want == "long") != (have == "long"):
                if want == "long":
                    err(p + ("from",), f"transform '{tcls.name}' reads integer token ids, but node '{s}' holds dtype {have}")
                else:
                    err(p + ("from",), f"node '{s}' holds integer tokens (dtype long); transform '{tcls.name}' needs float input (use an embedding edge)")
                ok = False
        in_shapes = [nodes[s].shape for s in e.from_]  # children see a value of the node's shape
        out_shape = nodes[e.to].param_shape
        pshapes: dict = {}
        if ok:
            try:
                pshapes = tcls.param_shapes(e.transform, in_shapes, out_shape)
            except ShapeError as ex:
                err(p + ("transform",) + tuple(getattr(ex, "path", ())), f"edge {'+'.join(e.from_)} -> {e.to}: {ex}")
                ok = False
        if not ok:
            bad_edges.add(i)
        name = e.name or f"e{i}"
        info = EdgeInfo(
            index=i,
            name=name,
            sources=tuple(e.from_),
            target=e.to,
            transform=tcls.name,
            transform_cls=tcls,
            options=e.transform,
            activation=e.activation,
            in_shapes=in_shapes,
            out_shape=out_shape,
            param_shapes=pshapes,
            share=e.share,
            params=sum(math.prod(s) for s in pshapes.values()),
            location=smap.locate(p),
        )
        edges.append(info)
        for arg, s in enumerate(e.from_):
            rec = {"edge": name, "index": i, "transform": tcls.name, "activation": e.activation, "arg": arg, "params": info.params}
            if graph.has_edge(s, e.to):
                graph.edges[s, e.to]["spec_edges"].append(rec)
            else:
                graph.add_edge(s, e.to, **rec, spec_edges=[rec])

    # ---------------------------------------------------------------- sharing
    by_name = {e.name: e for e in edges}
    for e in edges:
        if e.share is None:
            continue
        p = ("edges", e.index, "share")
        if e.share not in by_name:
            err(p, f"unknown edge '{e.share}'{suggest(e.share, [x for x in by_name if x != e.name])} (share names another edge's 'name')")
            continue
        root = by_name[e.share]
        seen = {e.name}
        while root.share is not None and root.share in by_name and root.name not in seen:
            seen.add(root.name)
            root = by_name[root.share]
        if root.name == e.name or root.share is not None and root.name in seen:
            err(p, f"edge '{e.name}' shares parameters in a loop")
            continue
        if e.index in bad_edges or root.index in bad_edges:
            continue
        tied = tuple(k for k, s in e.param_shapes.items() if root.param_shapes.get(k) == s)
        if not tied:
            mine = {k: list(v) for k, v in e.param_shapes.items()}
            theirs = {k: list(v) for k, v in root.param_shapes.items()}
            err(p, f"edge '{e.name}' cannot share with '{root.name}': no parameter has the same name and shape ({mine} vs {theirs})")
            continue
        e.share = root.name
        e.shared_names = tied
        e.params -= sum(math.prod(e.param_shapes[k]) for k in tied)
        for s in e.sources:
            for rec in graph.edges[s, e.target]["spec_edges"]:
                if rec["edge"] == e.name:
                    rec["params"] = e.params
            graph.edges[s, e.target]["params"] = graph.edges[s, e.target]["spec_edges"][0]["params"]

    # ---------------------------------------------------------------- orphans
    has_in = {e.to for e in spec.edges}  # an edge that failed its own checks still counts
    for name, n in nodes.items():
        if n.role == "latent" and name not in has_in and n.prior is None:
            err(("nodes", name), key=True, msg=f"latent node '{name}' is an orphan: it has no incoming edge and no prior, so nothing predicts it")
        if n.role == "target" and name not in has_in:
            err(("nodes", name), f"target node '{name}' has no incoming edge: nothing predicts it", True)

    # ---------------------------------------------------------------- cycles
    order = generations = None
    if train.topology == "dag":
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            loop = [u for u, _ in cycle] + [cycle[0][0]]
            closing = graph.edges[cycle[-1][0], cycle[-1][1]]["index"]
            err(("edges", closing), f"cycle {' -> '.join(loop)}; the graph must be a DAG unless train.topology: cyclic")
        else:
            generations = [sorted(g) for g in nx.topological_generations(graph)]
            order = [n for g in generations for n in g]
            for k, g in enumerate(generations):
                for n in g:
                    graph.nodes[n]["generation"] = k
    else:
        if train.inference.init == "forward":
            err(("train", "inference", "init"), "a cyclic graph has no forward pass: use init zeros or normal (--set train.inference.init=zeros)")
        if train.method == "bp":
            err(("train", "method"), "backprop needs a forward pass, which a cyclic graph has not: use method pc (--set train.method=pc) or topology dag")

    # ---------------------------------------------------------------- data
    if spec.data is not None:
        _check_data(spec, nodes, err)

    if issues:
        issues.sort(key=lambda i: (i.location.file, i.location.line or 0, i.location.col or 0))
        raise GraphError(issues)
    pg = PCGraph(spec.name, spec, nodes, edges, graph, order, generations, smap)
    graph.graph.update(name=spec.name, params_total=pg.params_total)
    return pg


def _unknown_node(name: str, nodes) -> str:
    hint = suggest(name, nodes)
    return f"unknown node '{name}'" + (hint or f" (nodes: {', '.join(nodes)})")


def _check_data(spec: Spec, nodes: dict[str, NodeInfo], err) -> None:
    d = spec.data
    if d.dataset not in datasets:
        err(("data", "dataset"), datasets.unknown(d.dataset))
        return
    ds = datasets.get(d.dataset)
    for path, msg, key in option_problems(ds, d.options):
        err(path, msg, key)
    if ds.fields is not None:
        renames = d.fields
        for spec_field, ds_field in renames.items():
            if ds_field not in ds.fields:
                err(("data", "fields", spec_field), f"dataset '{ds.name}' has no field '{ds_field}'{suggest(ds_field, ds.fields)}; it gives {', '.join(ds.fields)}")
        for name, n in nodes.items():
            if n.bind is None:
                continue
            actual = renames.get(n.bind, n.bind)
            if actual not in ds.fields and n.bind not in renames:
                err(("nodes", name, "bind"), f"dataset '{ds.name}' has no field '{n.bind}'{suggest(n.bind, ds.fields)}; it gives {', '.join(ds.fields)}")


__all__ = ["PCGraph", "NodeInfo", "EdgeInfo", "build_graph"]
