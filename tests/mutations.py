"""Planted defects (mutation testing): each must make the numerical suite fail.

Applied by tests/conftest.py when PCGRAPH_MUTATION names one of them; run by
tests/numerics/test_mutation.py in a subprocess."""

import torch

from pcgraph.families.base import per_sample
from pcgraph.families.categorical import Categorical
from pcgraph.families.gaussian import Gaussian
from pcgraph.families.gaussian_meanvar import GaussianMeanVar, _split
from pcgraph.transforms.linear import Linear


def gaussian_no_half():
    original = Gaussian.energy

    def energy(self, state, mean, mu, params, clamped):
        return 2.0 * original(self, state, mean, mu, params, clamped)  # drop the 1/2

    Gaussian.energy = energy


def categorical_wrong_sign():
    def energy(self, state, mean, mu, params, clamped):
        logq = torch.log_softmax(mu, -1)
        if clamped and not state.is_floating_point():
            return per_sample(logq.gather(-1, state.unsqueeze(-1)))  # + instead of -
        return per_sample(mean * (torch.log_softmax(state, -1) + logq))

    Categorical.energy = energy


def meanvar_prior_no_logvar():
    def prior_energy(self, state, mean, prior, params):
        u, s = _split(state)
        return 0.5 * per_sample(torch.exp(s) + u * u - 1.0)  # forgets -s

    GaussianMeanVar.prior_energy = prior_energy


def linear_vjp_bias_halved():
    original = Linear.vjp

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        gin, gp = original(self, inputs, grad_out, need_inputs, need_params)
        if gp and "bias" in gp:
            gp["bias"] = 0.5 * gp["bias"]
        return gin, gp

    Linear.vjp = vjp


MUTATIONS = {
    "gaussian_no_half": gaussian_no_half,
    "categorical_wrong_sign": categorical_wrong_sign,
    "meanvar_prior_no_logvar": meanvar_prior_no_logvar,
    "linear_vjp_bias_halved": linear_vjp_bias_halved,
}


def apply(name: str) -> None:
    MUTATIONS[name]()
