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
