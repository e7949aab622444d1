"""The teacher of the ``synthetic`` dataset: the graph itself, compiled, run forward.

The data stage draws the inputs and turns the teacher's predictions into targets; it
seeds torch with the dataset's seed (plus an offset) before it calls the teacher.
Building the network is this stage's work, so the caller that loads a synthetic
dataset passes ``graph_teacher(graph)`` (``pcgraph.load_data`` does).
"""

from __future__ import annotations

import functools

import torch

from .kernels import assign_kernels
from .program import Program

#: examples the teacher predicts at once
CHUNK = 1024


def graph_teacher(graph):
    """{bind: inputs} -> {node: forward predictions} of ``graph``'s network, built on the
    CPU with weights drawn from torch's random stream as the caller seeded it (the
    dataset's seed, not ``train.seed``: the student does not start as its teacher)."""
    return functools.partial(teacher_predictions, graph)


def teacher_predictions(graph, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward predictions (``Program.predict``) of ``graph`` built now, on the CPU."""
    n = next(iter(inputs.values())).shape[0]
    out: dict[str, list] = {}
    teacher = Program(graph, energy=graph.spec.train.energy, device=torch.device("cpu"))
    assign_kernels(teacher)
    teacher.eval()
    for i in range(0, n, CHUNK):
        pred = teacher.predict({b: t[i : i + CHUNK] for b, t in inputs.items()})
        for k, v in pred.items():
            out.setdefault(k, []).append(v.detach().cpu())
    return {k: torch.cat(v) for k, v in out.items()}
