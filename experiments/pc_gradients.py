"""Where PC's weight gradients point, at a given set of weights.

Loads a run's weights (e.g. a BP-trained one), takes one test batch, and compares per
weight matrix the PC weight gradient after T inference steps with the BP gradient of
the same loss, and, for graphs with priors (a VAE), with the BP gradient's two parts:
the targets' terms (reconstruction) and the prior terms. Same noise for both.

    python experiments/pc_gradients.py RUN_DIR --data-dir DATA [--steps T] [--lr LR]
        [--energy kl|gaussian] [--batch N] [--set ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pcgraph.compile import compile as compile_program
from pcgraph.data import load_dataset
from pcgraph.graph import build_graph
from pcgraph.train import checkpoint as ckpt
from pcgraph.train.run import load_run_spec


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="state optimizer")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--fresh", action="store_true", help="use freshly initialised weights (the spec's seed), not the checkpoint's")
    ap.add_argument("--energy", choices=["kl", "gaussian"], default="kl")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()

    run = Path(args.run)
    spec = load_run_spec(run, args.set)
    graph = build_graph(spec)
    torch.manual_seed(spec.train.seed)
    prog = compile_program(graph, energy=args.energy)
    if not args.fresh:
        prog.load_state_dict(ckpt.load(run / ckpt.NAME, map_location="cpu")["model"])
    data = load_dataset(spec.data, graph, args.data_dir)
    batch = {k: v[: args.batch] for k, v in data["test"].items()}
    torch.manual_seed(0)
    state = prog.init_state(batch)
    params = dict(prog.named_parameters())

    terms, _ = prog.loss_terms(batch, state.noise)
    targets = set(prog.targets)

    def grads(keep):
        parts = [v.mean() for k, v in terms.items() if keep(k)]
        if not parts:
            return [torch.zeros_like(p) for p in params.values()]
        loss = sum(parts)
        g = torch.autograd.grad(loss, list(params.values()), allow_unused=True, retain_graph=True)
        return [torch.zeros_like(p) if x is None else x for p, x in zip(params.values(), g)]

    bp, rec, prior = grads(lambda k: True), grads(lambda k: k in targets), grads(lambda k: k not in targets)
    start = {k: float(v.detach().mean()) for k, v in prog.node_energies(state).items()}
    prog.infer(state, steps=args.steps, optimizer={"type": args.optimizer, "lr": args.lr})
    end = {k: float(v.detach().mean()) for k, v in prog.node_energies(state).items()}
    prog.zero_grad()
    prog.weight_grads(state)
    print(f"energy per node, forward init -> after T={args.steps} steps ({args.optimizer}, lr {args.lr}):")
    for k in end:
        print(f"  {k:8s} {start[k]:8.3f} -> {end[k]:8.3f}")
    print(f"  {'total':8s} {sum(start.values()):8.3f} -> {sum(end.values()):8.3f}")
    edges = {}  # parameter -> "sources → target (name)"
    for e in prog.edges:
        for k, p in prog.edge_modules[e.name].named_parameters():
            edges[p] = f"{'+'.join(e.sources)} → {e.target} ({k})"
    has_prior = any(t not in targets for t in terms)
    head = "| weight | cos(PC, BP) | ‖PC‖/‖BP‖ |"
    print(head + (" cos(PC, BP targets' part) | cos(PC, BP prior part) |" if has_prior else ""))
    print("|---" * (5 if has_prior else 3) + "|")
    for (name, p), b, r, q in zip(params.items(), bp, rec, prior):
        if p.dim() < 2:
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        row = f"| {edges.get(p, name)} | {cosine(g, b):+.2f} | {float(g.norm() / (b.norm() + 1e-30)):.2g} |"
        if has_prior:
            pq = "–" if q.abs().sum() == 0 else f"{cosine(g, q):+.2f}"
            row += f" {cosine(g, r):+.2f} | {pq} |"
        print(row)


if __name__ == "__main__":
    main()
