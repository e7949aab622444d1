"""Every problem of a spec file in one run (what ``pcgraph validate`` reports).

``load_spec`` stops at the first stage that fails: a misspelt transform is a schema
problem, so the graph checks (unknown nodes, shapes, cycles, orphans) never run. Here,
after the schema problems are collected, the items they sit in are set aside: a bad
key that has a default falls back to it, a node or edge that cannot be read at all is
left out. The graph checks then run on the rest, and only their problems with items
that validated are added (a node or edge with a schema problem is already reported,
and what follows from setting it aside is not the user's problem).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Iterable

from pydantic import ValidationError

from ..core.errors import GraphError, Issue, Location, PcgraphError, SpecError
from ..spec import load_spec, spec_from_data
from ..spec.models import Spec
from ..spec.limits import read_bounded
from ..spec.overrides import apply_overrides
from ..spec.source import SourceMap, load_yaml
from ..spec.validate import clean_path, translate
from .budget import memory_issue
from .build import build_graph

_ROUNDS = 8  # each repair round removes at least one problem; specs need one or two
#: stands in for a node that cannot be read (no usable shape); edges touching it are not checked
_PLACEHOLDER = {"shape": [1], "family": "gaussian", "prior": "standard_normal"}


def check_spec(path: str | os.PathLike, overrides: Iterable[str] = ()):
    """(graph or None, issues) for a spec file: every schema problem and every graph
    problem among the parts that validated, sorted by position; a graph that builds is
    checked against this machine's memory."""
    try:
        graph = build_graph(load_spec(path, overrides))
        too_big = memory_issue(graph)
        return graph, [] if too_big is None else [too_big]
    except GraphError as e:
        return None, list(e.issues)
    except SpecError as e:
        first = list(e.issues)
    # the schema failed: redo the stages to get at the data (YAML and --set problems end here)
    try:
        text = read_bounded(path)
        data, smap = load_yaml(text, str(path))
        overrides = list(overrides)
        if overrides:
            data = apply_overrides(data, smap, overrides, Spec)
        if not isinstance(data, dict):
            return None, first
        Spec.model_validate(data)
        return None, first  # not reached: the spec failed above
    except (PcgraphError, OSError, UnicodeDecodeError):
        return None, first
    except ValidationError as exc:
        issues = translate(exc, data, smap, Spec)
    repaired = _Repair(data)
    if not repaired.run():
        return None, issues
    spec_data, kept = repaired.result()
    try:
        spec = spec_from_data(spec_data, _renumbered(smap, kept))
        build_graph(spec)
        return None, issues
    except GraphError as e:
        more = [_renumber_issue(i, kept) for i in e.issues]
    except PcgraphError:
        return None, issues
    seen = {(i.path, i.message) for i in issues}
    for i in more:
        if (i.path, i.message) not in seen and not repaired.hides(i):
            issues.append(i)
            seen.add((i.path, i.message))
    issues.sort(key=_position)
    return None, issues


def _position(issue: Issue):
    loc = issue.location or Location("")
    return (loc.file, loc.line or 0, loc.col or 0)


