"""Inference speed, ratios from one process with interleaved rounds (minimum of the
rounds' medians):

1. bench-mlp (784-512x3-10, tanh, batch 256, T = 8, gradient at equilibrium): BP step,
   the plain synchronous PC step (value SGD 0.1, sync), the same step written out in
   plain torch for this one net (``plain_sync_step``: the same matrix products, error
   front included, and the fewest elementwise passes; checked to give the same
   weights first), and the PC step with the library's default inference (the spec's
   inference block giving only ``steps: 8``); and the floors: the matrix products of
   the BP step and of the synchronous PC step alone, into preallocated outputs, with
   no elementwise work (``products_only``).
2. bench-small (784-32-32-10, sigmoid, no biases, T = 100): inference steps per second
   of the default inference (carry, guard, preconditioned SGD lr 1, nudge 1e-4) at
   batch 32 and 1, against a plain torch loop written out for this one net doing the
   same arithmetic (checked to reach the same states first).

    python benchmarks/inference.py [--threads N] [--steps N] [--rounds N] [--device D]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pcgraph.compile import compile_graph
from pcgraph.core.activations import get as activation
from pcgraph.graph import build_graph
from pcgraph.spec import load_spec
from pcgraph.train.bench import random_batch

HERE = Path(__file__).resolve().parent
EQ = ["train.weights.gradient=equilibrium"]
TANH_ = activation("tanh").fn_  # the library's tanh (in place), so both sides run the same kernel


def _program(path, overrides=(), device="cpu"):
    spec = load_spec(path, list(overrides))
    torch.manual_seed(0)
    return compile_graph(build_graph(spec), energy=spec.train.energy, device=torch.device(device)), spec


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _rounds(fns: dict, steps: int, rounds: int, device) -> dict:
    """{name: [median seconds of each round]}, the functions alternating by round."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            ts = []
            for _ in range(steps):
                _sync(device)
                a = time.perf_counter()
                fn()
                _sync(device)
                ts.append(time.perf_counter() - a)
            out[k].append(statistics.median(ts))
    return out


def plain_sync_step(ws, bs, opt, x0, y, T: int, lr: float) -> None:
    """bench-mlp's synchronous PC step written out (tanh hidden layers, categorical
    output clamped to the label, value SGD ``lr``, the gradient at the settled states,
    one step of ``opt``). A node's error is known to be zero until it has moved (the
    forward pass put it on its prediction), and a prediction is recomputed only when its
    parent moved: the same products as pcgraph's engine, with no bookkeeping."""
    L = len(ws)
    h = [x0]
    for k in range(L - 1):  # forward initialisation: every hidden node on its prediction
        h.append(TANH_(torch.addmm(bs[k], h[k], ws[k].t())))
    mu = [None] + [t.clone() for t in h[1:]] + [torch.addmm(bs[-1], h[-1], ws[-1].t())]
    moved = [False] * L  # moved[k]: h[k] left its prediction; a stale mu[k + 1]

    def edge_errors():
        s = torch.softmax(mu[L], -1)
        g = [None] * (L + 1)
        g[L] = s.scatter_add_(-1, y.unsqueeze(-1), torch.full((y.shape[0], 1), -1.0, dtype=s.dtype))
        for k in range(1, L):
            if moved[k]:
                e = mu[k] - h[k]
                g[k] = torch.addcmul(e, e * mu[k], mu[k], value=-1.0)  # e (1 - mu^2)
        return g

    for _ in range(T):
        for k in range(1, L):  # predictions whose parents moved
            if moved[k]:
                a = torch.addmm(bs[k], h[k], ws[k].t())
                mu[k + 1] = a if k + 1 == L else TANH_(a)
        g = edge_errors()
        d = [None] * L
        for k in range(1, L):
            if g[k + 1] is not None:
                d[k] = torch.mm(g[k + 1], ws[k]) if not moved[k] else torch.addmm(h[k] - mu[k], g[k + 1], ws[k])
        for k in range(1, L):
            if d[k] is not None:
                h[k].sub_(d[k], alpha=lr)
                moved[k] = True
    for k in range(1, L):
        if moved[k]:
            a = torch.addmm(bs[k], h[k], ws[k].t())
            mu[k + 1] = a if k + 1 == L else TANH_(a)
    g = edge_errors()
    B = x0.shape[0]
    for k in range(L):
        ws[k].grad = (g[k + 1].t() @ h[k]).mul_(1.0 / B)
        bs[k].grad = g[k + 1].sum(0).mul_(1.0 / B)
    opt.step()


