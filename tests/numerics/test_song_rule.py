"""pcgraph's PC step with Song et al. (2024)'s rule written out in the spec (values by
SGD 0.1 under ``schedule: sync``, the target clamped, then one SGD weight step at the
relaxed values) gives the weights of the rule written out in plain torch
(benchmarks/song_rule.py), in float64: without the guard, and with it against the
per-sample halving with the better state kept. pcgraph's weight gradient is the batch
mean, so its learning rate lr is the summed loss's lr / B."""

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.numerics.graphs import D, program

path = Path(__file__).resolve().parents[2] / "benchmarks" / "song_rule.py"
_spec = importlib.util.spec_from_file_location("song_rule", path)
song = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(song)

MLP = """
name: song
nodes:
  image: {shape: [6], role: input, bind: image}
  h1: {shape: [5], family: {type: gaussian, output: sigmoid}}
  h2: {shape: [4], family: {type: gaussian, output: sigmoid}}
  label: {shape: [3], family: gaussian, role: target, bind: label}
edges:
  - {from: image, to: h1, transform: {type: linear, bias: false}}
  - {from: h1, to: h2, transform: {type: linear, bias: false}}
  - {from: h2, to: label, transform: {type: linear, bias: false}}
train:
  method: pc
  inference:
    steps: STEPS
    optimizer: {type: sgd, lr: VALUE_LR, guard: GUARD}
    schedule: sync
  weights:
    optimizer: {type: sgd, lr: 0.7}
    gradient: equilibrium
"""

B = 5


def batch(seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 6, generator=gen, dtype=D) * 2.0
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (B,), generator=gen), 3).to(D)
    return {"image": x, "label": y}


def weights(prog):
    return [prog.edge_modules[f"e{i}"].weight.detach().clone() for i in range(3)]


def pcgraph_step(steps, value_lr, guard):
    text = MLP.replace("STEPS", str(steps)).replace("VALUE_LR", str(value_lr)).replace("GUARD", str(guard).lower())
    prog = program(text, seed=3)
    for w in weights(prog):  # the weights are large enough that the values move far
        assert w.abs().max() > 0.1
    before = weights(prog)
    data = batch()
    prog.pc_step(data)
    return before, weights(prog), data


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("steps", [1, 16])
def test_pc_step_is_the_rule_in_plain_torch(steps, reduction):
    before, after, data = pcgraph_step(steps, 0.1, guard=False)
    ws = [w.clone() for w in before]
    lr = 0.7 if reduction == "mean" else 0.7 / B
    song.pc_step(ws, torch.sigmoid, data["image"], data["label"], steps=steps, value_lr=0.1, lr=lr,
                 reduction=reduction)
    moved = [float((ours - w0).abs().max()) for w0, ours in zip(before, after)]
    # a real step: under sync one value step moves only the last hidden layer, so
    # only the last two weights have an error to follow; 16 steps reach them all
    assert min(moved[1:] if steps == 1 else moved) > 1e-4
    for ours, theirs in zip(after, ws):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_the_relaxed_values_depend_on_t():
    """The check above would not notice a PC step that ignored T: the rule's weights
    after 1 and after 16 value steps differ."""
    _, one, _ = pcgraph_step(1, 0.1, guard=False)
    _, many, _ = pcgraph_step(16, 0.1, guard=False)
    assert max((a - b).abs().max() for a, b in zip(one, many)) > 1e-4


def test_the_guard_is_the_per_sample_halving_that_keeps_the_better_state():
    """A value rate of 2.5 overshoots (the energy rises for some samples): pcgraph's
    guard undoes those samples' steps and halves their rate, as the plain rule with
    ``halve='sample'`` does; without halving the result differs."""
    before, after, data = pcgraph_step(12, 2.5, guard=True)
    x0, y = data["image"], data["label"]
    kept = song.relax(before, torch.sigmoid, x0, y, 12, 2.5, "sample")
    plain = song.relax(before, torch.sigmoid, x0, y, 12, 2.5, "none")
    e_kept = song.energies(before, torch.sigmoid, x0, kept, y)
    e_plain = song.energies(before, torch.sigmoid, x0, plain, y)
    assert (e_plain - e_kept).max() > 1e-3  # the halving changed some sample's values
    for halve, close in (("sample", True), ("none", False)):
        ws = [w.clone() for w in before]
        song.pc_step(ws, torch.sigmoid, x0, y, steps=12, value_lr=2.5, lr=0.7, halve=halve)
        same = all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(after, ws))
        assert same == close, halve
