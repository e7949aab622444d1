"""Program.query: clamped nodes keep their values, free nodes reach the posterior that
the closed form of a linear-Gaussian model gives."""

import pytest
import torch

import pcgraph
from pcgraph.compile import compile_graph
from pcgraph.core.errors import DataError, GraphError

D = torch.float64

# x ~ N(m0, v0) (a prior on a latent root), y | x ~ N(W x + b, s2)
LINEAR = """\
name: lin
nodes:
  x: {shape: [2], family: gaussian, prior: {type: gaussian, mean: 0.5, variance: 2.0}}
  y: {shape: [3], family: {type: gaussian, variance: 0.5}, role: target, bind: y}
edges:
  - {from: x, to: y}
train: {dtype: float64, inference: {steps: 10, optimizer: {type: sgd, lr: 0.1, momentum: 0.5}}}
"""

# the same model with x an input: unclamped, it is a free Gaussian node under its prior
INPUT = LINEAR.replace("x: {shape: [2], family: gaussian, prior:", "x: {shape: [2], role: input, bind: x, prior:")

W = torch.tensor([[1.0, -0.5], [0.3, 2.0], [-1.2, 0.7]], dtype=D)
B = torch.tensor([0.1, -0.2, 0.3], dtype=D)
M0, V0, S2 = 0.5, 2.0, 0.5


def _program(text):
    prog = compile_graph(pcgraph.build_graph(pcgraph.loads_spec(text, "lin.yaml")), device="cpu")
    with torch.no_grad():
        lin = prog.edge_modules["e0"]
        lin.weight.copy_(W)
        lin.bias.copy_(B)
    return prog


def _posterior_mean(y, rows=slice(None), m0=M0, v0=V0):
    """E[x | y] of the linear-Gaussian model (using the observed rows of W)."""
    w, b = W[rows], B[rows]
    precision = torch.eye(2, dtype=D) / v0 + w.T @ w / S2
    rhs = m0 / v0 + (y[..., rows] - b) @ w / S2
    return torch.linalg.solve(precision, rhs.T).T


@pytest.mark.parametrize("spec", [LINEAR, INPUT], ids=["latent-root", "free-input"])
def test_inferred_mean_is_the_closed_form_posterior(spec):
    prog = _program(spec)
    y = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.5, 0.2]], dtype=D)
    r = prog.query({"y": y}, steps=400)
    assert r.inferred == ["x"]
    torch.testing.assert_close(r.values["x"], _posterior_mean(y), atol=1e-6, rtol=0)
    torch.testing.assert_close(r.values["y"], y)  # a clamped node keeps its value
    assert float(r.energy_after["y"].sum() + r.energy_after["x"].sum()) < float(
        r.energy_before["y"].sum() + r.energy_before["x"].sum()
    )


def test_an_unclamped_input_without_prior_is_standard_normal():
    spec = INPUT.replace(", prior: {type: gaussian, mean: 0.5, variance: 2.0}}", "}")
    assert "prior" not in spec.split("y:")[0]
    prog = _program(spec)
    y = torch.tensor([[1.0, 2.0, -1.0]], dtype=D)
    r = prog.query({"y": y}, steps=400)
    torch.testing.assert_close(r.values["x"], _posterior_mean(y, m0=0.0, v0=1.0), atol=1e-6, rtol=0)


def test_partly_clamped_node_holds_its_observed_units_and_predicts_the_rest():
    prog = _program(LINEAR)
    y = torch.tensor([[1.0, 2.0, -1.0]], dtype=D)
    mask = torch.tensor([True, True, False])
    r = prog.query({"y": y}, masks={"y": mask}, steps=400)
    x = _posterior_mean(y, rows=mask)  # the unobserved unit carries no information
    torch.testing.assert_close(r.values["x"], x, atol=1e-6, rtol=0)
    assert torch.equal(r.values["y"][:, mask], y[:, mask])
    torch.testing.assert_close(r.values["y"][:, ~mask], (x @ W.T + B)[:, ~mask], atol=1e-6, rtol=0)