class _Repair:
    """Sets aside what the schema rejected, round by round, until the spec validates."""

    def __init__(self, data: dict):
        self.data = copy.deepcopy(data)
        raw_edges = self.data.get("edges")
        self.edges: dict[int, Any] = dict(enumerate(raw_edges)) if isinstance(raw_edges, list) else {}
        self.bad_nodes: set[str] = set()
        self.bad_edges: set[int] = set()
        self.lost_targets: set[str] = set()  # nodes that a left-out edge pointed to
        self.bad_sections: set[tuple] = set()  # e.g. ("data",), ("train", "inference")
        self.gone_nodes: set[str] = set()
        self.lost_names: set[str] = set()  # names of left-out edges (another edge may share them)
        #: a node table or edge list of the wrong kind leaves nothing to check the graph on
        self.unusable = not isinstance(self.data.get("nodes"), dict) or not isinstance(self.data.get("edges", []), list)

    def result(self) -> tuple[dict, list[int]]:
        kept = [i for i, edge in self.edges.items() if edge is not None]
        edges = []
        for new, old in enumerate(kept):
            e = self.edges[old]  # not always a mapping: the schema reports what is not
            if isinstance(e, dict) and new != old and not e.get("name"):
                e = {**e, "name": f"e{old}"}  # keep the default name the user sees
            edges.append(e)
        data = dict(self.data)
        if "edges" in data or edges:
            data["edges"] = edges
        return data, kept

    def _touches_gone(self, edge) -> bool:
        if not isinstance(edge, dict):
            return False
        src = edge.get("from")
        names = [src] if isinstance(src, str) else list(src or [])
        return any(n in self.gone_nodes for n in names + [edge.get("to")] if isinstance(n, str))

    def _lose_target(self, edge) -> None:
        if isinstance(edge, dict) and isinstance(edge.get("to"), str):
            self.lost_targets.add(edge["to"])

    def run(self) -> bool:
        for _ in range(0 if self.unusable else _ROUNDS):
            data, kept = self.result()
            try:
                Spec.model_validate(data)
                return True
            except ValidationError as exc:
                errors = exc.errors()
            changed = False
            for err in errors:
                path = list(clean_path(tuple(err["loc"]), data))
                if path[:1] == ["edges"] and len(path) > 1 and isinstance(path[1], int) and path[1] < len(kept):
                    path[1] = kept[path[1]]
                changed |= self._set_aside(tuple(path), err["type"] == "missing")
            if not changed:
                return False
        return False

    def _set_aside(self, path: tuple, missing: bool) -> bool:
        d = self.data
        if not path:
            return False
        head = path[0]
        if head == "nodes" and len(path) >= 2 and isinstance(d.get("nodes"), dict):
            name = path[1]
            node = d["nodes"].get(name)
            self.bad_nodes.add(name)
            if len(path) == 2 or missing or path[2] == "shape" or not isinstance(node, dict):
                if name in self.gone_nodes:
                    return False
                d["nodes"][name] = dict(_PLACEHOLDER)  # keeps the name known to the edges
                self.gone_nodes.add(name)
                return True
            had = path[2] in node
            node.pop(path[2], None)
            return had
        if head == "edges" and len(path) >= 2 and isinstance(path[1], int) and path[1] in self.edges:
            i = path[1]
            edge = self.edges[i]
            if edge is None:
                return False
            self.bad_edges.add(i)
            if len(path) == 2 or missing or path[2] in ("from", "to") or not isinstance(edge, dict):
                self._lose_target(edge)
                if isinstance(edge, dict):
                    self.lost_names.add(edge.get("name") or f"e{i}")
                self.edges[i] = None  # left out
                return True
            edge = dict(edge)
            had = path[2] in edge
            edge.pop(path[2], None)
            self.edges[i] = edge
            return had
        if head == "data":
            section = d.get("data")
            if missing or len(path) == 1 or not isinstance(section, dict):
                self.bad_sections.add(("data",))
                return d.pop("data", None) is not None
            self.bad_sections.add(path[:2])
            return self._pop(section, path[1:2])
        if head == "train":
            section = d.get(head)
            if len(path) == 1 or not isinstance(section, dict):
                self.bad_sections.add((head,))
                return d.pop(head, None) is not None
            self.bad_sections.add(path[:2])
            return self._pop(section, path[1:3])
        if head == "name":
            self.bad_sections.add(("name",))
            if d.get("name") == "spec":
                return False
            d["name"] = "spec"
            return True
        if head in ("nodes", "edges"):
            return False  # the node table or edge list itself is unusable
        had = head in d  # an unknown top-level key
        d.pop(head, None)
        return had

    @staticmethod
    def _pop(mapping: dict, rel: tuple) -> bool:
        """Remove ``rel`` (one or two keys deep) from ``mapping``."""
        if len(rel) == 2 and isinstance(mapping.get(rel[0]), dict):
            inner = dict(mapping[rel[0]])
            had = rel[1] in inner
            inner.pop(rel[1], None)
            mapping[rel[0]] = inner
            return had
        had = rel[0] in mapping
        mapping.pop(rel[0], None)
        return had

    def hides(self, issue: Issue) -> bool:
        """Whether a graph problem concerns something set aside (already reported)."""
        p = issue.path
        if p[:1] == ("nodes",) and len(p) >= 2:
            if p[1] in self.bad_nodes:
                return True
            return len(p) == 2 and p[1] in self.lost_targets and "incoming edge" in issue.message
        if p[:1] == ("edges",) and len(p) >= 2:
            edge = self.edges.get(p[1])
            if p[2:] == ("share",) and isinstance(edge, dict) and edge.get("share") in self.lost_names:
                return True
            return p[1] in self.bad_edges or self._touches_gone(edge)
        return any(p[: len(s)] == s for s in self.bad_sections)


def _renumbered(smap: SourceMap, kept: list[int]) -> SourceMap:
    """The source map of the repaired data: kept edges at their new indices."""
    new_of = {old: new for new, old in enumerate(kept)}

    def move(table: dict) -> dict:
        out = {}
        for path, pos in table.items():
            if path[:1] == ("edges",) and len(path) > 1 and isinstance(path[1], int):
                if path[1] not in new_of:
                    continue
                path = ("edges", new_of[path[1]]) + path[2:]
            out[path] = pos
        return out

    return SourceMap(smap.file, move(smap.values), move(smap.keys), move(smap.overrides))


def _renumber_issue(issue: Issue, kept: list[int]) -> Issue:
    p = issue.path
    if p[:1] == ("edges",) and len(p) > 1 and isinstance(p[1], int) and p[1] < len(kept):
        return Issue(("edges", kept[p[1]]) + tuple(p[2:]), issue.message, issue.location)
    return issue


__all__ = ["check_spec"]
