"""The fast engine's cached errors and energies: a unit-variance Gaussian's energy
taken from its error is its energy bit for bit; the engine's energies and errors stay
those computed from scratch (autograd on the energy as written) while states move,
inside inference and from outside; the guard's limit is the energy plus its tolerance."""

import pytest
import torch

from pcgraph.compile.energy import node_energies
from pcgraph.compile.guard import guard_limit, guard_tolerance
from pcgraph.families.gaussian import Gaussian, GaussianOptions
from tests.numerics.graphs import DAG, D, batch_for, program


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5,), (2, 3)])
def test_a_unit_variance_gaussians_energy_from_its_error_is_its_energy_bit_for_bit(dtype, shape):
    fam = Gaussian(GaussianOptions(), shape, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    x, mu = (torch.randn((7,) + shape, generator=gen, dtype=torch.float64).to(dtype) * 3 for _ in range(2))
    e = fam.energy_from_error(lambda: fam.grad_mu(x, x, mu, {}, False), {})
    assert torch.equal(e, fam.energy(x, x, mu, {}, False))
    # and it is the energy: half the squared distance, summed per sample
    ref = 0.5 * ((x.double() - mu.double()) ** 2).reshape(7, -1).sum(1)
    torch.testing.assert_close(e.double(), ref, rtol=1e-6 if dtype == torch.float32 else 1e-14, atol=0.0)


@pytest.mark.parametrize("variance", [0.05, "learned"])
def test_other_variances_leave_the_energy_to_the_formula_and_take_no_error(variance):
    fam = Gaussian(GaussianOptions(variance=variance), (5,), dtype=D)

    def error():
        raise AssertionError("the error was taken")

    assert fam.energy_from_error(error, {}) is None


def _scratch(prog, state):
    """(energies with the loss terms weighted, {node: dE/dmu}) from scratch by autograd."""
    terms = node_energies(prog, state, state.loss_weight)
    eng = state.engine
    errors = {}
    for n in prog.energy_nodes:
        if not prog.in_edges[n]:
            continue
        mu = eng.mu[n].detach().clone().requires_grad_(True)
        fam = prog.families[n]
        with torch.enable_grad():
            e = fam.energy(state[n], fam.mean(state[n], n in state.clamped), mu, prog.params_of(n), n in state.clamped)
            (g,) = torch.autograd.grad(e.sum(), mu)
        errors[n] = g * state.loss_weight if n in state.clamped else g
    return terms, errors


def _check(prog, state):
    eng = state.engine
    eng.check_outside_edits()
    got = eng.energies()
    ref_terms, ref_errors = _scratch(prog, state)
    for n in prog.energy_nodes:
        torch.testing.assert_close(got[n], ref_terms[n], rtol=1e-12, atol=1e-12)
    errors = eng.errors(prog.energy_nodes)
    for n, g in ref_errors.items():  # a node the engine leaves out has no error
        torch.testing.assert_close(errors.get(n, torch.zeros_like(g)), g, rtol=1e-12, atol=1e-12)


def test_cached_errors_and_energies_follow_the_states_as_they_move():
    prog = program(DAG.replace("TARGET", "gaussian"), overrides=["train.inference.steps=3"])
    state = prog.init_state(batch_for(prog, B=5), loss_weight=0.25)
    _check(prog, state)  # at the forward pass: only the targets' terms
    for _ in range(3):
        prog.infer(state, steps=1)  # carry, guard, preconditioned step: every node moves
        _check(prog, state)
    with torch.no_grad():
        state["h3"].add_(0.3)  # changed in place from outside
    _check(prog, state)
    state["h1"] = state["h1"] * 0.5  # replaced from outside
    _check(prog, state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_guards_limit_is_the_energy_plus_its_tolerance(dtype):
    before = torch.tensor([0.0, -1e-9, 3.5, -250.0, 1e30, 7e-3], dtype=dtype)
    keep = before.clone()
    eps = torch.finfo(dtype).eps  # a rise of up to 16 ulps of (|energy| + 1) is rounding
    assert torch.equal(guard_tolerance(before), (before.abs() + 1.0) * (16 * eps))
    assert torch.equal(guard_limit(before), before + (before.abs() + 1.0) * (16 * eps))
    assert torch.equal(before, keep)  # neither writes into the energies it reads
    assert bool((guard_limit(before) > before).all())


@pytest.mark.parametrize("sync", [True, False], ids=["asks-the-host", "never-asks"])
def test_the_guard_keeps_a_rise_within_its_tolerance_and_undoes_one_beyond(sync, monkeypatch):
    """Whether or not the guard first asks if any energy rose at all, a sample whose
    energy fell or rose within the tolerance keeps its step; one beyond it goes back."""
    from pcgraph.compile import guard as guard_mod

    monkeypatch.setattr(guard_mod, "may_sync", lambda t: sync)
    before = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=D)
    tol = float(guard_tolerance(before)[0])
    after = torch.tensor([0.5, 1.0 + tol / 2, 1.0 + 4 * tol, 1.0], dtype=D)
    state = {"h": torch.zeros(4, 1, dtype=D)}
    energy = iter([before, after])
    g = guard_mod.Guard()
    g.start(state, ["h"], lambda: next(energy))
    state["h"] += 1.0
    g.judge(state, lambda: next(energy), lambda n: None)
    assert state["h"][:, 0].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert g.alpha.tolist() == [1.0, 1.0, 0.5, 1.0]
    assert g.before.tolist() == [0.5, 1.0 + tol / 2, 1.0, 1.0]


def test_a_transform_that_promises_new_output_never_returns_an_inputs_memory():
    from pcgraph.transforms import transforms

    promised = [name for name, cls in transforms.items() if cls.new_output]
    assert "linear" in promised
    prog = program(DAG.replace("TARGET", "gaussian"))
    state = prog.init_state(batch_for(prog, B=3))
    for e in prog.edges:
        mod = prog.transforms[e.name]
        if mod.new_output:
            xs = [state[s] for s in e.sources]
            y = mod(*xs)
            assert all(y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr() for x in xs)
