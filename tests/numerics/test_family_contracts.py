"""What every family promises beyond its energy, in float64: the autograd defaults of
the base class (what a new family gets for free) agree with each family's closed
forms; a node without own terms takes the plain step; one preconditioned step of the
own terms lands on their minimum where the curvature is exact; a masked categorical
state's natural step stays on its support and ignores a constant per row."""

import pytest
import torch

from pcgraph.families import Family, families
from pcgraph.spec.models import GaussianPrior
from tests.numerics.test_families import IDS, VARIANTS, B, D, make, params_for, sample


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
def test_base_class_autograd_defaults_equal_the_closed_forms(name, o, kl):
    gen = torch.Generator().manual_seed(11)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    x, mu = sample(fam, gen)
    m = fam.mean(x, False)
    g_vis = torch.randn((B,) + fam.shape, generator=gen, dtype=D)
    noise = fam.sample_noise(B, x) if fam.samples else None
    prior = GaussianPrior(mean=0.3, variance=1.7) if fam.supports_prior else None
    for args in ((mu, g_vis, prior), (None, g_vis, None), (mu, None, prior), (None, None, prior)):
        got = fam.grad_state(x, args[0], params, args[1], noise, args[2])
        torch.testing.assert_close(got, Family.grad_state(fam, x, args[0], params, args[1], noise, args[2]))
    torch.testing.assert_close(fam.grad_mu(x, m, mu, params, False), Family.grad_mu(fam, x, m, mu, params, False))
    ours = fam.grad_params(x, m, mu, params, False)
    base = Family.grad_params(fam, x, m, mu, params, False)
    assert set(ours) == set(base) == set(params)
    for k in base:
        torch.testing.assert_close(ours[k], base[k])


def test_the_contract_cases_cover_every_family():
    assert set(families.names()) <= {v[0] for v in VARIANTS}


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
def test_a_node_without_own_terms_takes_the_plain_step(name, o, kl):
    """No prediction and no prior: no curvature to scale by, the preconditioned step is
    the plain one, and the direction is what the children send (through the link)."""
    gen = torch.Generator().manual_seed(12)
    fam = make(name, o, kl)
    x, _ = sample(fam, gen)
    scale = fam.step_scale(x, None, params_for(fam, gen), None)
    assert torch.all(torch.as_tensor(scale) == 1.0)


def _lands(name, o, kl):
    """Families whose preconditioned step solves their own (prediction) term exactly:
    quadratic in the state (Gaussians, the F forms) or natural (mirror descent)."""
    if name == "gaussian" and o.get("output", "identity") == "identity":
        return True
    if name in ("categorical", "bernoulli"):
        return not kl or o.get("update", "natural") == "natural"
    return False


LANDING = [v for v in VARIANTS if _lands(*v)]


@pytest.mark.parametrize("name,o,kl", LANDING, ids=[IDS[VARIANTS.index(v)] for v in LANDING])
def test_one_preconditioned_step_lands_on_the_prediction(name, o, kl):
    gen = torch.Generator().manual_seed(13)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    x, mu = sample(fam, gen)
    x1 = x - fam.step_scale(x, mu, params, None) * fam.grad_state(x, mu, params, None, None)
    # the mean parameters equal the prediction's: zero own energy (up to the learned log-variance)
    torch.testing.assert_close(fam.mean(x1, False), fam.mean(fam.from_prediction(mu), False))


def test_meanvar_preconditioned_step_puts_the_mean_on_the_prediction():
    gen = torch.Generator().manual_seed(14)
    fam = make("gaussian_meanvar", {}, True)
    x, mu = sample(fam, gen)
    x1 = x - fam.step_scale(x, mu, {}, None) * fam.grad_state(x, mu, {}, None, None)
    n = fam.shape[-1]
    torch.testing.assert_close(x1[:, :n], mu[:, :n])


@pytest.mark.parametrize("kl,natural", [(True, True), (True, False), (False, False)])
def test_a_masked_categorical_direction_stays_on_its_support(kl, natural):
    fam = make("categorical", {"update": "natural" if natural else "gradient"}, kl)
    support = torch.tensor([[True, True, False, True, False]]).expand(B, -1)
    fam.support = support
    gen = torch.Generator().manual_seed(15)
    d = torch.randn(B, 5, generator=gen, dtype=D)
    got = fam.project(d)
    on = support.to(D)
    expected = d * on
    if natural:  # remove the mean over the supported entries only
        expected = (d - (d * on).sum(-1, keepdim=True) / on.sum(-1, keepdim=True)) * on
        torch.testing.assert_close(got.sum(-1), torch.zeros(B, dtype=D))
    torch.testing.assert_close(got, expected)
    assert torch.all(got[~support] == 0)


def test_a_clamped_categorical_target_of_any_weights_has_the_autograd_error():
    """-sum p log softmax(mu) for non-negative weights p that need not sum to one (soft
    counts): dE/dmu = softmax(mu) sum(p) - p, as autograd of the energy says."""
    fam = make("categorical", {}, True)
    gen = torch.Generator().manual_seed(21)
    p = torch.rand((B,) + fam.shape, generator=gen, dtype=D) * 3.0
    mu = torch.randn((B,) + fam.param_shape, generator=gen, dtype=D)
    got = fam.grad_mu(p, fam.mean(p, True), mu, {}, True)
    torch.testing.assert_close(got, Family.grad_mu(fam, p, fam.mean(p, True), mu, {}, True))
