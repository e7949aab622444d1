"""Weight gradients at the error's first arrival (Z-IL) in float64: equal to backprop's
on Gaussian DAGs, equal to first order on every family, and local."""

import pytest
import torch

from pcgraph.compile.engine import engine_for

from tests.numerics.graphs import DAG, M3, MIXED, TRANSFORMER, VAE, batch_for, program


def grads(prog):
    return [None if p.grad is None else p.grad.clone() for p in prog.parameters()]


def bp_grads(prog, batch, noise):
    prog.zero_grad()
    prog.loss_bp(batch, noise=noise).backward()
    return grads(prog)


@pytest.mark.parametrize("variance", [1.0, 0.3, 5.0])
def test_arrival_gradients_equal_backprop_on_a_gaussian_dag(variance):
    """Two inputs, a multi-input edge, a skip, two targets: Song et al. (2020) show
    equality on chains; holding predictions at their forward values extends it to DAGs."""
    prog = program(DAG.replace("TARGET", f"{{type: gaussian, variance: {variance}}}"))
    batch = batch_for(prog, B=5)
    state = prog.init_state(batch)
    prog.arrival_grads(state)
    pc = grads(prog)
    for a, b in zip(pc, bp_grads(prog, batch, state.noise)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "text,energy",
    [(M3, "kl"), (VAE, "kl"), (TRANSFORMER, "kl"), (MIXED, "kl"), (M3, "gaussian"), (TRANSFORMER, "gaussian")],
    ids=["m3", "vae", "transformer", "mixed", "m3-F", "transformer-F"],
)
def test_arrival_gradients_equal_backprop_on_every_family(text, energy):
    """Categorical, mean/variance and bernoulli nodes link state and error nonlinearly;
    the arrival error linearises that link over the step, and the gradients equal BP's
    (the same noise draw for the mean/variance node's sample); under either energy."""
    prog = program(text, energy=energy)
    batch = batch_for(prog, B=3)
    state = prog.init_state(batch)
    prog.arrival_grads(state)
    pc = grads(prog)
    bp = bp_grads(prog, batch, state.noise)
    scale = max(b.abs().max().item() for b in bp if b is not None)
    for a, b in zip(pc, bp):
        if b is not None:  # None: a hidden node's learned variance, not in the BP loss
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12 * scale)


def test_a_pc_step_at_arrival_is_a_bp_step():
    """One training step each from the same weights and noise: the same new weights."""
    pc = program(
        M3,
        overrides=[
            "train.weights.gradient=arrival", "train.weights.optimizer={type: sgd, lr: 0.5}", "train.weights.updates=1"
        ],
    )
    bp = program(M3, overrides=["train.weights.optimizer={type: sgd, lr: 0.5}"])
    bp.load_state_dict(pc.state_dict())
    batch = batch_for(pc, B=4)
    pc.pc_step(batch)
    bp.bp_step(batch)
    for a, b in zip(pc.parameters(), bp.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


SKIP_SHARED = """
name: skip
nodes:
  x:  {shape: [4], role: input, bind: x}
  h1: {shape: [5], family: gaussian}
  h2: {shape: [5], family: gaussian}
  y:  {shape: [3], family: {type: gaussian, variance: 0.5}, role: target, bind: y}
edges:
  - {from: x, to: h1, activation: tanh}
  - {from: h1, to: h2, activation: tanh}
  - {from: h2, to: y}
  - {from: h1, to: y}
  - {from: x, to: y}
"""


@pytest.mark.parametrize("gradient", ["arrival", "equilibrium"])
def test_weight_gradients_are_local(gradient, monkeypatch):
    """A skip (h1 -> y, x -> y) and a shared target (y): every linear edge's gradient is
    its target's error times its own source's value, and no backward pass through the
    BP loss takes part."""
    prog = program(SKIP_SHARED, overrides=[f"train.weights.gradient={gradient}"])
    batch = batch_for(prog, B=6)

    def forbidden(*a, **k):
        raise AssertionError("a PC step used the BP loss")

    monkeypatch.setattr(type(prog), "loss_terms", forbidden)
    monkeypatch.setattr(type(prog), "loss_bp", forbidden)
    state = prog.init_state(batch)
    if gradient == "arrival":
        from pcgraph.compile.arrival import arrival_errors

        eng = engine_for(prog, state)
        errors, _ = arrival_errors(eng)
        prog.arrival_grads(state)
        seen = {n: eng.vis[n] for n in ("x", "h1", "h2")}
    else:
        prog.infer(state, steps=30)
        prog.weight_grads(state)
        eng = engine_for(prog, state)
        errors = eng.errors(prog.energy_nodes)
        seen = {n: eng.vis[n] for n in ("x", "h1", "h2")}
    B = state.batch_size
    for e in prog.edges:
        mod = prog.edge_modules[e.name]
        delta = errors[e.target]  # dE/dmu of the target
        if e.activation == "tanh":
            delta = delta * (1 - eng.out[e.name] ** 2)
        (src,) = e.sources
        torch.testing.assert_close(mod.weight.grad, delta.T @ seen[src] / B)
        torch.testing.assert_close(mod.bias.grad, delta.sum(0) / B)


def test_arrival_step_leaves_the_state_at_its_forward_value_and_needs_one():
    prog = program(M3)
    batch = batch_for(prog)
    state = prog.init_state(batch)
    before = {n: state[n].clone() for n in state}
    prog.arrival_grads(state)
    assert all(torch.equal(state[n], before[n]) for n in state)
    prog.infer(state, steps=1)
    with pytest.raises(Exception, match="forward"):
        prog.arrival_grads(state)
