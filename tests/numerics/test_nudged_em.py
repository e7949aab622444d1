"""PC's training step by expectation-maximisation with a nudge, in float64.

The E-step relaxes the states on the energy with the loss terms (clamped targets, priors)
weighted by beta; the M-step takes the gradient of that energy at the relaxed state,
divided by beta. Checked here against what is independently true: the weighted energy
and its gradients against autograd, the nudged equilibrium against the minimiser a
linear solve gives, the limit beta -> 0 against backprop's gradient (with an error that
shrinks in proportion to beta), and the training step against its definition (the update
comes after T inference steps and depends on T)."""

import pytest
import torch

from pcgraph.compile.energy import energy_terms, grad_state, node_energies, node_energy, step_scale
from pcgraph.families.gaussian import Gaussian, GaussianOptions
from pcgraph.families.gaussian_meanvar import GaussianMeanVar
from pcgraph.spec.models import GaussianPrior, StandardNormalPrior

from tests.numerics.graphs import D, DAG, M3, TRANSFORMER, VAE, batch_for, program

DEFAULT = {"type": "sgd", "lr": 1.0, "precondition": True, "guard": True}


def flat_grads(prog):
    return torch.cat([p.grad.reshape(-1) for p in prog.parameters()])


def bp_gradient(prog, batch, noise):
    prog.zero_grad()
    prog.loss_bp(batch, noise=noise).backward()
    return flat_grads(prog)


def em_gradient(prog, batch, beta, steps, schedule="carry", noise=None):
    state = prog.init_state(batch, loss_weight=beta, noise=noise)
    prog.infer(state, steps=steps, optimizer=DEFAULT, schedule=schedule)
    prog.weight_grads(state)
    return flat_grads(prog), state


def test_the_weight_multiplies_the_loss_terms_only():
    """Clamped targets' terms and prior terms scale with the weight; a free node's own
    term does not."""
    prog = program(VAE)
    batch = batch_for(prog, B=3)
    state = prog.init_state(batch)
    with torch.no_grad():
        for n in state.free:
            state[n] = state[n] + 0.1 * torch.randn_like(state[n])
    plain = node_energies(prog, state)
    weighted = node_energies(prog, state, 0.3)
    torch.testing.assert_close(weighted["recon"], 0.3 * plain["recon"])
    torch.testing.assert_close(weighted["dec"], plain["dec"])
    torch.testing.assert_close(weighted["enc"], plain["enc"])
    # z: its encoder term as written, its prior's term weighted
    mean = prog.families["z"].mean(state["z"], False)
    mu = prog.mu(state)["z"]
    own = node_energy(prog, "z", state["z"], mean, mu, state.clamped, {})
    prior = prog.families["z"].prior_energy(state["z"], mean, prog.nodes["z"].prior, {})
    torch.testing.assert_close(own, prog.families["z"].energy(state["z"], mean, mu, {}, False) + prior)
    torch.testing.assert_close(weighted["z"], own - prior + 0.3 * prior)


FAMILIES = [
    (lambda: Gaussian(GaussianOptions(variance=0.4), (4,), dtype=D), 4, GaussianPrior(mean=0.5, variance=2.0)),
    (lambda: GaussianMeanVar(GaussianMeanVar.Options(), (3,), dtype=D), 6, StandardNormalPrior()),
]


@pytest.mark.parametrize("make,width,prior", FAMILIES, ids=["gaussian", "meanvar"])
@pytest.mark.parametrize("weight", [1.0, 0.2])
def test_weighted_prior_gradient_and_curvature_match_autograd(make, width, prior, weight):
    fam = make()
    torch.manual_seed(3)
    x, mu, g_vis = (torch.randn(2, width, dtype=D) for _ in range(3))
    g_vis = g_vis[:, : fam.shape[-1]]
    noise = torch.randn(2, *fam.shape, dtype=D) if fam.samples else None

    def own(x):
        m = fam.mean(x, False)
        return fam.energy(x, m, mu, {}, False).sum() + weight * fam.prior_energy(x, m, prior, {}).sum()

    xg = x.clone().requires_grad_(True)
    total = own(xg) + (fam.visible(xg, fam.mean(xg, False), noise) * g_vis).sum()
    (expected,) = torch.autograd.grad(total, xg)
    torch.testing.assert_close(grad_state(fam, x, mu, {}, g_vis, noise, prior, weight), expected)
    hess = torch.autograd.functional.hessian(lambda v: own(v.view_as(x)), x.reshape(-1)).diagonal().view_as(x)
    scale = torch.as_tensor(step_scale(fam, x, mu, {}, prior, weight), dtype=D).expand_as(x)
    torch.testing.assert_close(scale, 1.0 / hess)


CHAIN = """
name: chain
nodes:
  x: {shape: [3], role: input, bind: x}
  h1: {shape: [4], family: gaussian}
  h2: {shape: [4], family: gaussian}
  h3: {shape: [4], family: gaussian}
  y: {shape: [2], family: {type: gaussian, variance: 0.5}, role: target, bind: y}
edges:
  - {from: x, to: h1}
  - {from: h1, to: h2}
  - {from: h2, to: h3}
  - {from: h3, to: y}
"""


