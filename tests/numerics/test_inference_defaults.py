"""The default inference in float64: a preconditioned step (each node moves by the
inverse curvature of its own terms), the guard that keeps every sample's energy from
rising, the reverse-topological sweep and the carry schedule, and fast path == plain
autograd for all of them."""

import pytest
import torch

from pcgraph.compile.guard import Guard
from pcgraph.families.gaussian import Gaussian, GaussianOptions
from pcgraph.families.gaussian_meanvar import GaussianMeanVar
from pcgraph.spec.models import DEFAULT_NUDGE, GaussianPrior, StandardNormalPrior, TrainSpec
from tests.numerics.graphs import DAG, M3, MIXED, TRANSFORMER, VAE, D, batch_for, program

GRAPHS = [DAG.replace("TARGET", "{type: gaussian, variance: 0.05}"), M3, VAE, MIXED, TRANSFORMER]
IDS = ["dag", "m3", "vae", "mixed", "transformer"]


def own_terms(fam, x, mu, prior):
    e = fam.energy(x, fam.mean(x, False), mu, {}, False) if mu is not None else 0.0
    if prior is not None:
        e = e + fam.prior_energy(x, fam.mean(x, False), prior, {})
    return e.sum()


def hessian_diagonal(fam, x, mu, prior):
    """The diagonal of d^2 (own terms) / dx^2 by autograd, one sample at a time."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(own_terms(fam, x, mu, prior), x, create_graph=True)
    diag = torch.zeros_like(x)
    flat = g.reshape(-1)
    for i in range(flat.numel()):
        (h,) = torch.autograd.grad(flat[i], x, retain_graph=True)
        diag.view(-1)[i] = h.view(-1)[i]
    return diag


PRIORS = [None, StandardNormalPrior(), GaussianPrior(mean=0.5, variance=2.0)]


@pytest.mark.parametrize("prior", PRIORS, ids=["no-prior", "standard", "gaussian"])
@pytest.mark.parametrize("variance", [1.0, 0.05, 4.0])
def test_gaussian_step_scale_is_the_inverse_hessian(prior, variance):
    fam = Gaussian(GaussianOptions(variance=variance), (5,), dtype=D)
    torch.manual_seed(0)
    x, mu = torch.randn(3, 5, dtype=D), torch.randn(3, 5, dtype=D)
    h = hessian_diagonal(fam, x, mu, prior)
    torch.testing.assert_close(torch.as_tensor(fam.step_scale(x, mu, {}, prior), dtype=D).expand_as(h), 1.0 / h)


def test_gaussian_preconditioned_step_lands_on_the_posterior_mean():
    """Own terms 1/2 (x - mu)^2 / s2 + 1/2 (x - m)^2 / v are quadratic: one step of the
    inverse curvature reaches their minimum (mu / s2 + m / v) / (1 / s2 + 1 / v)."""
    s2, m, v = 0.3, 0.5, 2.0
    fam = Gaussian(GaussianOptions(variance=s2), (4,), dtype=D)
    prior = GaussianPrior(mean=m, variance=v)
    torch.manual_seed(1)
    x, mu = torch.randn(2, 4, dtype=D), torch.randn(2, 4, dtype=D)
    step = fam.step_scale(x, mu, {}, prior) * fam.grad_state(x, mu, {}, None, None, prior)
    torch.testing.assert_close(x - step, (mu / s2 + m / v) / (1 / s2 + 1 / v))


@pytest.mark.parametrize("prior", PRIORS, ids=["no-prior", "standard", "gaussian"])
@pytest.mark.parametrize("with_mu", [True, False])
def test_meanvar_step_scale_is_the_inverse_hessian(prior, with_mu):
    if prior is None and not with_mu:
        pytest.skip("no own terms")
    fam = GaussianMeanVar(GaussianMeanVar.Options(), (3,), dtype=D)
    torch.manual_seed(2)
    x = torch.randn(2, 6, dtype=D)
    mu = torch.randn(2, 6, dtype=D) if with_mu else None
    h = hessian_diagonal(fam, x, mu, prior)
    torch.testing.assert_close(fam.step_scale(x, mu, {}, prior), 1.0 / h)


def test_the_guard_undoes_a_step_that_raised_a_samples_energy_and_halves_its_step():
    """Per sample: kept if its energy did not rise, else back to the step's start and
    alpha halved; a non-finite energy counts as a rise; alpha then scales the steps."""
    state = {"h": torch.zeros(4, 2, dtype=D)}
    energy = iter([torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=D), torch.tensor([0.5, 1.5, float("nan"), 1.0], dtype=D)])
    guard = Guard()
    guard.start(state, ["h"], lambda: next(energy))
    state["h"] += torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=D)
    guard.judge(state, lambda: next(energy), lambda n: None)
    assert state["h"][:, 0].tolist() == [1.0, 0.0, 0.0, 4.0]
    assert guard.alpha.tolist() == [1.0, 0.5, 0.5, 1.0]
    assert guard.before.tolist() == [0.5, 1.0, 1.0, 1.0]
    guard.start(state, ["h"], None)
    state["h"] += 2.0
    guard.scale(state, ["h"], lambda n: None)
    assert state["h"][:, 0].tolist() == [3.0, 1.0, 1.0, 6.0]


CHAIN = """
name: chain
nodes:
  x: {shape: [1], role: input, bind: x}
  h: {shape: [1], family: gaussian}
  y: {shape: [1], family: gaussian, role: target, bind: y}
