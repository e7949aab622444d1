"""What a query infers and what it predicts, against closed forms: a node with no
clamped node below it takes its parents' prediction and takes no part in the
inference above it (the posterior of a linear-Gaussian model without that branch); a
query from the inputs of a DAG is the forward pass; on a cyclic graph a query and
evaluation give the same free prediction, the fixed point of a linear loop."""

import pytest
import torch

import pcgraph
from pcgraph.compile import compile_graph

D = torch.float64

# x ~ N(0.5, 2), y | x ~ N(W x + b, 0.5) observed; z | x ~ N(U x + c, 1) with a prior
# term of its own -- never observed, so it says nothing about x
BRANCH = """\
name: branch
nodes:
  x: {shape: [2], family: gaussian, prior: {type: gaussian, mean: 0.5, variance: 2.0}}
  y: {shape: [3], family: {type: gaussian, variance: 0.5}, role: target, bind: y}
  z: {shape: [3], family: gaussian, prior: standard_normal}
edges:
  - {from: x, to: y}
  - {from: x, to: z}
train: {dtype: float64, inference: {steps: 10, optimizer: {type: sgd, lr: 0.1, momentum: 0.5}}}
"""

W = torch.tensor([[1.0, -0.5], [0.3, 2.0], [-1.2, 0.7]], dtype=D)
B = torch.tensor([0.1, -0.2, 0.3], dtype=D)
U = torch.tensor([[0.4, 1.5], [-0.8, 0.2], [1.1, -0.6]], dtype=D)
C = torch.tensor([0.5, 0.0, -0.4], dtype=D)


def _program(text, seed=0):
    torch.manual_seed(seed)
    return compile_graph(pcgraph.build_graph(pcgraph.loads_spec(text, "q.yaml")), device="cpu")


def _set(prog, edge, w, b=None):
    with torch.no_grad():
        lin = prog.edge_modules[edge]
        lin.weight.copy_(w)
        if b is not None:
            lin.bias.copy_(b)


def _posterior_mean(y, w, b, s2, m0=0.5, v0=2.0):
    """E[x | y] of x ~ N(m0, v0 I), y | x ~ N(w x + b, s2 I)."""
    precision = torch.eye(2, dtype=D) / v0 + w.T @ w / s2
    return torch.linalg.solve(precision, (m0 / v0 + (y - b) @ w / s2).T).T


def test_a_branch_without_evidence_is_predicted_and_leaves_the_posterior_alone():
    prog = _program(BRANCH)
    _set(prog, "e0", W, B)
    _set(prog, "e1", U, C)
    y = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.5, 0.2]], dtype=D)
    r = prog.query({"y": y}, steps=400)
    assert r.predicted == ["z"] and r.steps == 400
    x = _posterior_mean(y, W, B, 0.5)
    torch.testing.assert_close(r.values["x"], x, atol=1e-6, rtol=0)
    torch.testing.assert_close(r.values["z"], x @ U.T + C, atol=1e-6, rtol=0)  # z's prior does not pull it


def test_a_shared_edge_into_a_predicted_node_still_carries_its_weights():
    """z's edge shares y's weights; with z observed and y predicted the inference runs
    on the graph without y's edge, and must keep the tied weights."""
    spec = BRANCH.replace("  - {from: x, to: z}", "  - {from: x, to: z, share: e0}").replace(
        "z: {shape: [3], family: gaussian, prior: standard_normal}", "z: {shape: [3], family: gaussian}"
    )
    prog = _program(spec)
    _set(prog, "e0", W, B)
    z = torch.tensor([[0.3, -1.0, 2.0]], dtype=D)
    r = prog.query({"z": z}, steps=400)
    assert r.predicted == ["y"]
    x = _posterior_mean(z, W, B, 1.0)
    torch.testing.assert_close(r.values["x"], x, atol=1e-6, rtol=0)
    torch.testing.assert_close(r.values["y"], x @ W.T + B, atol=1e-9, rtol=0)


MLP = """\
name: mlp
nodes:
  x: {shape: [4], role: input, bind: x}
  h: {shape: [5], family: gaussian, prior: standard_normal}
  y: {shape: [3], family: categorical, role: target, bind: y}
edges:
  - {from: x, to: h, activation: tanh}
  - {from: h, to: y}
train: {dtype: float64}
"""


