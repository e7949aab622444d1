"""The memory check before a program is allocated: the graph's needs
(``pcgraph.graph.budget``, which ``pcgraph validate`` also runs) against the device's
memory -- the machine's RAM for the CPU, the card's memory for CUDA, or a smaller cap
set in ``$PCGRAPH_MAX_MEMORY``."""

from __future__ import annotations

import torch

from ..core.errors import CompileError
from ..graph import PCGraph
from ..graph.budget import CAP_ENV, Need, capped, human, machine_memory, overflow
from ..graph.budget import needs as _needs


def needs(graph: PCGraph, dtype: torch.dtype) -> list[Need]:
    """Every parameter tensor and every node's batch of values, with its size in bytes."""
    return _needs(graph, dtype.itemsize)


def memory_of(device: torch.device) -> tuple[int, str] | None:
    """(bytes, how to name them) of the device's memory, or of the smaller cap in
    ``$PCGRAPH_MAX_MEMORY``; None for a device without memory (meta)."""
    if device.type == "meta":
        return None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return capped(torch.cuda.get_device_properties(index).total_memory, f"the memory of cuda:{index}")
    return machine_memory()


def check_budget(graph: PCGraph, device: torch.device, dtype: torch.dtype) -> None:
    """CompileError, naming the edge or node and the size, when the graph cannot fit."""
    memory = memory_of(device)
    if memory is None:
        return
    issue = overflow(graph, needs(graph, dtype), *memory)
    if issue is not None:
        raise CompileError(issue)


__all__ = ["check_budget", "memory_of", "needs", "human", "CAP_ENV"]