edges:
  - {from: x, to: h, transform: {type: linear, bias: false}}
  - {from: h, to: y, transform: {type: linear, bias: false}}
"""


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_the_guard_takes_half_the_step_after_an_overshoot(fast):
    """E(h) = 1/2 (h - a x)^2 + 1/2 (y - b h)^2 has curvature c = 1 + b^2: a plain step
    of lr = 3/c overshoots (the energy's h-part grows fourfold), so the guard undoes it;
    the next step, half as long, lands halfway past the minimum (a quarter of the
    energy), which the guard keeps."""
    prog = program(CHAIN)
    a, b = 0.7, 1.5
    with torch.no_grad():
        prog.edge_modules["e0"].weight.fill_(a)
        prog.edge_modules["e1"].weight.fill_(b)
    x, y = torch.tensor([[1.0], [-2.0]], dtype=D), torch.tensor([[3.0], [0.5]], dtype=D)
    state = prog.init_state({"x": x, "y": y})
    h0 = state["h"].clone()
    c = 1 + b * b
    opt = {"type": "sgd", "lr": 3 / c, "guard": True}
    prog.infer(state, steps=1, optimizer=opt, schedule="sync", fast=fast)
    torch.testing.assert_close(state["h"], h0)
    prog.infer(state, steps=2, optimizer=opt, schedule="sync", fast=fast)  # a new call: alpha starts at 1
    g = (h0 - a * x) - b * (y - b * h0)
    torch.testing.assert_close(state["h"], h0 - 1.5 * g / c)


def test_the_default_is_a_guarded_preconditioned_carry_with_a_small_nudge_and_a_named_optimizer_is_kept():
    cfg = TrainSpec()
    opt = cfg.inference.optimizer
    assert (opt.type, opt.lr, opt.precondition, opt.guard) == ("sgd", 1.0, True, True)
    assert (cfg.inference.schedule, cfg.weights.nudge, cfg.weights.gradient) == ("carry", DEFAULT_NUDGE, "equilibrium")
    cyclic = TrainSpec.model_validate({"topology": "cyclic", "inference": {"init": "zeros"}})
    assert (cyclic.inference.schedule, cyclic.weights.nudge) == ("sweep", 1.0)  # no forward pass: no small nudge
    zeros = TrainSpec.model_validate({"inference": {"init": "zeros"}})
    assert (zeros.inference.schedule, zeros.weights.nudge) == ("sweep", 1.0)
    named = TrainSpec.model_validate({"inference": {"optimizer": {"type": "sgd", "lr": 0.1}}})
    opt = named.inference.optimizer
    assert (opt.precondition, opt.guard, named.inference.schedule, named.weights.nudge) == (False, False, "sweep", 1.0)
    chosen = TrainSpec.model_validate({"inference": {"schedule": "sync"}, "weights": {"nudge": 0.5}})
    assert (chosen.inference.schedule, chosen.weights.nudge) == ("sync", 0.5)


@pytest.mark.parametrize("text", GRAPHS, ids=IDS)
@pytest.mark.parametrize("schedule", ["sync", "sweep", "carry"])
def test_default_inference_never_raises_any_samples_energy(text, schedule):
    prog = program(text)
    batch = batch_for(prog, B=6)
    start = prog.init_state(batch)
    clamped = {n: start[n].clone() for n in start.clamped}
    energies = []
    for steps in range(13):  # inference is deterministic: T steps are the first T of 12
        state = start.clone()
        prog.infer(state, steps=steps, schedule=schedule)
        energies.append(torch.stack(list(prog.node_energies(state).values())).sum(0))
    e = torch.stack(energies)
    assert (e[1:] <= e[:-1] + 1e-12 * (1 + e[:-1].abs())).all(), e
    assert (e[-1] < e[0]).all()
    for n, v in clamped.items():
        assert torch.equal(state[n], v)


def test_the_guard_shortens_steps_that_would_raise_the_energy():
    """A decoder with a sharp output (variance 0.05): a full preconditioned step of the
    hidden node overshoots, so without the guard the energy rises."""
    prog = program(
        VAE.replace(
            "recon: {shape: [12], family: gaussian,", "recon: {shape: [12], family: {type: gaussian, variance: 0.002},"
        )
    )
    batch = batch_for(prog, B=6)
    free = prog.init_state(batch)
    e0 = prog.energy(free).item()
    prog.infer(free, steps=1, optimizer={"type": "sgd", "lr": 1.0, "precondition": True}, schedule="sweep")
    assert prog.energy(free).item() > e0  # the unguarded step overshoots
    start = prog.init_state(batch, noise=free.noise)
    energies = []
    for steps in range(1, 6):  # the first T steps of one call: the step halves until it lowers the energy
        guarded = start.clone()
        opt = {"type": "sgd", "lr": 1.0, "precondition": True, "guard": True}
        prog.infer(guarded, steps=steps, optimizer=opt, schedule="sweep")
        energies.append(prog.energy(guarded).item())
    assert max(energies) <= e0 and energies[-1] < e0


DEFAULT_OPTS = [
    None, {"type": "sgd", "lr": 0.01, "precondition": True}, {"type": "sgd", "lr": 0.3, "guard": True, "momentum": 0.5}
]


@pytest.mark.parametrize("text", GRAPHS, ids=IDS)
@pytest.mark.parametrize("schedule", ["sync", "sweep", "carry"])
@pytest.mark.parametrize("opt", DEFAULT_OPTS, ids=["default", "precondition", "guard"])
@pytest.mark.parametrize("beta", [1.0, 0.01])
def test_fast_inference_equals_plain_autograd_with_preconditioning_and_guard(text, schedule, opt, beta):
    prog = program(text)
    batch = batch_for(prog)
    a = prog.init_state(batch, loss_weight=beta)
    b = a.clone()
    prog.infer(a, steps=5, optimizer=opt, schedule=schedule, fast=True)
    prog.infer(b, steps=5, optimizer=opt, schedule=schedule, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-9, atol=1e-10)
    prog.weight_grads(a, fast=True)
    fast = [p.grad.clone() for p in prog.parameters()]
    prog.weight_grads(b, fast=False)
    for g, p in zip(fast, prog.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-9, atol=1e-10)


def test_one_sweep_carries_the_error_to_every_node():
    """Reverse-topological order: after one step every free node of the chain has moved."""
    prog = program(M3)
    state = prog.init_state(batch_for(prog))
    start = {n: state[n].clone() for n in state.free}
    prog.infer(state, steps=1, schedule="sweep")
    assert all(not torch.equal(state[n], start[n]) for n in start)
    sync = prog.init_state(batch_for(prog))
    prog.infer(sync, steps=1, schedule="sync")
    assert torch.equal(sync["h1"], start["h1"])  # sync: the error is two hops away still


def test_a_null_override_removes_the_named_optimizer_so_the_defaults_apply(tmp_path):
    from pcgraph.spec import load_spec

    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndata: {dataset: digits, batch_size: 8}\nnodes:\n"
        "  x: {shape: [64], role: input, bind: image}\n"
        "  y: {shape: [10], family: categorical, role: target, bind: label}\n"
        "edges:\n  - {from: x, to: y}\n"
        "train: {inference: {steps: 4, optimizer: {type: sgd, lr: 0.1}}}\n"
    )
    named = load_spec(path).train
    assert (named.inference.schedule, named.weights.nudge, named.inference.optimizer.lr) == ("sweep", 1.0, 0.1)
    freed = load_spec(path, ["train.inference.optimizer=null"]).train
    opt = freed.inference.optimizer
    assert (freed.inference.schedule, freed.weights.nudge) == ("carry", DEFAULT_NUDGE)
    assert (opt.lr, opt.precondition, opt.guard, freed.inference.steps) == (1.0, True, True, 4)
