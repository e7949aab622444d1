"""What loading needs to know of a graph, as plain values, and the checks that the
loaded fields fit the bound nodes.

The data stage never sees the graph stage's types: the graph hands it a
``GraphFacts`` (its bound nodes, the spec's ``data`` section, a function that
locates a spec path in the source file) through its ``data_facts()`` method.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Optional, Tuple


from ..core.lazy import torch
from ..core.errors import DataError, Issue, Location
from ..core.registry import suggest
from ..families import families

#: (spec path, key) -> the position in the spec file, or None
Locate = Callable[[tuple, bool], Optional[Location]]
#: inputs {bind: tensor[N, ...]} -> {node: predictions [N, ...]}; it may draw its
#: weights from torch's global random stream, which the caller seeds
Teacher = Callable[[Dict[str, "torch.Tensor"]], Dict[str, "torch.Tensor"]]


@dataclass(frozen=True)
class BoundNode:
    """One node of the graph as the data stage sees it."""

    name: str
    role: str
    shape: Tuple[int, ...]
    dtype: str = "float"
    bind: Optional[str] = None
    family: Optional[str] = None
    #: for a token input: the vocabulary of the embedding edge that reads it
    vocab: Optional[int] = None


@dataclass(frozen=True)
class GraphFacts:
    """The plain values loading needs of a graph."""

    nodes: Tuple[BoundNode, ...]
    #: the spec's ``data`` section (a DataSpec), or None
    data: Any = None
    locate: Optional[Locate] = None
    #: the fixed random network that gives ``synthetic`` its targets
    teacher: Optional[Teacher] = None


def graph_facts(graph: Any, teacher: Teacher | None = None) -> GraphFacts | None:
    """``graph`` itself when it is a GraphFacts, else what its ``data_facts()`` gives;
    ``teacher``, when given, replaces the facts' own (the caller that can build the
    graph's network passes it: ``pcgraph.load_data`` does)."""
    facts = graph if graph is None or isinstance(graph, GraphFacts) else graph.data_facts()
    if teacher is not None and facts is not None:
        facts = replace(facts, teacher=teacher)
    return facts


def _range_issue(n: BoundNode, t: torch.Tensor, split: str, path: tuple) -> Issue | None:
    """The problem with integer field ``t`` bound to ``n``, if its values are out of range."""
    lo, hi = int(t.min()), int(t.max())
    if n.role == "input" and n.dtype == "long":
        if n.vocab is not None and (hi >= n.vocab or lo < 0):
            return Issue(
                path,
                f"field '{n.bind}' holds token ids {lo}..{hi} ({split} split), but the embedding reading node "
                f"'{n.name}' has vocab {n.vocab}",
            )
    elif n.family is not None and families.get(n.family).classes and tuple(t.shape[1:]) == tuple(n.shape[:-1]):
        k = n.shape[-1]
        if hi >= k or lo < 0:
            return Issue(
                path,
                f"field '{n.bind}' holds class indices {lo}..{hi} ({split} split), but node '{n.name}' has {k} classes",
            )
    return None


def check_fits(splits: dict, facts: GraphFacts) -> None:
    """Every bound node finds its field; token ids and class indices are in range."""
    issues = []
    for n in facts.nodes:
        if n.bind is None:
            continue
        p = ("nodes", n.name, "bind")
        for split, fields in splits.items():
            if n.bind not in fields:
                issues.append(
                    Issue(
                        p,
                        f"the {split} split has no field '{n.bind}' for node '{n.name}'{suggest(n.bind, fields)} "
                        f"(fields: {', '.join(fields)})",
                    )
                )
                break
            t = fields[n.bind]
            if t.numel() == 0 or t.is_floating_point():
                continue
            issue = _range_issue(n, t, split, p)
            if issue is not None:
                issues.append(issue)
                break
    if issues:
        loc = facts.locate
        raise DataError([Issue(i.path, i.message, loc(i.path, True) if loc is not None else None) for i in issues])


def located(exc: DataError, facts: GraphFacts | None) -> DataError:
    """Attach the spec position to problems that have none."""
    loc = facts.locate if facts is not None else None
    if loc is None or all(getattr(i, "location", None) is not None for i in exc.issues):
        return exc
    issues = []
    for i in exc.issues:
        if isinstance(i, Issue) and i.location is None:
            i = Issue(i.path, i.message, loc(i.path, False))
        issues.append(i)
    return type(exc)(issues)
