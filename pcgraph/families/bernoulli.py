"""Bernoulli nodes: independent binary units.

F_KL (state phi = logits, p = sigmoid(phi), q = sigmoid(mu)):
    E = sum p (ln p - ln q) + (1 - p)(ln(1 - p) - ln(1 - q))
A clamped target holds probabilities (0/1 or grey levels); E is then the binary
cross-entropy minus the target's entropy.
Standard PC (F): a free value v, E = 1/2 || v - sigmoid(mu) ||^2.
``update: natural`` steps the logits by the gradient with respect to p.
"""

from __future__ import annotations

from typing import Literal, Optional


from ..core.lazy import F, torch
from . import register
from .base import Family, FamilyOptions, per_sample


class BernoulliOptions(FamilyOptions):
    update: Optional[Literal["natural", "gradient"]] = None


@register("bernoulli")
class Bernoulli(Family):
    Options = BernoulliOptions
    has_natural_update = True
    style = ("#a1d99b", "octagon")

    @property
    def vis_is_state(self):
        return not self.kl

    def from_prediction(self, mu, copy=True):
        if self.kl:
            return mu.clone() if copy else mu
        return torch.sigmoid(mu)

    def mean(self, state, clamped):
        if clamped or not self.kl:
            return state
        return torch.sigmoid(state)

    def prediction_value(self, mu):
        return torch.sigmoid(mu)

    def energy(self, state, mean, mu, params, clamped):
        if self.kl:
            lq1, lq0 = F.logsigmoid(mu), F.logsigmoid(-mu)
            if clamped:
                p = mean
                return per_sample(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p) - p * lq1 - (1 - p) * lq0)
            lp1, lp0 = F.logsigmoid(state), F.logsigmoid(-state)
            return per_sample(mean * (lp1 - lq1) + (1 - mean) * (lp0 - lq0))
        d = mean - torch.sigmoid(mu)
        return 0.5 * per_sample(d * d)

    def describe(self, x, mu, clamped):
        if self.kl:
            p = x if clamped else f"σ({x})"
            return f"KL[Bern({p}) ‖ Bern(σ({mu}))]"
        return f"½·‖{x} − σ({mu})‖²"

    def describe_visible(self, x):
        return f"σ({x})" if self.kl else x

    def grad_mu(self, state, mean, mu, params, clamped):
        q = torch.sigmoid(mu)
        if self.kl:
            return q - mean
        return -(mean - q) * q * (1 - q)

    def grad_state(self, state, mu, params, g_vis, noise, prior=None):
        if not self.kl:
            g = torch.zeros_like(state) if mu is None else state - torch.sigmoid(mu)
            return g if g_vis is None else g + g_vis
        # dE/dp = logit(p) - logit(q) = phi - mu
        h = torch.zeros_like(state) if mu is None else state - mu
        if g_vis is not None:
            h = h + g_vis
        if self.natural:
            return h
        p = torch.sigmoid(state)
        return h * p * (1 - p)
