"""Inference before plasticity (Song et al. 2024) written out in plain torch: a check
on pcgraph's PC step and a second measurement of the rule on a stream.

The network is an MLP without biases whose hidden values are the pre-activations
x_1 .. x_{L-1} (Gaussian, unit variance) and whose output W_L f(x_{L-1}) is held to
the one-hot label y by 1/2 squared error. A sample's energy is

    E = 1/2 sum_l ||x_l - W_l f(x_{l-1})||^2 + 1/2 ||y - W_L f(x_{L-1})||^2

(f = identity on the input x_0). One training step of the rule:

* values: start at the forward pass, then T steps of SGD with rate ``lr`` on the
  batch's summed energy, the target clamped (a sample's own gradient: the samples do
  not interact). The step size may be halved when the energy rises, three ways
  (``halve``): ``none``; ``sample`` -- a step that raised a sample's energy is undone
  and that sample's rate halves (pcgraph's ``guard: true``); ``batch`` -- the public
  code's rule (PCTrainer's x_lr_discount 0.5): the rate of the whole batch halves
  after a step that did not lower the batch's summed energy, and the step is kept;
* weights: one SGD step on the gradient of the energy at the relaxed values, summed
  over the batch (the public code's loss) or its mean (pcgraph's). The public code
  takes it from the same evaluation as the last value step, i.e. at the values after
  T - 1 steps (``weights_after``).

BP is one SGD step on the summed (or mean) 1/2 squared error of the forward pass.

    python benchmarks/song_rule.py SPEC --init-from RUN --lr 0.005,0.01,0.02 --seeds 3 \\
        [--halve none|sample|batch] [--reduction mean|sum] [--set KEY=VALUE ...]

runs BP and the rule on the stream of SPEC (``data.stream``: the same examples,
batches and drifting labels as ``pcgraph compare``, from pcgraph's StreamPlan) and
prints each method's mean test error at every learning rate, mean +- std over seeds.
The learning rates are those of the chosen reduction (``--reduction mean``: the
values to give pcgraph's ``train.weights.optimizer.lr``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

HALVES = ("none", "sample", "batch")


# ---------------------------------------------------------------- the rule
def forward_values(ws, f, x0):
    """The hidden pre-activations of the forward pass, and the output."""
    xs, prev = [], x0
    for w in ws[:-1]:
        xs.append(prev @ w.T)
        prev = f(xs[-1])
    return xs, prev @ ws[-1].T


def energies(ws, f, x0, xs, y):
    """Each sample's energy [B] at hidden values ``xs``, the output held to ``y``."""
    e, prev = 0.0, x0
    for w, x in zip(ws[:-1], xs):
        e = e + 0.5 * ((x - prev @ w.T) ** 2).sum(1)
        prev = f(x)
    return e + 0.5 * ((y - prev @ ws[-1].T) ** 2).sum(1)


def relax(ws, f, x0, y, steps: int, lr: float, halve: str = "none"):
    """The hidden values after ``steps`` SGD steps on the summed energy (see the module doc)."""
    ws = [w.detach() for w in ws]
    xs = [x.detach() for x in forward_values(ws, f, x0)[0]]
    rate = torch.full((x0.shape[0], 1), float(lr), dtype=x0.dtype)
    last = None  # the energy at the start of the previous step (halve: batch)
    for _ in range(steps):
        xs = [x.requires_grad_() for x in xs]
        e = energies(ws, f, x0, xs, y)
        grads = torch.autograd.grad(e.sum(), xs)
        with torch.no_grad():
            new = [x - rate * g for x, g in zip(xs, grads)]
            if halve == "sample":
                rose = ~(energies(ws, f, x0, new, y) <= e)
                new = [torch.where(rose[:, None], x, n) for x, n in zip(xs, new)]
                rate = torch.where(rose[:, None], 0.5 * rate, rate)
            elif halve == "batch":
                if last is not None and not bool(e.sum() < last):
                    rate = 0.5 * rate
                last = e.sum()
        xs = [n.detach() for n in new]
    return xs


def weight_grads(ws, f, x0, xs, y, reduction: str = "mean"):
    """The gradient of the energy at hidden values ``xs`` for every weight."""
    ws = [w.detach().requires_grad_() for w in ws]
    e = energies(ws, f, x0, [x.detach() for x in xs], y)
    total = e.sum() if reduction == "sum" else e.mean()
    return torch.autograd.grad(total, ws)