def test_a_query_from_the_inputs_of_a_dag_is_the_forward_pass():
    """h has a prior: inferring it with nothing observed below would pull it to zero."""
    prog = _program(MLP)
    x = torch.randn(6, 4, dtype=D)
    r = prog.query({"x": x}, infer=["y"])
    w1, b1 = prog.edge_modules["e0"].weight, prog.edge_modules["e0"].bias
    w2, b2 = prog.edge_modules["e1"].weight, prog.edge_modules["e1"].bias
    h = torch.tanh(x @ w1.T + b1)
    assert r.predicted == ["h", "y"] and r.steps == 0 and r.reverted == 0
    torch.testing.assert_close(r.values["h"], h, atol=1e-12, rtol=0)
    torch.testing.assert_close(r.values["y"], torch.softmax(h @ w2.T + b2, -1), atol=1e-12, rtol=0)


# a linear loop x -> h1 <-> h2 -> y: with only x clamped every energy term can reach
# zero, at h1 = A x + a + K h2, h2 = M h1 + m, y = G h2 + g
CYCLIC = """\
name: loop
nodes:
  x: {shape: [3], role: input, bind: x}
  h1: {shape: [4], family: gaussian}
  h2: {shape: [4], family: gaussian}
  y: {shape: [2], family: gaussian, role: target, bind: y}
edges:
  - {from: x, to: h1}
  - {from: h2, to: h1}
  - {from: h1, to: h2}
  - {from: h2, to: y}
train: {topology: cyclic, dtype: float64, inference: {steps: 5, eval_steps: 300, init: zeros}}
"""


def _fixed_point(prog, x):
    lin = prog.edge_modules
    A, a = lin["e0"].weight, lin["e0"].bias
    K, k = lin["e1"].weight, lin["e1"].bias
    M, m = lin["e2"].weight, lin["e2"].bias
    G, g = lin["e3"].weight, lin["e3"].bias
    # h1 = A x + a + K (M h1 + m) + k
    h1 = torch.linalg.solve(torch.eye(4, dtype=D) - K @ M, (x @ A.T + a + m @ K.T + k).T).T
    return (h1 @ M.T + m) @ G.T + g


def _loop_program():
    prog = _program(CYCLIC, seed=3)
    with torch.no_grad():
        for e in ("e1", "e2"):  # a contracting loop
            prog.edge_modules[e].weight.mul_(0.3)
    return prog


def test_a_cyclic_query_predicts_the_fixed_point_that_evaluation_predicts():
    prog = _loop_program()
    x = torch.randn(5, 3, dtype=D)
    want = _fixed_point(prog, x)
    r = prog.query({"x": x}, infer=["y"])
    assert r.predicted == ["h1", "h2", "y"] and r.steps == 300
    torch.testing.assert_close(r.values["y"], want, atol=1e-5, rtol=0)
    torch.testing.assert_close(prog.predict({"x": x})["y"], r.values["y"], atol=1e-12, rtol=0)


def test_a_cyclic_graphs_test_loss_is_the_targets_nll_under_the_free_prediction():
    prog = _loop_program()
    x, y = torch.randn(5, 3, dtype=D), torch.randn(5, 2, dtype=D)
    terms, mus = prog.evaluate_batch({"x": x, "y": y})
    pred = _fixed_point(prog, x)
    torch.testing.assert_close(mus["y"], pred, atol=1e-5, rtol=0)
    assert set(terms) == {"y"}  # no prior terms; the free nodes are not scored
    torch.testing.assert_close(terms["y"], 0.5 * ((y - mus["y"]) ** 2).sum(-1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("spec", [BRANCH, MLP], ids=["branch", "mlp"])
def test_the_reported_energies_are_the_programs_at_the_final_state(spec):
    """The query's energies are the whole graph's at the state it reports (predicted
    nodes included): the energy formula, independent of the query's bookkeeping."""
    prog = _program(spec)
    clamp = {"y": torch.randn(2, 3, dtype=D)} if spec is BRANCH else {"x": torch.randn(2, 4, dtype=D)}
    r = prog.query(clamp, steps=50)
    energies = prog.node_energies(r.state)
    for n, e in r.energy_after.items():
        torch.testing.assert_close(e, torch.zeros_like(e) if energies[n] is None else energies[n])


def test_a_cyclic_prediction_starts_from_zero_even_where_training_starts_from_a_draw():
    """init: normal is training's start; a prediction is the same on every call, and a
    query's is evaluation's, so both start from zero (the loop's fixed point again)."""
    prog = _program(CYCLIC.replace("init: zeros", "init: normal"), seed=3)
    with torch.no_grad():
        for e in ("e1", "e2"):
            prog.edge_modules[e].weight.mul_(0.3)
    x = torch.randn(4, 3, dtype=D)
    a, b = prog.query({"x": x}).values["y"], prog.query({"x": x}).values["y"]
    assert torch.equal(a, b)
    torch.testing.assert_close(prog.predict({"x": x})["y"], a, atol=1e-12, rtol=0)
    torch.testing.assert_close(a, _fixed_point(prog, x), atol=1e-5, rtol=0)
