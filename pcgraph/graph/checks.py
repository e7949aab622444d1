"""The semantic checks of the graph stage, one function per concern. Each reports
through ``err(path, message, key=False)`` so that one pass finds every problem."""

from __future__ import annotations

import math

import networkx

from ..core.registry import suggest
from ..data import datasets
from ..data.dataset import option_problems
from ..data.stream import stream_problems
from ..families import families
from ..spec.models import Spec
from ..transforms import ShapeError, transforms
from .structure import EdgeInfo, NodeInfo


def check_node(name: str, n, kl: bool, err) -> None:
    """Role, bind, dtype, family and prior rules of one node spec."""
    p = ("nodes", name)
    fam = n.family
    fam_cls = families.get(fam.type) if fam is not None else None
    if n.role in ("input", "target") and not n.bind:
        err(p, f"{n.role} node '{name}' needs 'bind': the data field it is clamped to", True)
    if n.role == "latent" and n.bind:
        err(
            p + ("bind",),
            f"latent node '{name}' is free during inference and cannot bind data field '{n.bind}' (make it an input "
            f"or target)",
            True,
        )
    if n.role == "input":
        # family and prior of an input describe it only when a query leaves it unclamped
        if (fam is not None or n.prior is not None) and n.dtype == "long":
            key = "family" if fam is not None else "prior"
            err(
                p + (key,), f"input node '{name}' holds integer tokens, which cannot be inferred, so it takes no {key}",
                True
            )
        elif fam_cls is not None and fam_cls.node_param_shapes(fam, tuple(n.shape)):
            err(
                p + ("family",),
                f"input node '{name}' is never trained as a free node, so its family cannot learn parameters (use a "
                f"fixed variance)",
                True,
            )
    elif fam is None:
        err(p, f"{n.role} node '{name}' needs a 'family' (one of: {', '.join(families.names())})", True)
    if n.dtype == "long" and n.role != "input":
        err(p + ("dtype",), f"only input nodes may hold integer tokens (dtype long); '{name}' is a {n.role} node")
    if fam_cls is None:
        return
    for rel, msg in fam_cls.check_options(fam, tuple(n.shape)):
        err(p + ("family",) + tuple(rel), msg)
    if fam_cls.needs_kl and not kl:
        err(
            p + ("family",),
            f"family '{fam.type}' on node '{name}' has no standard-PC form: it needs train.energy kl, not gaussian "
            f"(--set train.energy=kl)",
        )
    if n.prior is not None and not fam_cls.supports_prior:
        err(
            p + ("prior",),
            f"family '{fam.type}' on node '{name}' takes no prior (priors are Gaussian: use gaussian or "
            f"gaussian_meanvar)",
            True,
        )


def unknown_node(name: str, nodes) -> str:
    hint = suggest(name, nodes)
    return f"unknown node '{name}'" + (hint or f" (nodes: {', '.join(nodes)})")


def check_edge_names(spec: Spec, err) -> None:
    names_seen: dict[str, int] = {}
    for i, e in enumerate(spec.edges):
        if e.name:
            if e.name in names_seen:
                err(("edges", i, "name"), f"edge name '{e.name}' is already used by edges.{names_seen[e.name]}")
            names_seen.setdefault(e.name, i)


def check_endpoints(i: int, e, nodes: dict[str, NodeInfo], err) -> bool:
    """Sources and target exist, the target takes edges, the arity fits."""
    p, ok = ("edges", i), True
    for j, s in enumerate(e.from_):
        if s not in nodes:
            err(p + ("from",) + ((j,) if len(e.from_) > 1 else ()), unknown_node(s, nodes))
            ok = False
    if e.to not in nodes:
        err(p + ("to",), unknown_node(e.to, nodes))
        ok = False
    elif nodes[e.to].role == "input":
        err(p + ("to",), f"node '{e.to}' is an input: it is clamped to data and takes no incoming edges")
        ok = False
    tcls = transforms.get(e.transform.type)
    if tcls.arity is not None and len(e.from_) != tcls.arity:
        err(
            p + ("from",),
            f"transform '{tcls.name}' takes {tcls.arity} source node(s), got {len(e.from_)}: {list(e.from_)}",
        )
        ok = False
    return ok


def check_input_dtypes(i: int, e, nodes: dict[str, NodeInfo], err) -> bool:
    """Token ids reach only transforms that read them, and only they."""
    tcls, ok = transforms.get(e.transform.type), True
    for s in e.from_:
        want = tcls.input_dtype
        have = nodes[s].dtype if nodes[s].role == "input" else "float"  # long elsewhere is reported on the node
        if (want == "long") != (have == "long"):
            if want == "long":
                err(
                    ("edges", i, "from"),
                    f"transform '{tcls.name}' reads integer token ids, but node '{s}' holds dtype {have}",
                )
            else:
                err(
                    ("edges", i, "from"),
                    f"node '{s}' holds integer tokens (dtype long); transform '{tcls.name}' needs float input (use an "
                    f"embedding edge)",
                )
            ok = False
    return ok


def edge_param_shapes(i: int, e, in_shapes, out_shape, err) -> dict | None:
    """The edge's parameter shapes by the transform's shape rule, or None."""
    try:
        return transforms.get(e.transform.type).param_shapes(e.transform, in_shapes, out_shape)
    except ShapeError as ex:
        err(("edges", i, "transform") + tuple(getattr(ex, "path", ())), f"edge {'+'.join(e.from_)} -> {e.to}: {ex}")
        return None


