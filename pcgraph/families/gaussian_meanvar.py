"""Gaussian nodes that carry their own variance (the VAE bottleneck).

The state holds (u, s) along the last axis, s = log-variance, so phi and mu have
twice the node's units: first half mean, second half log-variance. Children see a
reparametrised sample u + eps * exp(s / 2), eps ~ N(0, 1) drawn once per sample when
the state is initialised.

F_KL:  E = KL[N(u, e^s) || N(u^, e^s^)] = 1/2 sum [e^(s - s^) + (u - u^)^2 e^(-s^) - 1 + s^ - s]
Prior N(m, v): 1/2 sum [e^s / v + (u - m)^2 / v - 1 + ln v - s]  (the VAE's KL term)
There is no standard-PC form: a point estimate cannot carry an input-dependent variance.
"""

from __future__ import annotations

import math


from ..core.lazy import torch
from . import register
from .base import Family, per_sample
from .values import score_values
from .gaussian import prior_moments


def _split(t):
    n = t.shape[-1] // 2
    return t[..., :n], t[..., n:]


@register("gaussian_meanvar")
class GaussianMeanVar(Family):
    needs_kl = True
    supports_prior = True
    samples = True
    pictured = False
    style = ("#bcbddc", "doubleoctagon")

    @classmethod
    def param_shape_for(cls, shape):
        return tuple(shape[:-1]) + (2 * shape[-1],)

    def sample_noise(self, batch, like):
        return torch.randn((batch,) + self.shape, dtype=like.dtype, device=like.device)

    def visible(self, state, mean, noise):
        u, s = _split(mean)
        if noise is None:
            return u
        return u + noise * torch.exp(0.5 * s)

    def from_prior(self, prior, batch, dtype, device):
        m, v = prior_moments(prior)
        u = torch.full((batch,) + self.shape, m, dtype=dtype, device=device)
        return torch.cat([u, torch.full_like(u, math.log(v))], -1)

    def describe(self, x, mu, clamped):
        return f"KL[N(u, e^s) ‖ N(û, e^ŝ)]   ((u, s) = {x}, (û, ŝ) = {mu})"

    def describe_visible(self, x):
        return f"u + ε·exp(s/2)   ((u, s) = {x}, ε drawn once per sample)"

    def energy(self, state, mean, mu, params, clamped):
        u, s = _split(state)
        mu_u, mu_s = _split(mu)
        d = u - mu_u
        return 0.5 * per_sample(torch.exp(s - mu_s) + d * d * torch.exp(-mu_s) - 1.0 + mu_s - s)

    def prior_energy(self, state, mean, prior, params):
        m, v = prior_moments(prior)
        u, s = _split(state)
        d = u - m
        return 0.5 * per_sample(torch.exp(s) / v + d * d / v - 1.0 + math.log(v) - s)

    def grad_mu(self, state, mean, mu, params, clamped):
        u, s = _split(state)
        mu_u, mu_s = _split(mu)
        d = u - mu_u
        inv = torch.exp(-mu_s)
        return torch.cat([-d * inv, 0.5 * (1.0 - torch.exp(s - mu_s) - d * d * inv)], -1)

    def step_scale(self, state, mu, params, prior):
        # the diagonal of the own terms' Hessian: e^-s^ (+ 1/v) for the mean,
        # 1/2 e^(s - s^) (+ 1/2 e^s / v) for the log-variance
        if mu is None and prior is None:
            return 1.0
        u, s = _split(state)
        hu = torch.zeros_like(u)
        hs = torch.zeros_like(s)
        if mu is not None:
            _, mu_s = _split(mu)
            hu = hu + torch.exp(-mu_s)
            hs = hs + 0.5 * torch.exp(s - mu_s)
        if prior is not None:
            _, v = prior_moments(prior)
            hu = hu + 1.0 / v
            hs = hs + 0.5 * torch.exp(s) / v
        return torch.cat([hu, hs], -1).reciprocal_()

    def grad_state(self, state, mu, params, g_vis, noise, prior=None):
        u, s = _split(state)
        gu = torch.zeros_like(u)
        gs = torch.zeros_like(s)
        if mu is not None:
            mu_u, mu_s = _split(mu)
            gu = gu + (u - mu_u) * torch.exp(-mu_s)
            gs = gs + 0.5 * (torch.exp(s - mu_s) - 1.0)
        if prior is not None:
            m, v = prior_moments(prior)
            gu = gu + (u - m) / v
            gs = gs + 0.5 * (torch.exp(s) / v - 1.0)
        if g_vis is not None:
            gu = gu + g_vis
            if noise is not None:
                gs = gs + g_vis * noise * 0.5 * torch.exp(0.5 * s)
        return torch.cat([gu, gs], -1)

    # ------------------------------------------------- what its values mean
    def score(self, value, truth, energy=None, mask=None):
        """Against data of the node's own units, the mean half; else the whole."""
        if truth.numel() * 2 == value.numel():
            value = _split(value)[0]
        return score_values(value, truth, mask)

    def table(self, value):
        u, s = _split(value)
        n = u.shape[-1]
        return [f"mean{i}" for i in range(n)] + [f"var{i}" for i in range(n)], torch.cat([u, torch.exp(s)], -1)

    def decoded(self, value, sample=None):
        u, s = _split(value)
        out = {"mean": u, "variance": torch.exp(s)}
        if sample is not None:
            out["sample"] = sample
        return out

    @classmethod
    def synthetic_target(cls, p, noise, gen):
        """The teacher's (mean, log-variance) with ``noise`` times standard normal noise on the mean."""
        y = p.clone()
        u, _ = _split(y)
        u += noise * torch.randn(u.shape, generator=gen)
        return y
