"""Token ids checked against the vocabulary of the edges that read them.

An id outside ``0 .. vocab - 1`` is a fault of the data (or of the spec's ``vocab``),
not of the program: it is reported as one sentence naming the node and the edge,
instead of the failure of the embedding lookup deep inside torch (on CUDA, a
device-side assertion that ends the process)."""

from __future__ import annotations

import torch

from ..graph import PCGraph


def token_problem(graph: PCGraph, node: str, ids: torch.Tensor) -> str | None:
    """Why the integer tensor ``ids`` cannot feed ``node``'s out-edges, or None."""
    readers = [e for e in graph.out_edges(node) if getattr(e.options, "vocab", None) is not None]
    if not readers or ids.numel() == 0:
        return None
    edge = min(readers, key=lambda e: int(e.options.vocab))
    vocab = int(edge.options.vocab)
    lo, hi = (int(v) for v in torch.aminmax(ids))
    if 0 <= lo and hi < vocab:
        return None
    bad = lo if lo < 0 else hi
    return (
        f"token id {bad} is outside the vocabulary of edge {edge.name} ({node} -> {edge.target}, vocab {vocab}: ids 0 "
        f"to {vocab - 1})"
    )