def products_only(ws, bs, B: int, T: int | None):
    """The matrix products of one training step of bench-mlp and nothing else, into
    preallocated outputs: BP's (``T`` None: forward, input gradients below the first
    layer, weight gradients) or the synchronous PC step's (forward initialisation; per
    inference step the pullbacks of the errors that can be non-zero and the
    predictions of the edges whose source moved, the front as ``plain_sync_step``
    runs it; the final predictions; the weight gradients). The arithmetic floor of
    each step on this machine."""
    L = len(ws)
    g = torch.Generator().manual_seed(0)
    dims = [ws[0].shape[1]] + [w.shape[0] for w in ws]
    h = [torch.randn(B, d, generator=g) for d in dims]  # states / activations
    mu = [torch.empty(B, d) for d in dims]
    err = [torch.randn(B, d, generator=g) for d in dims]  # errors at the pre-activations
    pull = [torch.empty(B, d) for d in dims]
    gw = [torch.empty_like(w) for w in ws]

    def step():
        for k in range(L):
            torch.addmm(bs[k], h[k], ws[k].t(), out=mu[k + 1])
        if T is None:
            for k in range(L - 1, 0, -1):
                torch.mm(err[k + 1], ws[k], out=pull[k])
        else:
            moved = [False] * L
            for _ in range(T):
                for k in range(1, L):
                    if k + 1 == L or moved[k + 1]:
                        torch.mm(err[k + 1], ws[k], out=pull[k])
                ready = [k for k in range(1, L) if k + 1 == L or moved[k + 1]]
                for k in ready:
                    moved[k] = True
                for k in range(1, L):
                    if moved[k]:
                        torch.addmm(bs[k], h[k], ws[k].t(), out=mu[k + 1])
        for k in range(L):
            torch.mm(err[k + 1].t(), h[k], out=gw[k])

    return step


def _plain_sync(prog, spec, batch):
    """``plain_sync_step`` on a copy of ``prog``'s weights, with the same optimiser."""
    mods = [prog.transforms[e.name] for e in prog.edges]
    ws = [m.weight.detach().clone() for m in mods]
    bs = [m.bias.detach().clone() for m in mods]
    w = spec.train.weights.optimizer
    opt = torch.optim.Adam(ws + bs, lr=w.lr, betas=tuple(w.betas), eps=w.eps, fused=True)
    T, lr = spec.train.inference.steps, spec.train.inference.optimizer.lr
    return ws, (lambda: plain_sync_step(ws, bs, opt, batch["image"], batch["label"], T, lr))


def mlp_steps(steps, rounds, device) -> dict:
    """ms per training step: BP, plain synchronous PC, the same written out in plain
    torch, PC with the default inference."""
    mlp = HERE / "bench-mlp.yaml"
    path = HERE / "bench-mlp-default-inference.yaml"
    fns = {}
    for name, (p, ov, method) in {
        "bp": (mlp, [], "bp"),
        "pc_sync": (mlp, EQ + ["train.inference.schedule=sync"], "pc"),
        "pc_default_inference": (path, [], "pc"),
    }.items():
        prog, spec = _program(p, ov, device)
        batch = random_batch(prog, spec.data.batch_size)
        fns[name] = (lambda f, b: (lambda: f(b)))(prog.step_fn(method), batch)
        if name == "pc_sync":
            ws, fns["plain_sync"] = _plain_sync(prog, spec, batch)
            with torch.no_grad():
                for _ in range(2):  # the same weights after two steps: the same arithmetic
                    fns["pc_sync"]()
                    fns["plain_sync"]()
            for e, w in zip(prog.edges, ws):
                torch.testing.assert_close(prog.transforms[e.name].weight.detach(), w, rtol=1e-4, atol=1e-6)
    if device == "cpu":  # the floors: products alone (CPU: the outputs' ``out=`` forms)
        mods = [prog.transforms[e.name] for e in prog.edges]
        ws_, bs_ = [m.weight.detach() for m in mods], [m.bias.detach() for m in mods]
        B, T = spec.data.batch_size, spec.train.inference.steps
        fns["bp_products"] = products_only(ws_, bs_, B, None)
        fns["pc_sync_products"] = products_only(ws_, bs_, B, T)
    r = _rounds(fns, steps, rounds, device)
    best = {k: min(v) * 1e3 for k, v in r.items()}
    out = {
        **{f"{k}_ms": round(v, 3) for k, v in best.items()},
        **{f"{k}_rounds_ms": [round(x * 1e3, 3) for x in v] for k, v in r.items()},
        "default_over_sync": round(best["pc_default_inference"] / best["pc_sync"], 3),
        "sync_over_bp": round(best["pc_sync"] / best["bp"], 3),
        "sync_over_plain_sync": round(best["pc_sync"] / best["plain_sync"], 3),
    }
    if "bp_products" in best:
        out["products_pc_over_bp"] = round(best["pc_sync_products"] / best["bp_products"], 3)
        out["sync_over_its_products"] = round(best["pc_sync"] / best["pc_sync_products"], 3)
        out["bp_over_its_products"] = round(best["bp"] / best["bp_products"], 3)
    return out