def pc_step(ws, f, x0, y, *, steps, value_lr, lr, halve="none", reduction="mean", weights_after=None):
    """One step of the rule; ``ws`` are updated in place. ``weights_after``: the value
    steps the weight gradient is taken after (default ``steps``)."""
    xs = relax(ws, f, x0, y, steps if weights_after is None else weights_after, value_lr, halve)
    grads = weight_grads(ws, f, x0, xs, y, reduction)
    with torch.no_grad():
        for w, g in zip(ws, grads):
            w -= lr * g


def bp_step(ws, f, x0, y, *, lr, reduction="mean"):
    """One SGD step of backprop on 1/2 squared error; ``ws`` are updated in place."""
    leaves = [w.detach().requires_grad_() for w in ws]
    e = 0.5 * ((y - forward_values(leaves, f, x0)[1]) ** 2).sum(1)
    grads = torch.autograd.grad(e.sum() if reduction == "sum" else e.mean(), leaves)
    with torch.no_grad():
        for w, g in zip(ws, grads):
            w -= lr * g


# ---------------------------------------------------------------- a stream
def setup(spec_path: str, overrides, init_from: str | None):
    """(spec, data, the pretrained weights [W_1 .. W_L], the hidden activation)."""
    import pcgraph
    from pcgraph.compile import compile_graph
    from pcgraph.core import activations
    from pcgraph.data import load_dataset
    from pcgraph.train import checkpoint

    spec = pcgraph.load_spec(spec_path, overrides=list(overrides))
    graph = pcgraph.build_graph(spec)
    prog = compile_graph(graph, energy="kl", device="cpu")
    if init_from:
        checkpoint.init_weights(prog, init_from, None)
    ws = [prog.edge_modules[f"e{i}"].weight.detach().clone() for i in range(len(spec.edges))]
    hidden = [n for n, node in spec.nodes.items() if node.role not in ("input", "target")]
    f = activations.get(spec.nodes[hidden[0]].family.output).fn
    return spec, load_dataset(spec.data, graph), ws, f


def run_stream(spec, data, ws, f, method: str, lr: float, seed: int, args) -> float:
    """The mean test error of one run of ``method`` ('bp' or 'pc') over the stream."""
    from pcgraph.data.stream import StreamPlan

    ws = [w.clone() for w in ws]
    train, test = data["train"], data["test"]
    plan = StreamPlan(
        spec.data.stream, train["label"].shape[0], train["label"], test["label"], seed=seed,
        batch_size=spec.data.batch_size, epochs=spec.train.epochs, label_keys=["label"],
    )
    n_out = ws[-1].shape[0]
    errors = []
    for i in range(plan.iterations):
        idx = plan.batch_indices(i)
        fields = plan.train_fields(train, i)
        x0 = fields["image"][idx].flatten(1)
        y = torch.nn.functional.one_hot(fields["label"][idx], n_out).to(x0.dtype)
        if method == "bp":
            bp_step(ws, f, x0, y, lr=lr, reduction=args.reduction)
        else:
            after = spec.train.inference.steps - 1 if args.public_code_gradient else None
            pc_step(ws, f, x0, y, steps=spec.train.inference.steps, value_lr=spec.train.inference.optimizer.lr,
                    lr=lr, halve=args.halve, reduction=args.reduction, weights_after=after)
        if plan.is_eval_point(i + 1):
            (_, view), = plan.test_views(test, i + 1)
            with torch.no_grad():
                out = forward_values(ws, f, view["image"].flatten(1))[1]
            errors.append(float((out.argmax(1) != view["label"]).float().mean()))
    return sum(errors) / len(errors)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--init-from", default=None)
    ap.add_argument("--lr", required=True, help="weight learning rates, comma-separated")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="bp,pc")
    ap.add_argument("--halve", choices=HALVES, default="none")
    ap.add_argument("--reduction", choices=("mean", "sum"), default="mean")
    ap.add_argument("--public-code-gradient", action="store_true",
                    help="the weight gradient at the values after T - 1 steps, as the public code takes it")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    spec, data, ws, f = setup(args.spec, args.overrides, args.init_from)
    best = {}
    for method in args.methods.split(","):
        for lr in (float(v) for v in args.lr.split(",")):
            t0 = time.perf_counter()
            runs = [run_stream(spec, data, ws, f, method, lr, seed, args) for seed in range(args.seeds)]
            m, s = statistics.mean(runs), statistics.pstdev(runs) if len(runs) > 1 else 0.0
            print(f"{method:3s} lr {lr:<8g} mean_error {m:.4f} +- {s:.4f}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
            if method not in best or m < best[method][1]:
                best[method] = (lr, m)
    for method, (lr, m) in best.items():
        print(f"best {method}: lr {lr:g}, mean_error {m:.4f}")
    if "bp" in best and "pc" in best:
        print(f"pc's best is {100 * (1 - best['pc'][1] / best['bp'][1]):.1f} % below bp's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
