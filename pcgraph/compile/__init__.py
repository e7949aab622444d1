"""Compile stage: PCGraph -> Program (a torch.nn.Module)."""

from __future__ import annotations

import torch

from ..core.errors import CompileError, Issue, Location
from ..graph import PCGraph
from .budget import check_budget
from .kernels import assign_kernels
from .program import Program
from .state import State
from .teacher import graph_teacher


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device for ``device`` (auto: CUDA when there is one); CompileError, in
    one sentence, for a device that this torch build or machine does not have."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = Location(f"device '{device}'")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):  # the text is the user's: torch cannot parse it
        raise CompileError(Issue(None, "unknown device: use cpu, cuda, cuda:N or mps", where)) from None
    problem = _missing(dev)
    if problem:
        raise CompileError(Issue(None, problem, where))
    return dev


def _missing(dev: torch.device) -> str | None:
    """Why ``dev`` cannot be used here, or None."""
    if dev.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            return "this torch build has no CUDA support; use --device cpu"
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "no CUDA device is visible to this process; use --device cpu"
        if dev.index is not None and dev.index >= count:
            return (
                f"this machine has {count} CUDA device{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1}); use "
                f"one of them"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        return "this torch build or machine has no MPS support; use --device cpu"
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        return f"pcgraph runs on cpu, cuda or mps, not {dev.type}"
    return None


def compile_graph(
    graph: PCGraph, energy: str | None = None, device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None
) -> Program:
    """Build the Program for ``graph``. ``energy``: "kl" (F_KL) or "gaussian"
    (standard PC); defaults come from the spec's ``train`` section. The weights are
    initialised from ``train.seed``; the linear edges run the GEMM kernels
    ``train.kernels`` names (``compile/kernels.py``)."""
    train = graph.spec.train
    energy = energy or train.energy
    if not isinstance(device, torch.device):  # a torch.device is taken as resolved (once per run)
        device = resolve_device(device if device is not None else train.device)
    if dtype is None:
        dtype = train.dtype
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    check_budget(graph, device, dtype)  # refuse a graph that cannot fit before allocating it
    # the initial weights are a function of train.seed alone, however the program is built
    # (CLI or Python) and whatever ran before; the caller's random stream is left untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(train.seed))
        prog = Program(graph, energy=energy, device=device, dtype=dtype)
    assign_kernels(prog)  # train.kernels: the GEMM kernels of the linear edges
    return prog


__all__ = ["compile_graph", "graph_teacher", "Program", "State", "resolve_device"]
