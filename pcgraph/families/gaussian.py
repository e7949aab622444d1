"""Gaussian nodes: the state is the mean; fixed or learned per-unit variance.

E = 1/2 sum (phi - mu)^2 / s2            (fixed variance s2)
E = 1/2 sum [(phi - mu)^2 / s2 + ln s2]  (learned: s2 = exp(logvar), a node parameter)

This is both the F_KL term (KL of two Gaussians of equal variance, up to the
learned-variance normaliser) and the standard-PC term. ``output`` puts an
activation on what children see: they get output(phi) (mu = W . f(x) form).
A Gaussian prior N(m, v) adds 1/2 sum (phi - m)^2 / v.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import PositiveFloat

from ..core.lazy import torch
from ..core import activations
from . import register
from .base import Family, FamilyOptions, per_sample


class GaussianOptions(FamilyOptions):
    variance: Union[PositiveFloat, Literal["learned"]] = 1.0
    output: Literal[activations.ACTIVATION_NAMES] = "identity"  # type: ignore[valid-type]


def prior_moments(prior) -> tuple[float, float]:
    if prior.type == "standard_normal":
        return 0.0, 1.0
    return float(prior.mean), float(prior.variance)


@register("gaussian")
class Gaussian(Family):
    Options = GaussianOptions
    supports_prior = True
    holds_units = True
    style = ("#9ecae1", "ellipse")
    errors_affine = True  # -(x - f(mu)) f'(mu) / variance

    def __init__(self, options, shape, **kw):
        super().__init__(options, shape, **kw)
        self.learned = options.variance == "learned"
        self.variance = None if self.learned else float(options.variance)
        self.out = activations.get(options.output)

    @classmethod
    def node_param_shapes(cls, options, shape):
        return {"logvar": tuple(shape)} if options.variance == "learned" else {}

    def from_data(self, value):
        # class indices clamped to a Gaussian vector node become one-hot rows
        if not value.is_floating_point() and value.dim() == len(self.shape) and self.shape:
            return torch.nn.functional.one_hot(value.long(), self.shape[-1]).to(self.dtype)
        return super().from_data(value)

    def check_data(self, value):
        if not value.is_floating_point() and tuple(value.shape[1:]) == self.shape[:-1]:
            return None
        return super().check_data(value)

    def visible(self, state, mean, noise):
        return self.out.fn(mean)

    def describe(self, x, mu, clamped):
        if self.learned:
            return f"½·Σ[({x} − {mu})²·exp(−s) + s]   (s: learned log-variance)"
        scale = "" if self.variance == 1.0 else f"/{self.variance:g}"
        return f"½·‖{x} − {mu}‖²{scale}"

    def describe_visible(self, x):
        out = self.out.name
        return x if out == "identity" else f"{out}({x})"

    @property
    def vis_is_state(self):
        return self.out.name == "identity"

    def _inv_var(self, params):
        return torch.exp(-params["logvar"]) if self.learned else 1.0 / self.variance

    def energy(self, state, mean, mu, params, clamped):
        eps = state - mu
        if self.learned:
            lv = params["logvar"]
            return 0.5 * per_sample(eps * eps * torch.exp(-lv) + lv)
        return per_sample(eps * eps) * (0.5 / self.variance)

    def energy_from_error(self, error, params):
        # at unit variance g = mu - state is -eps exactly, so g * g is eps * eps
        if self.learned or self.variance != 1.0:
            return None
        g = error()
        return per_sample(g * g) * 0.5

    def from_prior(self, prior, batch, dtype, device):
        m, _ = prior_moments(prior)
        return torch.full((batch,) + self.param_shape, m, dtype=dtype, device=device)

    def prior_energy(self, state, mean, prior, params):
        m, v = prior_moments(prior)
        d = state - m
        return per_sample(d * d) * (0.5 / v)

    # closed forms ------------------------------------------------------
    def _scaled(self, t, params):
        if not self.learned and self.variance == 1.0:
            return t
        return t * self._inv_var(params)

    def grad_mu(self, state, mean, mu, params, clamped):
        return self._scaled(mu - state, params)

    def step_scale(self, state, mu, params, prior):
        # the precisions of the prediction and the prior add; a step of their inverse
        # lands on the minimum of the node's own terms
        precision = None if mu is None else self._inv_var(params)
        if prior is not None:
            precision = (0.0 if precision is None else precision) + 1.0 / prior_moments(prior)[1]
        return 1.0 if precision is None else 1.0 / precision

    def grad_state(self, state, mu, params, g_vis, noise, prior=None):
        g = None if mu is None else self._scaled(state - mu, params)  # a new tensor: added to in place
        if prior is not None:
            m, v = prior_moments(prior)
            p = (state - m).div_(v)
            g = p if g is None else g.add_(p)
        if g_vis is not None:
            if self.out.name != "identity":
                g_vis = self.out.grad_pre(g_vis, state, self.out.fn(state))
            g = g_vis if g is None else g.add_(g_vis)
        return torch.zeros_like(state) if g is None else g

    def grad_params(self, state, mean, mu, params, clamped):
        if not self.learned:
            return {}
        eps = state - mu
        g = 0.5 * (1.0 - eps * eps * torch.exp(-params["logvar"]))
        return {"logvar": g.reshape(-1, *self.shape).sum(0)}

    @classmethod
    def synthetic_target(cls, p, noise, gen):
        """The teacher's mean plus ``noise`` times standard normal noise."""
        return p + noise * torch.randn(p.shape, generator=gen)