def minimiser(prog, state):
    """The free states that minimise the (quadratic) weighted energy: one Newton step
    from anywhere, with autograd's gradient and Hessian."""
    free = list(state.free)
    sizes = [state[n].numel() for n in free]

    def energy(v):
        values = dict(state.items())
        for n, part in zip(free, torch.split(v, sizes)):
            values[n] = part.view_as(state[n])
        terms = energy_terms(prog, values, state.noise, state.clamped, None, state.loss_weight)[0]
        return sum(t.sum() for t in terms.values())

    v = torch.cat([state[n].reshape(-1) for n in free])
    g = torch.autograd.functional.jacobian(energy, v)
    h = torch.autograd.functional.hessian(energy, v)
    return dict(zip(free, torch.split(v - torch.linalg.solve(h, g), sizes)))


def relative_miss(prog, batch, beta, schedule):
    """How far one step lands from the minimum, relative to how far the minimum is."""
    state = prog.init_state(batch, loss_weight=beta)
    start = {n: state[n].clone() for n in state.free}
    best = minimiser(prog, state)
    prog.infer(state, steps=1, optimizer={"type": "sgd", "lr": 1.0, "precondition": True}, schedule=schedule)
    moved = max(float((best[n].view_as(start[n]) - start[n]).abs().max()) for n in start)
    return max(float((best[n].view_as(state[n]) - state[n]).abs().max()) for n in start) / moved


def test_one_carry_step_reaches_the_nudged_minimum_on_a_linear_chain():
    """With held errors a single step lands within O(beta) of the minimum (relative to
    the distance to it); a plain sweep's first step is far from it whatever beta."""
    prog = program(CHAIN)
    batch = batch_for(prog, B=2)
    carry = [relative_miss(prog, batch, beta, "carry") for beta in (1e-2, 1e-3)]
    assert carry[0] < 0.5 and carry[1] < carry[0] / 5
    assert all(relative_miss(prog, batch, beta, "sweep") > 0.3 for beta in (1e-2, 1e-3))


@pytest.mark.parametrize(
    "text", [DAG.replace("TARGET", "{type: gaussian, variance: 0.2}"), M3, VAE, TRANSFORMER], ids=lambda t: t[7:12]
)
def test_the_em_gradient_tends_to_backprops_in_proportion_to_the_nudge(text):
    """PC's equilibrium gradient approaches BP's as beta -> 0, its error shrinking in
    proportion to beta (Whittington & Bogacz 2017 show it for Gaussian chains)."""
    prog = program(text)
    batch = batch_for(prog, B=4)
    noise = prog.init_state(batch).noise
    bp = bp_gradient(prog, batch, noise)
    errors = []
    for beta in (1e-3, 1e-4):
        g, _ = em_gradient(prog, batch, beta, steps=8, noise=noise)
        errors.append(float((g - bp).norm() / bp.norm()))
    assert errors[0] < 0.1
    assert errors[1] < errors[0] / 5


def test_the_training_step_updates_the_weights_after_its_inference_steps_and_depends_on_t():
    """The default step (gradient at equilibrium, carry, nudge): with SGD of lr 1 a
    weight moves by minus the gradient at the state T inference steps reached; with
    T = 0 only the edges into the target learn (no other node carries error yet), and
    T = 1, 4 give different updates."""
    updates = {}
    for T in (0, 1, 4):
        prog = program(M3, overrides=[f"train.inference.steps={T}", "train.weights.optimizer={type: sgd, lr: 1.0}"])
        assert (prog.weight_gradient(), prog.schedule.name) == ("equilibrium", "carry")
        batch = batch_for(prog, B=5)
        before = [p.detach().clone() for p in prog.parameters()]
        torch.manual_seed(1)
        expected, _ = em_gradient(prog, batch, prog.loss_weight(), T)
        torch.manual_seed(1)
        prog.pc_step(batch)
        moved = {n: b - p.detach() for b, (n, p) in zip(before, prog.named_parameters())}
        torch.testing.assert_close(torch.cat([m.reshape(-1) for m in moved.values()]), expected)
        updates[T] = moved
    hidden = [n for n in updates[0] if not n.startswith("edge_modules.e3")]
    assert all(float(updates[0][n].abs().max()) == 0.0 for n in hidden)
    assert all(float(updates[1][n].abs().max()) > 0.0 for n in hidden)
    assert not torch.allclose(torch.cat([u.reshape(-1) for u in updates[1].values()]),
                              torch.cat([u.reshape(-1) for u in updates[4].values()]), rtol=1e-6, atol=0)


def test_each_further_update_runs_its_own_e_step_at_the_new_weights():
    prog = program(VAE, overrides=["train.weights.updates=2", "train.weights.optimizer={type: sgd, lr: 0.5}"])
    twin = program(VAE, overrides=["train.weights.optimizer={type: sgd, lr: 0.5}"])
    batch = batch_for(prog, B=3)
    torch.manual_seed(2)
    prog.pc_step(batch)
    torch.manual_seed(2)
    noise = twin.init_state(batch).noise
    for _ in range(2):  # two single steps on the same draws
        g, _ = em_gradient(twin, batch, twin.loss_weight(), twin.train_cfg.inference.steps, noise=noise)
        with torch.no_grad():
            offset = 0
            for p in twin.parameters():
                p -= 0.5 * g[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
    for a, b in zip(prog.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