def test_clamping_a_root_to_its_prior_draws_samples_and_the_child_follows():
    prog = _program(LINEAR)
    torch.manual_seed(0)
    r = prog.query({"x": "prior"}, batch=4000, steps=0)
    x = r.values["x"]
    assert abs(x.mean().item() - M0) < 0.1 and abs(x.var().item() - V0) < 0.2
    torch.testing.assert_close(r.values["y"], x @ W.T + B)


def test_clamping_an_input_without_prior_to_prior_draws_standard_normal_samples():
    prog = _program(INPUT.replace(", prior: {type: gaussian, mean: 0.5, variance: 2.0}}", "}"))
    torch.manual_seed(0)
    x = prog.query({"x": "prior"}, batch=4000, steps=0).values["x"]
    assert abs(x.mean().item()) < 0.05 and abs(x.var().item() - 1.0) < 0.1


def test_categorical_clamp_takes_class_indices_and_broadcasts_one_value():
    spec = """\
name: gen
nodes:
  label: {shape: [3], role: input, bind: label}
  image: {shape: [4], family: gaussian, role: target, bind: image}
edges:
  - {from: label, to: image}
train: {dtype: float64}
"""
    prog = _program_plain(spec)
    r = prog.query({"label": 2}, batch=3, steps=0)
    w, b = prog.edge_modules["e0"].weight, prog.edge_modules["e0"].bias
    torch.testing.assert_close(r.values["image"], (w[:, 2] + b).expand(3, 4))


def _program_plain(text):
    return compile_graph(pcgraph.build_graph(pcgraph.loads_spec(text, "g.yaml")), device="cpu")


def test_errors_name_the_node():
    prog = _program(LINEAR)
    with pytest.raises(DataError, match="no node 'yy'"):
        prog.query({"yy": 1.0})
    with pytest.raises(DataError, match="node 'y' has shape"):
        prog.query({"y": torch.zeros(2, 5, dtype=D)}, batch=2)
    with pytest.raises(DataError, match="both clamped and to be inferred"):
        prog.query({"y": torch.zeros(1, 3, dtype=D)}, infer=["y"])


def test_token_inputs_cannot_be_left_free():
    spec = """\
name: lm
nodes:
  tokens: {shape: [4], role: input, bind: tokens, dtype: long}
  x: {shape: [4, 3], family: gaussian}
edges:
  - {from: tokens, to: x, transform: {type: embedding, vocab: 5}}
"""
    prog = _program_plain(spec)
    with pytest.raises(DataError, match="integer tokens, which cannot be inferred"):
        prog.query({"x": torch.zeros(1, 4, 3)})


def test_an_input_family_cannot_learn_parameters():
    spec = INPUT.replace("role: input, bind: x,", "role: input, bind: x, family: {type: gaussian, variance: learned},")
    with pytest.raises(GraphError, match="cannot learn parameters"):
        pcgraph.build_graph(pcgraph.loads_spec(spec, "lin.yaml"))


def test_an_example_whose_energy_inference_raises_keeps_its_start():
    prog = _program(LINEAR)
    y = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.5, 0.2]], dtype=D)
    r = prog.query({"y": y}, steps=30, lr=5.0)  # far beyond 2 / (largest curvature of E in x)
    assert r.reverted == 2
    torch.testing.assert_close(r.values["x"], torch.full((2, 2), M0, dtype=D))  # the root's start: its prior mean
    r = prog.query({"y": y}, steps=30, lr=0.05)
    assert r.reverted == 0


def test_an_example_whose_energy_did_not_rise_is_not_put_back():
    """No inference step leaves every energy exactly where it was: nothing rose, so no
    example is put back (a rise is more than the guard's rounding tolerance)."""
    prog = _program(LINEAR)
    y = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.5, 0.2]], dtype=D)
    r = prog.query({"y": y}, steps=0)
    assert r.reverted == 0
    for n in r.energy_before:
        torch.testing.assert_close(r.energy_after[n], r.energy_before[n], rtol=0, atol=0)
