"""Spec -> PCGraph: the node and edge records, their networkx DiGraph, and every
semantic problem reported in one pass (the checks live in ``checks``)."""

from __future__ import annotations

import math

from ..core.errors import GraphError, Issue
from ..families import families
from ..spec.models import Spec
from ..spec.source import SourceMap
from ..transforms import transforms
from . import checks
from .structure import EdgeInfo, NodeInfo, PCGraph, digraph


def _node_info(name: str, n, smap: SourceMap) -> NodeInfo:
    fam = n.family
    fam_cls = families.get(fam.type) if fam is not None else None
    shape = tuple(n.shape)
    if n.role == "input":  # the compiled program clamps inputs: no family, no prior
        fam = fam_cls = None
    return NodeInfo(
        name=name,
        role=n.role,
        shape=shape,
        dtype=n.dtype,
        bind=n.bind,
        family=None if fam is None else fam.type,
        family_cls=fam_cls,
        options=fam,
        param_shape=fam_cls.param_shape_for(shape) if fam_cls else shape,
        prior=None if n.role == "input" else n.prior,
        node_params=fam_cls.node_param_shapes(fam, shape) if fam_cls else {},
        location=smap.locate(("nodes", name), key=True),
    )


def _edge_info(i: int, e, nodes: dict[str, NodeInfo], smap: SourceMap, err) -> tuple[EdgeInfo, bool]:
    """The record of a spec edge whose endpoints exist, and whether it passed its checks."""
    tcls = transforms.get(e.transform.type)
    ok = checks.check_input_dtypes(i, e, nodes, err)
    in_shapes = [nodes[s].shape for s in e.from_]  # children see a value of the node's shape
    out_shape = nodes[e.to].param_shape
    pshapes = checks.edge_param_shapes(i, e, in_shapes, out_shape, err) if ok else None
    info = EdgeInfo(
        index=i,
        name=e.name or f"e{i}",
        sources=tuple(e.from_),
        target=e.to,
        transform=tcls.name,
        transform_cls=tcls,
        options=e.transform,
        activation=e.activation,
        in_shapes=in_shapes,
        out_shape=out_shape,
        param_shapes=pshapes or {},
        share=e.share,
        params=sum(math.prod(s) for s in (pshapes or {}).values()),
        location=smap.locate(("edges", i)),
    )
    return info, ok and pshapes is not None


def _edges(spec: Spec, nodes: dict[str, NodeInfo], smap: SourceMap, err):
    checks.check_edge_names(spec, err)
    edges: list[EdgeInfo] = []
    bad: set[int] = set()
    for i, e in enumerate(spec.edges):
        if not checks.check_endpoints(i, e, nodes, err):
            bad.add(i)
            continue
        info, ok = _edge_info(i, e, nodes, smap, err)
        if not ok:
            bad.add(i)
        edges.append(info)
    return edges, bad


def build_graph(spec: Spec) -> PCGraph:
    """Check the spec's semantics and build the graph; GraphError lists every problem."""
    smap = spec.source or SourceMap("<spec>")
    issues: list[Issue] = []

    def err(path, msg, key=False):
        issues.append(smap.issue(tuple(path), msg, key))

    kl = spec.train.energy == "kl"
    for name, n in spec.nodes.items():
        checks.check_node(name, n, kl, err)
    nodes = {name: _node_info(name, n, smap) for name, n in spec.nodes.items()}
    edges, bad = _edges(spec, nodes, smap, err)
    checks.tie_shared(edges, bad, err)
    checks.check_orphans(spec, nodes, err)
    g = digraph(spec.name, nodes, edges)
    order, generations = checks.topology(spec, g, err)
    if spec.data is not None:
        checks.check_data(spec, nodes, err)
    if issues:
        issues.sort(key=lambda i: (i.location.file, i.location.line or 0, i.location.col or 0))
        raise GraphError(issues)
    return PCGraph(spec.name, spec, nodes, edges, order, generations, smap, g)


__all__ = ["build_graph"]
