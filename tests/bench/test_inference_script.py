"""benchmarks/inference.py and benchmarks/gpu.sh without a GPU: the hand-written loop
the small net is timed against does pcgraph's default inference (checked in float64
against pcgraph's plain autograd path), and the GPU script parses and names files
that exist."""

import importlib.util
import re
import subprocess
from pathlib import Path

import torch

from pcgraph.compile import compile_graph
from pcgraph.graph import build_graph
from pcgraph.spec import load_spec
from pcgraph.train.bench import random_batch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load():
    spec = importlib.util.spec_from_file_location("bench_inference", BENCH / "inference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_plain_loop_is_the_default_inference_of_the_small_net():
    inference = _load()
    spec = load_spec(BENCH / "bench-small.yaml", ["train.dtype=float64"])
    opt = spec.train.inference.optimizer
    assert (spec.train.inference.schedule, opt.lr, opt.precondition, opt.guard) == ("carry", 1.0, True, True)
    torch.manual_seed(3)
    prog = compile_graph(build_graph(spec), energy=spec.train.energy)
    with torch.no_grad():  # weights large enough that the steps move the states visibly
        for p in prog.parameters():
            p.mul_(3.0)
    data = random_batch(prog, 5, seed=4)
    data = {k: v.double() for k, v in data.items()}
    beta = float(spec.train.weights.nudge)
    ws = [prog.transforms[e.name].weight.detach() for e in prog.edges]
    for T in (1, 7):
        state = prog.init_state(data, loss_weight=beta)
        start = {n: state[n].clone() for n in ("h1", "h2")}
        prog.infer(state, steps=T, fast=False)  # the plain autograd path
        with torch.no_grad():
            h1, h2 = inference.plain_loop(ws, data["image"], data["label"], T, beta)
        for n, mine in (("h1", h1), ("h2", h2)):
            assert not torch.equal(state[n], start[n])
            torch.testing.assert_close(mine, state[n], rtol=1e-10, atol=1e-12)


def test_the_gpu_script_parses_and_names_files_that_exist():
    script = BENCH / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    named = set(re.findall(r"(?:benchmarks|specs)/[\w./-]+\.(?:yaml|py)", text))
    assert "benchmarks/inference.py" in named and "benchmarks/bench-mlp-default-inference.yaml" in named
    for path in named:
        assert (BENCH.parent / path).exists(), path
    assert "--dry-run" in text


def _multiply_adds(fn) -> int:
    """Multiply-adds of every matrix product ``fn`` runs (mm, addmm, addmm_, their out= forms)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    total = [0]
    aten = torch.ops.aten
    products = {aten.mm.default, aten.mm.out, aten.addmm.default, aten.addmm.out, aten.addmm_.default}

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in products:
                a, b = (args[-2], args[-1]) if func in (aten.mm.default, aten.mm.out) else (args[1], args[2])
                total[0] += a.shape[0] * a.shape[1] * b.shape[1]
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return total[0]


def _counted_by_hand(dims, B: int, T: int | None) -> int:
    """Multiply-adds of one step of the MLP ``dims`` (edge k: dims[k] -> dims[k + 1]) at
    batch ``B``. BP: forward, weight gradients, input gradients below the first layer.
    Synchronous PC (``T`` steps): the forward initialisation; at step t the error front
    has reached the nodes k >= L - t, each of which takes a pullback through its out-edge
    and, once moved, recomputes that edge's prediction; the weight gradients."""
    L = len(dims) - 1
    mac = [dims[k] * dims[k + 1] for k in range(L)]
    if T is None:
        return B * (2 * sum(mac) + sum(mac[1:]))
    steps = sum(2 * sum(mac[k] for k in range(max(1, L - t), L)) for t in range(1, T + 1))
    return B * (2 * sum(mac) + steps)


def test_the_floors_run_the_products_of_the_steps_they_bound():
    """products_only (the arithmetic floor in docs/performance.md) runs as many
    multiply-adds as BP's step and as the synchronous PC step, counted at dispatch,
    and both as many as counted by hand."""
    inference = _load()
    spec = load_spec(
        BENCH / "bench-mlp.yaml",
        ["train.weights.gradient=equilibrium", "train.inference.schedule=sync", "data.batch_size=8"],
    )
    torch.manual_seed(0)
    prog = compile_graph(build_graph(spec), energy=spec.train.energy)
    batch = random_batch(prog, 8)
    mods = [prog.transforms[e.name] for e in prog.edges]
    ws, bs = [m.weight.detach() for m in mods], [m.bias.detach() for m in mods]
    T = spec.train.inference.steps
    floors = {"pc": inference.products_only(ws, bs, 8, T), "bp": inference.products_only(ws, bs, 8, None)}
    dims = [784, 512, 512, 512, 10]
    assert [tuple(w.shape) for w in ws] == [(dims[k + 1], dims[k]) for k in range(4)]
    for method, floor in floors.items():
        step = prog.step_fn(method)
        by_hand = _counted_by_hand(dims, 8, T if method == "pc" else None)
        assert _multiply_adds(lambda: step(batch)) == _multiply_adds(floor) == by_hand, method
    # per sample: BP 2,391,040, PC 8,759,296 (T = 8): 3.66 x
    assert (_counted_by_hand(dims, 1, None), _counted_by_hand(dims, 1, 8)) == (2_391_040, 8_759_296)


def test_every_gpu_case_names_the_gradient_its_name_says():
    """A case named for a gradient sets it (or runs a spec that pins it): defaults change."""
    text = (BENCH / "gpu.sh").read_text()
    assigned = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))

    def expand(words: str) -> str:
        for _ in range(3):  # SYNC holds $EQ
            words = re.sub(r"\$(\w+)", lambda m: assigned.get(m[1], ""), words)
        return words

    cases = re.findall(r"^run (\S+) \d+ \d+ (.*)$", text, re.M)
    assert len(cases) >= 8
    for name, args in cases:
        words = expand(args)
        spec_text = (BENCH.parent / words.split()[0]).read_text()
        named = set(re.findall(r"train\.weights\.gradient=(\w+)", words))
        named |= {g for g in ("arrival", "equilibrium") if not named and f"gradient: {g}" in spec_text}
        for g in ("arrival", "equilibrium"):
            if g in name:
                assert named == {g}, (name, words)
