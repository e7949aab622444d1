"""The parts of a compiled program, built from a PCGraph: each node's family, each
edge's transform and activation, the nodes' own parameters, and the support a
masked categorical node keeps its states on."""

from __future__ import annotations

from torch import nn

import torch

from ..core import activations
from ..core.constants import ENERGIES
from ..core.errors import CompileError, Issue
from ..graph import EdgeInfo, PCGraph


def check_energy(graph: PCGraph, energy: str) -> None:
    """CompileError unless ``energy`` is one of ENERGIES that every family has."""
    if energy not in ENERGIES:
        raise CompileError(Issue(("train", "energy"), f"energy must be {' or '.join(ENERGIES)}, not {energy}"))
    issues = [
        Issue(
            ("nodes", n.name, "family"),
            f"family '{n.family}' on node '{n.name}' has no standard-PC form: it needs the KL energy (energy kl)",
            n.location,
        )
        for n in graph.nodes.values()
        if n.family_cls is not None and n.family_cls.needs_kl and energy != "kl"
    ]
    if issues:
        raise CompileError(issues)


def build_families(graph: PCGraph, kl: bool, dtype: torch.dtype) -> dict:
    """{node: its Family} for every node that has one (inputs have none). A node's
    ``update`` option, else ``train.inference.update``, chooses the natural update."""
    default = graph.spec.train.inference.update
    out = {}
    for n in graph.nodes.values():
        if n.family_cls is not None:
            choice = getattr(n.options, "update", None) or default
            out[n.name] = n.family_cls(n.options, n.shape, kl=kl, natural=choice == "natural", dtype=dtype)
    return out


def init_activation(graph: PCGraph, e: EdgeInfo, act: activations.Activation) -> activations.Activation:
    """The nonlinearity that follows an edge, which its initialisation suits: the
    edge's activation, or else the target node's ``output`` (mu = W.f(x) and
    mu = f(W.x) then start from the same weights)."""
    if act.name != "identity":
        return act
    out = getattr(graph.nodes[e.target].options, "output", None)
    return activations.get(out) if out else act


def build_transforms(graph: PCGraph) -> tuple[dict, dict, nn.ModuleDict]:
    """({edge: Transform}, {edge: Activation}, the edges' parameters as a ModuleDict);
    an edge that ``share``s takes its root's tensors of the tied names."""
    transforms, acts, modules = {}, {}, nn.ModuleDict()
    for e in graph.edges:
        act = acts[e.name] = activations.get(e.activation)
        t = transforms[e.name] = e.transform_cls(e.options, e.in_shapes, e.out_shape, init_activation(graph, e, act))
        modules[e.name] = t.module
    for e in graph.edges:
        if e.share:
            root = modules[e.share]
            for pname in e.shared_names:
                setattr(modules[e.name], pname, getattr(root, pname))
    return transforms, acts, modules


def build_node_params(graph: PCGraph, families: dict) -> nn.ModuleDict:
    """The parameters nodes own (a learned variance), initialised by their family."""
    out = nn.ModuleDict()
    for n in graph.nodes.values():
        if n.node_params:
            pd = nn.ParameterDict({k: nn.Parameter(torch.empty(s)) for k, s in n.node_params.items()})
            families[n.name].init_params(dict(pd.items()))
            out[n.name] = pd
    return out


def set_supports(families: dict, transforms: dict, in_edges: dict, device: torch.device) -> None:
    """A categorical node fed only by masked edges keeps its states on their support."""
    for n, fam in families.items():
        masks = [transforms[e.name].support() for e in in_edges[n]]
        if masks and all(m is not None for m in masks):
            support = masks[0]
            for m in masks[1:]:
                support = support | m
            fam.support = support.to(device)
