"""The memory a graph needs at least, from its shapes alone, checked before anything
is allocated.

A shape typo (a node of shape [1000000] fed by a linear edge from another such node)
asks for a 10^12-entry weight; allocating it fails deep inside the allocator, or
succeeds and swaps the machine to a halt. ``check_budget`` counts, without making a
tensor, every parameter tensor (edges and nodes; tied parameters once) and every
node's values for one batch (``data.batch_size``, or ``eval_batch_size`` when larger;
one example without a data section), and refuses with one sentence naming the edge or
node when one of them alone, or all of them together, exceed the memory of the
device: the machine's RAM for the CPU, the card's memory for CUDA, or a smaller cap
set in ``$PCGRAPH_MAX_MEMORY`` (bytes, or a number with K, M, G or T). These are
lower bounds: training also keeps predictions, errors, gradients and optimiser
moments, so a graph that passes may still not fit.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import psutil
import torch

from ..core.errors import CompileError, Issue, Location
from ..graph import PCGraph

CAP_ENV = "PCGRAPH_MAX_MEMORY"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Need:
    """One tensor (or a node's values for a batch) and what it costs."""

    path: tuple
    location: Location | None
    what: str  # e.g. "edge e1 (h1 -> h2, linear) needs a 1000000 x 1000000 weight"
    nbytes: int


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


def needs(graph: PCGraph, dtype: torch.dtype) -> list[Need]:
    """Every parameter tensor and every node's batch of values, with its size in bytes."""
    item = dtype.itemsize
    out: list[Need] = []
    for e in graph.edges:
        where = f"edge {e.name} ({'+'.join(e.sources)} -> {e.target}, {e.transform})"
        for pname, shape in e.param_shapes.items():
            if pname not in e.shared_names:
                out.append(
                    Need(
                        ("edges", e.index), e.location, f"{where} needs a {_dims(shape)} {pname}",
                        math.prod(shape) * item
                    )
                )
    batch, said = _batch(graph)
    for n in graph.nodes.values():
        for pname, shape in n.node_params.items():
            out.append(
                Need(
                    ("nodes", n.name), n.location, f"node '{n.name}' needs a {_dims(shape)} {pname}",
                    math.prod(shape) * item
                )
            )
        per = max(math.prod(n.shape), math.prod(n.param_shape))
        size = 8 if n.dtype == "long" else item
        out.append(
            Need(
                ("nodes", n.name), n.location,
                f"node '{n.name}' of shape {_shape(n.shape)} needs {batch} x {_num(per)} values ({said})",
                batch * per * size
            )
        )
    return out


def memory_of(device: torch.device) -> tuple[int, str] | None:
    """(bytes, how to name them) of the device's memory, or of the smaller cap in
    ``$PCGRAPH_MAX_MEMORY``; None for a device without memory (meta)."""
    if device.type == "meta":
        return None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        total, name = torch.cuda.get_device_properties(index).total_memory, f"the memory of cuda:{index}"
    else:
        total, name = psutil.virtual_memory().total, "this machine's memory"
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


def check_budget(graph: PCGraph, device: torch.device, dtype: torch.dtype) -> None:
    """CompileError, naming the edge or node and the size, when the graph cannot fit."""
    memory = memory_of(device)
    if memory is None:
        return
    limit, name = memory
    items = needs(graph, dtype)
    for need in sorted(items, key=lambda n: -n.nbytes):
        if need.nbytes > limit:
            raise CompileError(Issue(need.path, f"{need.what}: {human(need.nbytes)}, more than {name}", need.location))
    total = sum(n.nbytes for n in items)
    if total > limit:
        big = max(items, key=lambda n: n.nbytes)
        msg = (
            f"the parameters and one batch of node values need {human(total)} together, more than {name}; the "
            f"largest part: {big.what} ({human(big.nbytes)})"
        )
        raise CompileError(Issue(None, msg, graph.source.locate(()) if graph.source is not None else None))
