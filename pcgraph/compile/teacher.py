"""The teacher of the ``synthetic`` dataset: the graph itself, compiled, run forward.

The data stage draws the inputs and turns the teacher's predictions into targets;
building the network is this stage's work, so it registers the builder there.
"""

from __future__ import annotations

import functools

import torch

from ..data.check import provide_teachers

#: examples the teacher predicts at once
CHUNK = 1024


def teacher_predictions(build, graph, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward predictions (``Program.predict``) of ``build(graph, device="cpu")``."""
    n = next(iter(inputs.values())).shape[0]
    out: dict[str, list] = {}
    teacher = build(graph, device="cpu")
    teacher.eval()
    for i in range(0, n, CHUNK):
        pred = teacher.predict({b: t[i : i + CHUNK] for b, t in inputs.items()})
        for k, v in pred.items():
            out.setdefault(k, []).append(v.detach().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def register(build) -> None:
    """Make ``build`` (the stage's ``compile``) the builder of every graph's teacher."""
    provide_teachers(lambda graph: functools.partial(teacher_predictions, build, graph))
