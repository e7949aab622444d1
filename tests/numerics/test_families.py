"""Every registered family, in float64: energy against an independent closed form,
closed-form gradients against autograd and finite differences, forward init at zero
energy. Parametrised over the registry: a new family is picked up here and fails
until it has an entry in CLOSED_FORMS and SAMPLES."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from pcgraph.families import families
from pcgraph.spec.models import GaussianPrior, StandardNormalPrior

D = torch.float64
B, N = 3, 5


def opts(name, **kw):
    return families.get(name).Options(type=name, **kw)


# (family, options, kl) variants exercised
VARIANTS = [
    ("gaussian", {}, True),
    ("gaussian", {"variance": 0.5}, True),
    ("gaussian", {"variance": 2.0}, True),
    ("gaussian", {"variance": "learned"}, True),
    ("gaussian", {"output": "tanh"}, True),
    ("gaussian", {}, False),
    ("categorical", {"update": "natural"}, True),
    ("categorical", {"update": "gradient"}, True),
    ("categorical", {}, False),
    ("bernoulli", {"update": "natural"}, True),
    ("bernoulli", {"update": "gradient"}, True),
    ("bernoulli", {}, False),
    ("gaussian_meanvar", {}, True),
]
IDS = [f"{n}-{'kl' if kl else 'F'}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o, kl in VARIANTS]


def make(name, o, kl):
    cls = families.get(name)
    natural = o.get("update", "natural") == "natural"
    return cls(opts(name, **o), (N,), kl=kl, natural=natural, dtype=D)


def params_for(fam, gen):
    shapes = type(fam).node_param_shapes(fam.options, fam.shape)
    return {k: torch.randn(s, generator=gen, dtype=D) * 0.3 for k, s in shapes.items()}


def sample(fam, gen, clamped=False):
    """(state, mu) in the family's representation."""
    shape = (B,) + fam.param_shape
    mu = torch.randn(shape, generator=gen, dtype=D)
    if not clamped:
        x = torch.randn(shape, generator=gen, dtype=D)
        if fam.name in ("categorical", "bernoulli") and not fam.kl:
            x = torch.rand(shape, generator=gen, dtype=D)  # a free value
        return x, mu
    if fam.name == "categorical":
        return torch.softmax(torch.randn(shape, generator=gen, dtype=D), -1), mu
    if fam.name == "bernoulli":
        return torch.rand(shape, generator=gen, dtype=D), mu
    return torch.randn(shape, generator=gen, dtype=D), mu


# ---------------------------------------------------------------- closed forms
def cf_gaussian(fam, x, mu, params, clamped):
    if fam.options.variance == "learned":
        s = params["logvar"]
        return 0.5 * (((x - mu) ** 2) * torch.exp(-s) + s).sum(-1)
    return 0.5 * ((x - mu) ** 2).sum(-1) / fam.options.variance


