"""pcgraph's half of the equivalence check: the reference numbers, exported to .npz.

Runs with the project's own Python (torch, pcgraph from the repository). It builds
bench-mlp in float64 with the peers' algorithm (``schedule: sync``, ``gradient:
equilibrium``, the spec's SGD lr 0.1 on the states), takes pcgraph's freshly
initialised weights and the bench batch, runs the T inference steps and stores the
weights, the batch, the energy (batch mean of the per-sample total) after the forward
initialisation and after T steps, and the weight gradients (of that batch mean).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pcgraph.train.bench import random_batch
from pcgraph.compile import compile_graph
from pcgraph.graph import build_graph
from pcgraph.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "benchmarks" / "bench-mlp.yaml"
SAME_ALGORITHM = ("train.inference.schedule=sync", "train.weights.gradient=equilibrium")


def build_program(dtype: str = "float64", overrides=SAME_ALGORITHM):
    """bench-mlp compiled as ``pcgraph bench`` compiles it (same seed), in ``dtype``."""
    spec = load_spec(SPEC, [f"train.dtype={dtype}", *overrides])
    torch.manual_seed(spec.train.seed)
    return spec, compile_graph(build_graph(spec), energy=spec.train.energy, device="cpu")


def linear_edges(prog) -> list[str]:
    """The program's edges in order (input to output); all linear for bench-mlp."""
    edges = sorted(prog.edges, key=lambda e: e.index)
    if any(e.transform != "linear" for e in edges):
        raise ValueError("only chains of linear edges can be exported")
    return [e.name for e in edges]


def weights_of(prog) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W [out, in], b [out])] per edge, input to output."""
    out = []
    for name in linear_edges(prog):
        mod = prog.edge_modules[name]
        out.append((mod.weight.detach().cpu().numpy().copy(), mod.bias.detach().cpu().numpy().copy()))
    return out


def load_weights(prog, weights) -> None:
    """Copy [(W, b)] into the program's edges, input to output."""
    names = linear_edges(prog)
    if len(names) != len(weights):
        raise ValueError(f"{len(weights)} layers given, the program has {len(names)} edges")
    with torch.no_grad():
        for name, (w, b) in zip(names, weights):
            mod = prog.edge_modules[name]
            mod.weight.copy_(torch.as_tensor(w))
            mod.bias.copy_(torch.as_tensor(b))


def save_npz(path, weights, arrays: dict) -> None:
    """Weights as W0, b0, W1, b1, ... plus any named arrays."""
    flat = {f"W{k}": w for k, (w, _) in enumerate(weights)} | {f"b{k}": b for k, (_, b) in enumerate(weights)}
    np.savez(path, **flat, **arrays)


def load_npz_weights(data) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len([k for k in data.files if k.startswith("W")])
    return [(data[f"W{k}"], data[f"b{k}"]) for k in range(n)]


def reference(prog, spec, batch) -> dict[str, np.ndarray]:
    """Energy after the forward init and after T steps, weight gradients at the settled states."""
    state = prog.init_state(batch, init=spec.train.inference.init)
    with torch.no_grad():
        e0 = prog.energy(state).item()
    prog.infer(state)
    with torch.no_grad():
        e = prog.energy(state).item()
    prog.zero_grad(set_to_none=True)
    prog.weight_grads(state)
    out = {"energy0": np.array(e0), "energy": np.array(e), "T": np.array(spec.train.inference.steps), "state_lr": np.array(spec.train.inference.optimizer.lr)}
    for k, name in enumerate(linear_edges(prog)):
        mod = prog.edge_modules[name]
        out[f"gW{k}"] = mod.weight.grad.detach().cpu().numpy().copy()
        out[f"gb{k}"] = mod.bias.grad.detach().cpu().numpy().copy()
    return out


def export_reference(path, dtype: str = "float64") -> dict:
    """Write pcgraph's initial weights, the bench batch and the reference numbers to ``path``."""
    spec, prog = build_program(dtype)
    weights = weights_of(prog)
    batch = random_batch(prog, spec.data.batch_size)
    ref = reference(prog, spec, batch)
    arrays = {"x": batch["image"].cpu().numpy(), "y": batch["label"].cpu().numpy()} | ref
    save_npz(path, weights, arrays)
    return arrays
