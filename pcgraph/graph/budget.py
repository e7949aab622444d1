"""The memory a graph needs at least, from its shapes alone, in plain Python (no torch).

A shape typo (a node of shape [1000000] fed by a linear edge from another such node)
asks for a 10^12-entry weight; allocating it fails deep inside the allocator, or
succeeds and swaps the machine to a halt. ``needs`` counts, without making a tensor,
every parameter tensor (edges and nodes; tied parameters once) and every node's values
for one batch (``data.batch_size``, or ``eval_batch_size`` when larger; one example
without a data section); ``overflow`` is the one sentence, naming the edge or node,
when one of them alone, or all of them together, exceed a memory. These are lower
bounds: training also keeps predictions, errors, gradients and optimiser moments, so
a graph that passes may still not fit.

``pcgraph validate`` checks a graph against this machine's memory (``memory_issue``);
compiling checks it against the device's (``pcgraph.compile.budget``). Both honour a
smaller cap in ``$PCGRAPH_MAX_MEMORY`` (bytes, or a number with K, M, G or T).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from ..core.errors import CompileError, Issue, Location
from .structure import PCGraph

CAP_ENV = "PCGRAPH_MAX_MEMORY"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
ITEMSIZE = {"float32": 4, "float64": 8}


@dataclass(frozen=True)
class Need:
    """One tensor (or a node's values for a batch) and what it costs."""

    path: tuple
    location: Location | None
    what: str  # e.g. "edge e1 (h1 -> h2, linear) needs a 1000000 x 1000000 weight"
    nbytes: int
    parameter: bool = True  # False: a node's values for one batch


def _num(n: int) -> str:
    """An integer as digits, or as a power of ten when it is too long to read."""
    if n < 10**15:
        return str(n)
    return f"about 10^{math.floor(math.log10(n))}"


def human(nbytes: int) -> str:
    """``4_000_000_000_000`` -> ``3.6 TiB``; past 1024 PiB, a power of ten of bytes."""
    if nbytes >= 2**60:
        return f"{_num(nbytes)} bytes"
    size, unit = float(nbytes), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            break
        size /= 1024
    return f"{nbytes} B" if unit == "B" else f"{size:.1f} {unit}"


def _shape(shape) -> str:
    axes = [_num(int(s)) for s in shape]
    return f"[{', '.join(axes)}]" if len(axes) <= 6 else f"[{', '.join(axes[:3])}, ... ({len(axes)} axes)]"


def _dims(shape) -> str:
    return " x ".join(_num(int(s)) for s in shape)


def _batch(graph: PCGraph) -> tuple[int, str]:
    data = graph.spec.data
    if data is None:
        return 1, "one example: no data section"
    if data.eval_batch_size is not None and data.eval_batch_size > data.batch_size:
        return int(data.eval_batch_size), f"data.eval_batch_size {data.eval_batch_size}"
    return int(data.batch_size), f"data.batch_size {data.batch_size}"


def needs(graph: PCGraph, itemsize: int) -> list[Need]:
    """Every parameter tensor and every node's batch of values, with its size in bytes
    (``itemsize``: bytes per float entry)."""
    out: list[Need] = []
    for e in graph.edges:
        where = f"edge {e.name} ({'+'.join(e.sources)} -> {e.target}, {e.transform})"
        for pname, shape in e.param_shapes.items():
            if pname not in e.shared_names:
                out.append(
                    Need(
                        ("edges", e.index), e.location, f"{where} needs a {_dims(shape)} {pname}",
                        math.prod(shape) * itemsize
                    )
                )
    batch, said = _batch(graph)
    for n in graph.nodes.values():
        for pname, shape in n.node_params.items():
            out.append(
                Need(
                    ("nodes", n.name), n.location, f"node '{n.name}' needs a {_dims(shape)} {pname}",
                    math.prod(shape) * itemsize
                )
            )
        per = max(math.prod(n.shape), math.prod(n.param_shape))
        size = 8 if n.dtype == "long" else itemsize
        what = f"node '{n.name}' of shape {_shape(n.shape)} needs {batch} x {_num(per)} values ({said})"
        out.append(Need(("nodes", n.name), n.location, what, batch * per * size, parameter=False))
    return out


def capped(total: int, name: str) -> tuple[int, str]:
    """(bytes, how to name them): ``total`` bytes called ``name``, or the smaller cap in
    ``$PCGRAPH_MAX_MEMORY``."""
    cap = os.environ.get(CAP_ENV, "").strip()
    if cap:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", cap, re.IGNORECASE)
        if m is None:
            msg = f"must be a number of bytes, optionally with K, M, G or T (e.g. 8G), got {cap!r}"
            raise CompileError(Issue(None, msg, Location(f"${CAP_ENV}")))
        limit = int(float(m[1]) * _UNITS[m[2].upper()])
        if limit < total:
            return limit, f"${CAP_ENV} ({human(limit)})"
    return total, f"{name} ({human(total)})"


def physical_memory() -> int:
    """This machine's physical memory in bytes: from ``os.sysconf`` where the system
    has it (Linux, macOS: no import), else from psutil (30 ms or more to import, which
    ``pcgraph validate`` would pay on every call)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 0
    if total > 0:
        return total
    import psutil

    return psutil.virtual_memory().total


def machine_memory() -> tuple[int, str]:
    """(bytes, name) of this machine's memory, or of the smaller cap."""
    return capped(physical_memory(), "this machine's memory")


def overflow(graph: PCGraph, items: list[Need], limit: int, name: str) -> Issue | None:
    """The sentence, located at the edge or node, when one of ``items`` alone or all of
    them together need more than ``limit`` bytes (called ``name``); else None."""
    for need in sorted(items, key=lambda n: -n.nbytes):
        if need.nbytes > limit:
            return Issue(need.path, f"{need.what}: {human(need.nbytes)}, more than {name}", need.location)
    total = sum(n.nbytes for n in items)
    if total > limit:
        big = max(items, key=lambda n: n.nbytes)
        what = (
            "the parameters and one batch of node values" if any(not n.parameter for n in items) else "the parameters"
        )
        where = graph.source.locate(()) if graph.source is not None else None
        return Issue(
            None,
            f"{what} need {human(total)} together, more than {name}; the largest part: {big.what} "
            f"({human(big.nbytes)})",
            where,
        )
    return None


def memory_issue(graph: PCGraph) -> Issue | None:
    """What ``pcgraph validate`` says of a graph too big for this machine: a spec on the
    CPU (``cpu``, or ``auto``) is held to the machine's memory with one batch of node
    values; on a card, its parameters alone (they are made in host memory before they
    move), the card's own memory being checked when the program is built."""
    limit, name = machine_memory()
    train = graph.spec.train
    items = needs(graph, ITEMSIZE[train.dtype])
    if train.device not in ("cpu", "auto"):
        items = [n for n in items if n.parameter]
    return overflow(graph, items, limit, name)