def _softmax(z):
    e = torch.exp(z - z.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def cf_categorical(fam, x, mu, params, clamped):
    q = _softmax(mu)
    if not fam.kl:
        return 0.5 * ((x - q) ** 2).sum(-1)
    p = x if clamped else _softmax(x)
    return (p * (torch.log(p) - torch.log(q))).sum(-1)  # eq. (10): sum p ln(p / q)


def cf_bernoulli(fam, x, mu, params, clamped):
    q = 1 / (1 + torch.exp(-mu))
    if not fam.kl:
        return 0.5 * ((x - q) ** 2).sum(-1)
    p = x if clamped else 1 / (1 + torch.exp(-x))
    return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum(-1)


def cf_meanvar(fam, x, mu, params, clamped):
    n = x.shape[-1] // 2
    q = Normal(x[..., :n], torch.exp(0.5 * x[..., n:]))
    r = Normal(mu[..., :n], torch.exp(0.5 * mu[..., n:]))
    return kl_divergence(q, r).sum(-1)


CLOSED_FORMS = {
    "gaussian": cf_gaussian, "categorical": cf_categorical, "bernoulli": cf_bernoulli, "gaussian_meanvar": cf_meanvar
}


def test_every_registered_family_has_a_closed_form_and_variants():
    assert set(families.names()) <= set(CLOSED_FORMS)
    assert set(families.names()) <= {v[0] for v in VARIANTS}


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
@pytest.mark.parametrize("clamped", [False, True])
def test_energy_matches_closed_form(name, o, kl, clamped):
    gen = torch.Generator().manual_seed(1)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    x, mu = sample(fam, gen, clamped)
    got = fam.energy(x, fam.mean(x, clamped), mu, params, clamped)
    assert got.shape == (B,)
    torch.testing.assert_close(got, CLOSED_FORMS[name](fam, x, mu, params, clamped))


def test_categorical_index_targets_give_cross_entropy():
    gen = torch.Generator().manual_seed(2)
    for kl in (True, False):
        fam = make("categorical", {}, kl)
        mu = torch.randn(B, N, generator=gen, dtype=D)
        y = torch.tensor([0, 3, 4])
        onehot = torch.eye(N, dtype=D)[y]
        got = fam.energy(y, fam.mean(y, True), mu, {}, True)
        if kl:
            expected = -torch.log(_softmax(mu))[torch.arange(B), y]
        else:
            expected = 0.5 * ((onehot - _softmax(mu)) ** 2).sum(-1)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(fam.grad_mu(y, y, mu, {}, True), fam.grad_mu(onehot, onehot, mu, {}, True))
        torch.testing.assert_close(fam.visible(y, fam.mean(y, True), None), onehot)


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
@pytest.mark.parametrize("clamped", [False, True])
def test_grad_mu_matches_autograd_and_finite_differences(name, o, kl, clamped):
    gen = torch.Generator().manual_seed(3)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    x, mu = sample(fam, gen, clamped)
    m = fam.mean(x, clamped)
    mu_ = mu.clone().requires_grad_(True)
    expected = torch.autograd.grad(fam.energy(x, m, mu_, params, clamped).sum(), mu_)[0]
    torch.testing.assert_close(fam.grad_mu(x, m, mu, params, clamped), expected)
    assert torch.autograd.gradcheck(lambda z: fam.energy(x, m, z, params, clamped), (mu.clone().requires_grad_(True),))


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
@pytest.mark.parametrize("with_prior", [False, True])
def test_grad_state_matches_autograd(name, o, kl, with_prior):
    gen = torch.Generator().manual_seed(4)
    fam = make(name, o, kl)
    if with_prior and not fam.supports_prior:
        pytest.skip("no prior for this family")
    prior = GaussianPrior(mean=0.3, variance=2.0) if with_prior else None
    params = params_for(fam, gen)
    x, mu = sample(fam, gen)
    g_vis = torch.randn((B,) + fam.shape, generator=gen, dtype=D)
    noise = fam.sample_noise(B, x) if fam.samples else None

    x_ = x.clone().requires_grad_(True)
    m = fam.mean(x_, False)
    if fam.natural:
        m = m.detach().requires_grad_(True)
    total = fam.energy(x_, m, mu, params, False).sum() + (fam.visible(x_, m, noise) * g_vis).sum()
    if prior is not None:
        total = total + fam.prior_energy(x_, m, prior, params).sum()
    expected = fam.project(torch.autograd.grad(total, m if fam.natural else x_)[0])
    torch.testing.assert_close(fam.grad_state(x, mu, params, g_vis, noise, prior), expected)


def test_natural_update_is_the_gradient_with_respect_to_probabilities():
    """Mirror descent: the logits move by dF/dp -- for the categorical centred per row
    (softmax ignores constants: the minimum-norm representative)."""
    gen = torch.Generator().manual_seed(5)
    fam = make("categorical", {"update": "natural"}, True)
    phi, mu = sample(fam, gen)
    g_vis = torch.randn(B, N, generator=gen, dtype=D)
    p = _softmax(phi)
    expected = torch.log(p) + 1 - torch.log(_softmax(mu)) + g_vis  # dF/dp
    torch.testing.assert_close(fam.grad_state(phi, mu, {}, g_vis, None), expected - expected.mean(-1, keepdim=True))
    plain = make("categorical", {"update": "gradient"}, True).grad_state(phi, mu, {}, g_vis, None)
    torch.testing.assert_close(plain, p * (expected - (p * expected).sum(-1, keepdim=True)))

    bern = make("bernoulli", {"update": "natural"}, True)
    phi, mu = sample(bern, gen)
    q, pp = torch.sigmoid(mu), torch.sigmoid(phi)
    expected = torch.log(pp / (1 - pp)) - torch.log(q / (1 - q)) + g_vis
    torch.testing.assert_close(bern.grad_state(phi, mu, {}, g_vis, None), expected)


def _has_params(name, o):
    return bool(families.get(name).node_param_shapes(opts(name, **o), (N,)))


WITH_PARAMS = [v for v in VARIANTS if _has_params(v[0], v[1])]


def test_families_without_node_parameters_have_no_parameter_gradient():
    for name, o, kl in VARIANTS:
        if not _has_params(name, o):
            fam = make(name, o, kl)
            x, mu = sample(fam, torch.Generator().manual_seed(6))
            assert fam.grad_params(x, fam.mean(x, False), mu, {}, False) == {}, name
    assert WITH_PARAMS  # the case below is not empty


@pytest.mark.parametrize("clamped", [False, True])
@pytest.mark.parametrize("name,o,kl", WITH_PARAMS, ids=[IDS[VARIANTS.index(v)] for v in WITH_PARAMS])
def test_grad_params_matches_autograd_and_finite_differences(name, o, kl, clamped):
    gen = torch.Generator().manual_seed(6)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    x, mu = sample(fam, gen, clamped)
    m = fam.mean(x, clamped)
    got = fam.grad_params(x, m, mu, params, clamped)
    assert set(got) == set(params)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    e = fam.energy(x, m, mu, leaves, clamped).sum()
    grads = torch.autograd.grad(e, list(leaves.values()))
    for (k, v), g in zip(leaves.items(), grads):
        torch.testing.assert_close(got[k], g)
        # and a central difference of the closed-form energy along a random direction
        dv = torch.randn(v.shape, generator=gen, dtype=D)
        h = 1e-6

        def cf(t):
            return CLOSED_FORMS[name](fam, x, mu, {**params, k: t}, clamped).sum()

        fd = (cf(params[k] + h * dv) - cf(params[k] - h * dv)) / (2 * h)
        torch.testing.assert_close((got[k] * dv).sum(), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
def test_forward_init_has_zero_energy_and_zero_gradient(name, o, kl):
    gen = torch.Generator().manual_seed(7)
    fam = make(name, o, kl)
    params = params_for(fam, gen)
    _, mu = sample(fam, gen)
    x = fam.from_prediction(mu)
    m = fam.mean(x, False)
    torch.testing.assert_close(fam.energy(x, m, mu, params, False), CLOSED_FORMS[name](fam, x, mu, params, False))
    if o.get("variance") != "learned":
        assert torch.allclose(fam.energy(x, m, mu, params, False), torch.zeros(B, dtype=D))
    assert torch.allclose(fam.grad_mu(x, m, mu, params, False), torch.zeros_like(mu), atol=1e-12)
    assert torch.allclose(fam.grad_state(x, mu, params, None, None), torch.zeros_like(x), atol=1e-12)
    # children see the prediction's mean: what a backprop forward pass would pass on
    if name != "gaussian_meanvar":
        torch.testing.assert_close(fam.visible(x, m, None), _link(fam)(mu))


def _link(fam):
    if fam.name == "categorical":
        return lambda z: _softmax(z)
    if fam.name == "bernoulli":
        return torch.sigmoid
    out = fam.options.output
    return torch.tanh if out == "tanh" else (lambda z: z)


@pytest.mark.parametrize(
    "prior", [StandardNormalPrior(), GaussianPrior(mean=-0.5, variance=3.0)], ids=["standard", "gaussian"]
)
def test_prior_closed_forms(prior):
    gen = torch.Generator().manual_seed(8)
    m0, v0 = (0.0, 1.0) if prior.type == "standard_normal" else (prior.mean, prior.variance)
    g = make("gaussian", {}, True)
    x = torch.randn(B, N, generator=gen, dtype=D)
    torch.testing.assert_close(g.prior_energy(x, x, prior, {}), 0.5 * ((x - m0) ** 2).sum(-1) / v0)
    mv = make("gaussian_meanvar", {}, True)
    x = torch.randn(B, 2 * N, generator=gen, dtype=D)
    q = Normal(x[:, :N], torch.exp(0.5 * x[:, N:]))
    r = Normal(torch.full_like(x[:, :N], m0), torch.full_like(x[:, :N], math.sqrt(v0)))
    torch.testing.assert_close(mv.prior_energy(x, x, prior, {}), kl_divergence(q, r).sum(-1))
    # a root node starts at the prior's mean (and log-variance): zero prior gradient
    start = mv.from_prior(prior, B, D, "cpu")
    torch.testing.assert_close(mv.grad_state(start, None, {}, None, None, prior), torch.zeros_like(start))


def test_meanvar_children_see_a_reparametrised_sample():
    gen = torch.Generator().manual_seed(9)
    mv = make("gaussian_meanvar", {}, True)
    x = torch.randn(B, 2 * N, generator=gen, dtype=D)
    eps = torch.randn(B, N, generator=gen, dtype=D)
    torch.testing.assert_close(mv.visible(x, x, eps), x[:, :N] + eps * torch.exp(0.5 * x[:, N:]))

