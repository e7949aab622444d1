"""Every fast path against the plain reference in float64, on graphs that together
use every registered family and transform (checked against the registries, so new
code is covered or this fails): per-node energies, one state step (the state
gradients), weight gradients at equilibrium and at arrival, and the energies a PC
step reports. Non-unit Gaussian variances, priors on free nodes and both energies
are included: a wrong factor that cancels at variance 1 must show here."""

import pytest
import torch

from pcgraph.families import families
from pcgraph.transforms import transforms
from tests.numerics.graphs import DAG, M3, MIXED, TRANSFORMER, VAE, batch_for, program

# the registered transforms the shared graphs leave out, a prior on a free Gaussian
# node with a non-unit variance, and plain-gradient categorical and bernoulli states
EXTRA = """
name: extra
nodes:
  img:  {shape: [2, 4, 4], role: input, bind: img}
  gate: {shape: [8], role: input, bind: gate}
  m:    {shape: [2, 2, 2], family: {type: gaussian, variance: 0.5}}
  v:    {shape: [8], family: {type: gaussian, variance: 2.5}, prior: {type: gaussian, mean: 0.2, variance: 0.7}}
  w:    {shape: [8], family: {type: gaussian, variance: 0.3}}
  c:    {shape: [4], family: {type: categorical, update: gradient}}
  b:    {shape: [5], family: {type: bernoulli, update: gradient}}
  y:    {shape: [3], family: {type: gaussian, variance: 0.2}, role: target, bind: y}
edges:
  - {from: img, to: m, transform: {type: maxpool2d, kernel: 2}}
  - {from: m, to: v, transform: flatten, activation: tanh}
  - {from: [v, gate], to: w, transform: elementwise_mul}
  - {from: w, to: c,
     transform: {type: block, residual: false, steps: [layernorm, {type: mlp, hidden: [5], residual: false}]}}
  - {from: w, to: b, transform: {type: block, steps: [{type: linear, width: 6, then: tanh}, linear]}}
  - {from: [c, b], to: y}
"""

GRAPHS = {
    "dag": DAG.replace("TARGET", "{type: gaussian, variance: 0.4}"), "m3": M3, "vae": VAE, "transformer": TRANSFORMER,
    "mixed": MIXED, "extra": EXTRA
}


def _used(text):
    prog = program(text)
    fams = {prog.nodes[n].family for n in prog.families}
    kinds = set()
    for e in prog.edges:
        kinds.add(e.transform)
        for st in getattr(e.options, "steps", []) or []:
            kinds.add(st.type)
    return fams, kinds


def test_the_graphs_use_every_registered_family_and_transform():
    fams, kinds = set(), set()
    for text in GRAPHS.values():
        f, k = _used(text)
        fams |= f
        kinds |= k
    assert set(families.names()) <= fams, set(families.names()) - fams
    assert set(transforms.names()) <= kinds, set(transforms.names()) - kinds


def _energy_f(text):
    """The graph under standard PC (F): meanvar nodes become Gaussians."""
    return text.replace(
        "gaussian_meanvar, prior: {type: gaussian, mean: 0.5, variance: 2.0}", "gaussian, prior: standard_normal"
    ).replace("family: gaussian_meanvar, prior: standard_normal", "family: gaussian, prior: standard_normal")


def _case(name, energy):
    text = GRAPHS[name] if energy == "kl" else _energy_f(GRAPHS[name])
    if energy == "gaussian" and "gaussian_meanvar" in text:
        pytest.skip("gaussian_meanvar has no F form")
    prog = program(text, energy=energy, seed=1)
    with torch.no_grad():  # weights away from their initialisation (zero biases, unit layernorm)
        for p in prog.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return prog, batch_for(prog, B=3, seed=2)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("energy", ["kl", "gaussian"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_fast_energies_state_step_and_weight_gradients_equal_reference(name, energy):
    prog, batch = _case(name, energy)
    torch.manual_seed(4)
    a = prog.init_state(batch, init="normal")
    b = a.clone()
    # per-node energies at an arbitrary state: the engine's (closed forms, cached
    # predictions) against the energies computed from scratch
    e_fast = prog.weight_grads(a, fast=True)
    g_fast = [p.grad.clone() for p in prog.parameters()]
    e_ref = prog.weight_grads(b, fast=False)
    assert set(e_fast) == set(e_ref) == set(prog.energy_nodes)
    for n in e_ref:
        _close(e_fast[n], e_ref[n])
    for g, p in zip(g_fast, prog.parameters()):
        _close(g, p.grad)
    assert any(g.abs().sum() > 0 for g in g_fast)
    # one plain state step of lr 1 moves each free state by its full gradient
    for sched in ("sync", "sweep"):
        a2, b2 = a.clone(), b.clone()
        prog.infer(a2, steps=1, optimizer={"type": "sgd", "lr": 1.0}, schedule=sched, fast=True)
        prog.infer(b2, steps=1, optimizer={"type": "sgd", "lr": 1.0}, schedule=sched, fast=False)
        moved = False
        for n in a2:
            _close(a2[n], b2[n])
            moved |= not torch.equal(a2[n], a[n])
        assert moved


@pytest.mark.parametrize("name", list(GRAPHS))
def test_energies_reported_after_forward_init_and_inference_equal_reference(name):
    prog, batch = _case(name, "kl")
    torch.manual_seed(4)
    s = prog.init_state(batch)
    prog.infer(s, steps=3, optimizer={"type": "sgd", "lr": 0.1, "precondition": True}, schedule="sync")
    eng = s.engine
    fast = eng.energies()
    ref = prog.node_energies(s)
    for n in ref:
        _close(fast[n], ref[n])
    _close(eng.total_energy(), torch.stack(list(ref.values())).sum(0))


@pytest.mark.parametrize("gradient", ["arrival", "equilibrium"])
@pytest.mark.parametrize("name", ["dag", "vae", "extra"])
def test_pc_step_reports_the_energies_at_its_state(name, gradient):
    prog, batch = _case(name, "kl")
    other = program(GRAPHS[name], seed=1, overrides=[f"train.weights.gradient={gradient}", "train.inference.steps=2"])
    other.load_state_dict(prog.state_dict())
    torch.manual_seed(6)
    state = other.init_state(batch, loss_weight=other.loss_weight())
    if gradient == "equilibrium":
        other.infer(state)
    expected = other.node_energies(state)  # the energy as written, whatever the E-step's weight
    torch.manual_seed(6)
    terms = other.pc_step(batch)
    for n in expected:
        _close(terms[n], expected[n])
