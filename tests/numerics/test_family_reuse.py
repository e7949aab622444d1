"""What the families compute once per inference step and reuse: the categorical
direction from logit differences (softmax is blind to per-row constants), one softmax
per state and per prediction, and values kept only while their tensor is unchanged."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from pcgraph.families import families

D = torch.float64
B, L = 3, 5


def categorical(kl=True, update="natural", support=None):
    cls = families.get("categorical")
    fam = cls(cls.Options(type="categorical", update=update), (L, L), kl=kl, natural=update == "natural", dtype=D)
    fam.support = support
    return fam


CAUSAL = torch.ones(L, L, dtype=torch.bool).tril()


def tensors(seed=0, support=None):
    gen = torch.Generator().manual_seed(seed)
    x, mu, g_vis = (torch.randn(B, L, L, generator=gen, dtype=D) * 2 for _ in range(3))
    if support is not None:  # as a masked prediction and the state it starts from hold them
        mu = mu.masked_fill(~support, -1.0e4)
        x = x.masked_fill(~support, -1.0e4)
    return x, mu, g_vis


@pytest.mark.parametrize("support", [None, CAUSAL], ids=["full", "causal"])
@pytest.mark.parametrize("update", ["natural", "gradient"])
def test_categorical_direction_equals_autograd_of_energy(update, support):
    """d/dp (natural) or d/dphi (gradient) of KL[p || q] + <p, g_vis> by autograd, restricted
    to the support (and centred there for the natural step)."""
    fam = categorical(update=update, support=support)
    x, mu, g_vis = tensors(1, support)
    x_ = x.clone().requires_grad_(True)
    logits = x_ if support is None else x_.masked_fill(~support, -1.0e4)
    p = torch.softmax(logits, -1)
    if update == "natural":
        p = p.detach().requires_grad_(True)
    total = (p * (torch.log_softmax(logits, -1) - torch.log_softmax(mu, -1)) + p * g_vis).sum()
    grad = torch.autograd.grad(total, p if update == "natural" else x_)[0]
    if support is not None:
        grad = grad.masked_fill(~support, 0.0)
    if update == "natural":  # the minimum-norm representative on the support
        keep = torch.ones_like(grad) if support is None else support.to(D).expand_as(grad)
        grad = (grad - (grad.sum(-1, keepdim=True) / keep.sum(-1, keepdim=True))) * keep
    torch.testing.assert_close(fam.grad_state(x, mu, {}, g_vis, None), grad, rtol=1e-10, atol=1e-12)


class Count(TorchFunctionMode):
    """Counts the (log-)softmax passes a block of code runs."""

    NAMES = {"softmax", "log_softmax", "logsumexp", "_softmax", "_log_softmax"}

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.NAMES:
            self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "kl,update,expected",
    [(True, "natural", 2), (True, "gradient", 2), (False, "natural", 1)],
    ids=["kl-natural", "kl-gradient", "F"],
)
def test_one_softmax_per_state_and_per_prediction_in_a_step(kl, update, expected):
    """An inference step asks a free node for its mean (what children see), its error
    and its direction: F_KL softmaxes the state and the prediction once each, F (whose
    state is the probability vector itself) only the prediction."""
    fam = categorical(kl=kl, update=update)
    x, mu, g_vis = tensors(2)
    if not kl:
        x = torch.softmax(x, -1)
    with Count() as c:
        m = fam.mean(x, False)
        fam.grad_mu(x, m, mu, {}, False)
        fam.grad_state(x, mu, {}, g_vis, None)
    assert c.n == expected


@pytest.mark.parametrize("kl", [True, False], ids=["kl", "F"])
def test_kept_values_follow_in_place_changes(kl):
    """A state or prediction changed in place (as the optimizer and the guard do) gets
    a fresh softmax: every result equals that of a family that never saw the old values."""
    fam = categorical(kl=kl, update="gradient")
    x, mu, g_vis = tensors(3)
    if not kl:
        x = torch.softmax(x, -1)
    m = fam.mean(x, False)
    fam.grad_mu(x, m, mu, {}, False)
    fam.grad_state(x, mu, {}, g_vis, None)
    x2, mu2, _ = tensors(4)
    x.copy_(torch.softmax(x2, -1) if not kl else x2)
    mu.copy_(mu2)
    fresh = categorical(kl=kl, update="gradient")
    m, m_fresh = fam.mean(x, False), fresh.mean(x.clone(), False)
    torch.testing.assert_close(m, m_fresh)
    torch.testing.assert_close(
        fam.grad_mu(x, m, mu, {}, False), fresh.grad_mu(x.clone(), m_fresh, mu.clone(), {}, False)
    )
    torch.testing.assert_close(
        fam.grad_state(x, mu, {}, g_vis, None), fresh.grad_state(x.clone(), mu.clone(), {}, g_vis, None)
    )
    torch.testing.assert_close(fam.energy(x, m, mu, {}, False), fresh.energy(x.clone(), m_fresh, mu.clone(), {}, False))


def test_kept_softmax_does_not_leak_into_autograd():
    """Under autograd the mean is differentiable even for a tensor seen before without it."""
    fam = categorical()
    x, _, _ = tensors(5)
    fam.mean(x, False)
    x.requires_grad_(True)
    m = fam.mean(x, False)
    assert m.requires_grad
    (g,) = torch.autograd.grad(m[..., 0].sum(), x)
    p = torch.softmax(x.detach(), -1)
    expected = p[..., :1] * ((torch.arange(L) == 0).to(D) - p)  # d p_0 / d x_j = p_0 (delta_0j - p_j)
    torch.testing.assert_close(g, expected)
