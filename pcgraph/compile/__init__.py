"""Compile stage: PCGraph -> Program (a torch.nn.Module)."""

from __future__ import annotations

import torch

from ..graph import PCGraph
from .program import Program
from .state import State
from .teacher import register as _register_teacher


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def compile(graph: PCGraph, energy: str | None = None, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> Program:
    """Build the Program for ``graph``. ``energy``: "kl" (F_KL) or "gaussian"
    (standard PC); defaults come from the spec's ``train`` section. The weights are
    initialised from ``train.seed``."""
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
        return Program(graph, energy=energy, device=device, dtype=dtype)


# the synthetic dataset's targets come from the graph compiled by this function
_register_teacher(compile)

__all__ = ["compile", "Program", "State", "resolve_device"]