def plain_loop(ws, x0, y, T: int, beta: float):
    """The default inference on the small net, written out: carry (h2 then h1 with the
    errors held, then h2 follows its prediction), preconditioned SGD lr 1 (unit scale),
    the guard (a step that raised a sample's energy is undone and halved)."""
    W1, W2, W3 = ws
    sig = torch.sigmoid
    mu1 = sig(x0 @ W1.T)
    h1 = mu1.clone()
    mu2 = sig(h1 @ W2.T)
    h2 = mu2.clone()
    mu3 = sig(h2 @ W3.T)
    tol = 16 * torch.finfo(x0.dtype).eps

    def energy(h1, h2, mu2, mu3):
        e1, e2, e3 = h1 - mu1, h2 - mu2, y - mu3
        return 0.5 * ((e1 * e1).sum(1) + (e2 * e2).sum(1)) + (0.5 * beta) * (e3 * e3).sum(1)

    before = energy(h1, h2, mu2, mu3)
    alpha = torch.ones_like(before)
    scaled = False
    old1, old2 = h1.clone(), h2.clone()
    e3 = (mu3 - y) * beta
    for _ in range(T):
        old1.copy_(h1)
        old2.copy_(h2)
        g3 = e3 * mu3 * (1 - mu3)  # h2's step: its own error and the target's held one
        h2 -= torch.addmm(h2 - mu2, g3, W3)
        if scaled:
            h2.copy_(torch.lerp(old2, h2, alpha[:, None]))
        e2 = mu2 - h2  # held
        g2 = e2 * mu2 * (1 - mu2)
        h1 -= torch.addmm(h1 - mu1, g2, W2)
        if scaled:
            h1.copy_(torch.lerp(old1, h1, alpha[:, None]))
        new2 = sig(h1 @ W2.T)  # h2 follows its prediction
        h2 += new2 - mu2
        mu2 = new2
        mu3 = sig(h2 @ W3.T)
        after = energy(h1, h2, mu2, mu3)
        # no sample's energy rose at all (asked first, as pcgraph's guard does), or none
        # by more than the tolerance: the step is kept
        cpu = x0.device.type == "cpu"
        rose = None if cpu and bool((after <= before).all()) else ~(after <= before + (before.abs() + 1.0) * tol)
        if rose is not None and (not cpu or bool(rose.any())):
            h1.copy_(torch.where(rose[:, None], old1, h1))
            h2.copy_(torch.where(rose[:, None], old2, h2))
            mu2 = sig(h1 @ W2.T)
            mu3 = sig(h2 @ W3.T)
            alpha = torch.where(rose, 0.5 * alpha, alpha)
            after = torch.where(rose, before, after)
            scaled = True
        before = after
        e3 = (mu3 - y) * beta
    return h1, h2


def small_net(batch: int, steps: int, rounds: int, device) -> dict:
    """Inference steps per second: pcgraph's default inference against the plain loop."""
    prog, spec = _program(HERE / "bench-small.yaml", [], device)
    T = spec.train.inference.steps
    beta = float(spec.train.weights.nudge)
    data = random_batch(prog, batch)
    ws = [prog.transforms[e.name].weight.detach() for e in prog.edges]
    x0, y = data["image"], data["label"]
    with torch.no_grad():
        state = prog.init_state(data, loss_weight=beta)
        prog.infer(state, steps=T)
        h1, h2 = plain_loop(ws, x0, y, T, beta)
    torch.testing.assert_close(state["h1"], h1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state["h2"], h2, rtol=1e-4, atol=1e-5)

    def pcgraph_infer():
        with torch.no_grad():
            prog.infer(prog.init_state(data, loss_weight=beta), steps=T)

    def plain():
        with torch.no_grad():
            plain_loop(ws, x0, y, T, beta)

    r = _rounds({"pcgraph": pcgraph_infer, "plain": plain}, steps, rounds, device)
    best = {k: min(v) for k, v in r.items()}
    return {
        "batch": batch,
        "T": T,
        "pcgraph_steps_per_s": round(T / best["pcgraph"]),
        "plain_steps_per_s": round(T / best["plain"]),
        "pcgraph_over_plain": round(best["pcgraph"] / best["plain"], 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["mlp", "small"], default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = {"device": a.device, "threads": a.threads, "torch": torch.__version__}
    if a.only in (None, "mlp"):
        out["mlp"] = mlp_steps(a.steps, a.rounds, a.device)
        print("bench-mlp:", json.dumps(out["mlp"]), flush=True)
    if a.only in (None, "small"):
        out["small"] = [small_net(b, a.steps, a.rounds, a.device) for b in (32, 1)]
        for s in out["small"]:
            print("bench-small:", json.dumps(s), flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
