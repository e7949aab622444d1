"""Readable views of a PCGraph: a text table, JSON, Graphviz dot and Mermaid."""

from __future__ import annotations

import json

from . import PCGraph
from ..transforms.base import fmt

#: (fill colour, Graphviz shape) of a node without a family (a clamped input); a
#: family's nodes take its ``style``
INPUT_STYLE = ("#d9d9d9", "box")
#: Mermaid's node syntax for the Graphviz shapes families draw with (others: a stadium)
MERMAID_SHAPES = {"hexagon": '{{{{"{}"}}}}', "box": '[/"{}"/]'}


def _style(n):
    return INPUT_STYLE if n.family_cls is None else n.family_cls.style


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def as_table(g: PCGraph) -> str:
    out = [f"{g.name}: {len(g.nodes)} nodes, {len(g.edges)} edges, {g.params_total:,} parameters", ""]
    rows = []
    for n in g.nodes.values():
        fam = n.family or "-"
        if n.prior is not None:
            fam += f" + prior {n.prior.type}"
        extra = f" (+{n.params:,} params)" if n.params else ""
        rows.append(
            [n.name, n.role + (f" <- {n.bind}" if n.bind else ""), fam, fmt(n.shape), fmt(n.param_shape) + extra]
        )
    out += _table(rows, ["node", "role", "family", "shape", "param shape"])
    out.append("")
    rows = []
    for e in g.edges:
        share = f" (shares {e.share})" if e.share else ""
        rows.append(
            [e.name, f"{', '.join(e.sources)} -> {e.target}", e.transform + share, e.activation, f"{e.params:,}"]
        )
    out += _table(rows, ["edge", "from -> to", "transform", "activation", "params"])
    out.append("")
    out.append(f"parameters: {g.params_total:,} total ({g.params_on_edges:,} on edges, {g.params_on_nodes:,} on nodes)")
    if g.generations:
        out.append("generations: " + " | ".join(", ".join(x) for x in g.generations))
    return "\n".join(out)


def as_json(g: PCGraph) -> str:
    return json.dumps(g.summary(), indent=2)


def as_dot(g: PCGraph) -> str:
    lines = [f'digraph "{g.name}" {{', "  rankdir=LR;", '  node [style=filled, fontname="Helvetica"];']
    for n in g.nodes.values():
        color, shape = _style(n)
        label = f"{n.name}\\n{n.family or n.role} {fmt(n.shape)}"
        border = ', peripheries=2' if n.role == "target" else ""
        lines.append(f'  "{n.name}" [label="{label}", fillcolor="{color}", shape={shape}{border}];')
    for e in g.edges:
        label = e.transform + ("" if e.activation == "identity" else f" + {e.activation}")
        for i, s in enumerate(e.sources):
            arg = f" [{i}]" if len(e.sources) > 1 else ""
            lines.append(f'  "{s}" -> "{e.target}" [label="{label}{arg}"];')
    lines.append("}")
    return "\n".join(lines)


def as_mermaid(g: PCGraph) -> str:
    lines = ["flowchart LR"]
    for n in g.nodes.values():
        text = f"{n.name}<br/>{n.family or n.role} {fmt(n.shape)}"
        lines.append(f"  {n.name}" + MERMAID_SHAPES.get(_style(n)[1], '(["{}"])').format(text))
    for e in g.edges:
        label = e.transform + ("" if e.activation == "identity" else f" + {e.activation}")
        for s in e.sources:
            lines.append(f"  {s} -->|{label}| {e.target}")
    for fam in sorted({n.family or "input" for n in g.nodes.values()}):
        members = [n for n in g.nodes.values() if (n.family or "input") == fam]
        color, _ = _style(members[0])
        members = [n.name for n in members]
        lines.append(f"  classDef {fam} fill:{color}")
        lines.append(f"  class {','.join(members)} {fam}")
    return "\n".join(lines)


FORMATS = {"table": as_table, "json": as_json, "dot": as_dot, "mermaid": as_mermaid}