def share_root(e: EdgeInfo, by_name: dict[str, EdgeInfo], err) -> EdgeInfo | None:
    """The edge whose parameters ``e`` ends up sharing, or None after reporting why not."""
    p = ("edges", e.index, "share")
    if e.share not in by_name:
        err(
            p,
            f"unknown edge '{e.share}'{suggest(e.share, [x for x in by_name if x != e.name])} (share names another "
            f"edge's 'name')",
        )
        return None
    root, seen = by_name[e.share], {e.name}
    while root.share is not None and root.share in by_name and root.name not in seen:
        seen.add(root.name)
        root = by_name[root.share]
    if root.name == e.name or root.share is not None and root.name in seen:
        err(p, f"edge '{e.name}' shares parameters in a loop")
        return None
    return root


def tie_shared(edges: list[EdgeInfo], bad_edges: set[int], err) -> None:
    """Resolve ``share`` to the root edge and tie the parameters of equal name and shape."""
    by_name = {e.name: e for e in edges}
    for e in edges:
        if e.share is None:
            continue
        root = share_root(e, by_name, err)
        if root is None or e.index in bad_edges or root.index in bad_edges:
            continue
        tied = tuple(k for k, s in e.param_shapes.items() if root.param_shapes.get(k) == s)
        if not tied:
            mine = {k: list(v) for k, v in e.param_shapes.items()}
            theirs = {k: list(v) for k, v in root.param_shapes.items()}
            err(
                ("edges", e.index, "share"),
                f"edge '{e.name}' cannot share with '{root.name}': no parameter has the same name and shape ({mine} "
                f"vs {theirs})",
            )
            continue
        e.share, e.shared_names = root.name, tied
        e.params -= sum(math.prod(e.param_shapes[k]) for k in tied)


def check_orphans(spec: Spec, nodes: dict[str, NodeInfo], err) -> None:
    has_in = {e.to for e in spec.edges}  # an edge that failed its own checks still counts
    for name, n in nodes.items():
        if n.role == "latent" and name not in has_in and n.prior is None:
            err(
                ("nodes", name), key=True,
                msg=f"latent node '{name}' is an orphan: it has no incoming edge and no prior, so nothing predicts it"
            )
        if n.role == "target" and name not in has_in:
            err(("nodes", name), f"target node '{name}' has no incoming edge: nothing predicts it", True)


def topology(spec: Spec, g, err):
    """(order, generations) of a DAG, or (None, None) for a cyclic graph or a cycle
    reported as an error; ``g`` is the graph's networkx DiGraph, whose algorithms find
    the cycle (depth first from each node in spec order) and the generations."""
    train = spec.train
    if train.topology != "dag":
        if train.inference.init == "forward":
            err(
                ("train", "inference", "init"),
                "a cyclic graph has no forward pass: use init zeros or normal (--set train.inference.init=zeros)",
            )
        if train.method == "bp":
            err(
                ("train", "method"),
                "backprop needs a forward pass, which a cyclic graph has not: use method pc (--set train.method=pc) "
                "or topology dag",
            )
        return None, None
    if not networkx.is_directed_acyclic_graph(g):
        cycle = [(u, v) for u, v, *_ in networkx.find_cycle(g, source=list(g.nodes))]
        loop = [u for u, _ in cycle] + [cycle[0][0]]
        err(
            ("edges", g.edges[cycle[-1]]["index"]),
            f"cycle {' -> '.join(loop)}; the graph must be a DAG unless train.topology: cyclic",
        )
        return None, None
    generations = [sorted(level) for level in networkx.topological_generations(g)]
    return [n for level in generations for n in level], generations


def check_data(spec: Spec, nodes: dict[str, NodeInfo], err) -> None:
    """The dataset exists, its options are valid and every bind names one of its fields."""
    d = spec.data
    if d.dataset not in datasets:
        err(("data", "dataset"), datasets.unknown(d.dataset))
        return
    ds = datasets.get(d.dataset)
    for path, msg, key in option_problems(ds, d.options):
        err(path, msg, key)
    renames = d.fields
    if d.stream is not None:
        field = ds.label_field()
        label = [
            n.bind
            for n in nodes.values()
            if field is not None and n.bind is not None and renames.get(n.bind, n.bind) == field
        ]
        for path, msg, key in stream_problems(d.stream, ds.name, ds.classes, label[0] if label else None):
            err(path, msg, key)
    if ds.fields is None:
        return
    for spec_field, ds_field in renames.items():
        if ds_field not in ds.fields:
            err(
                ("data", "fields", spec_field),
                f"dataset '{ds.name}' has no field '{ds_field}'{suggest(ds_field, ds.fields)}; it gives "
                f"{', '.join(ds.fields)}",
            )
    for name, n in nodes.items():
        if n.bind is None:
            continue
        actual = renames.get(n.bind, n.bind)
        if actual not in ds.fields and n.bind not in renames:
            err(
                ("nodes", name, "bind"),
                f"dataset '{ds.name}' has no field '{n.bind}'{suggest(n.bind, ds.fields)}; it gives "
                f"{', '.join(ds.fields)}",
            )
