"""Compile stage: PCGraph -> Program (a torch.nn.Module)."""

from __future__ import annotations

import torch

from ..graph import PCGraph
from .kernels import assign_kernels
from .program import Program
from .state import State


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def compile(graph: PCGraph, energy: str | None = None, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> Program:
    """Build the Program for ``graph``. ``energy``: "kl" (F_KL) or "gaussian"
    (standard PC); defaults come from the spec's ``train`` section. The weights are
    initialised from ``train.seed``; the linear edges run the GEMM kernels
    ``train.kernels`` names (``compile/kernels.py``)."""
    train = graph.spec.train
    energy = energy or train.energy
    device = resolve_device(device if device is not None else train.device)
    if dtype is None:
        dtype = train.dtype
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    # the initial weights are a function of train.seed alone, however the program is built
    # (CLI or Python) and whatever ran before; the caller's random stream is left untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(train.seed))
        prog = Program(graph, energy=energy, device=device, dtype=dtype)
    assign_kernels(prog)  # train.kernels: the GEMM kernels of the linear edges
    return prog


__all__ = ["compile", "Program", "State", "resolve_device"]
