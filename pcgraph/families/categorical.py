"""Categorical nodes: a softmax over the last axis.

F_KL (state phi = logits, p = softmax(phi), q = softmax(mu); paper eq. (10)):
    E = sum p ln p - sum p . log_softmax(mu) = KL[p || q]
A clamped target holds class indices (or probability rows); then E is the cross-entropy.

Standard PC (F): the node holds a free value v and E = 1/2 || v - softmax(mu) ||^2;
children see v.

Inference update (``update``): ``natural`` (default) steps the logits by the gradient
with respect to the probabilities (mirror descent with the entropy map: the natural
gradient of the exponential family), centred per row -- softmax ignores a constant
shift, so this is the minimum-norm natural step and keeps logits from drifting;
``gradient`` steps them by the plain gradient with respect to the logits.

Under causal attention a node's prediction is masked; the state then lives on the
prediction's support (``support``, set by the compiler): masked entries carry no
probability and are never updated.
"""

from __future__ import annotations

from typing import Literal, Optional


from ..core.lazy import F, torch
from ..core.constants import MASK
from . import register
from .base import Family, FamilyOptions, per_sample


class CategoricalOptions(FamilyOptions):
    type: Literal["categorical"] = "categorical"
    update: Optional[Literal["natural", "gradient"]] = None  # None: train.inference.update


def _is_index(state: torch.Tensor) -> bool:
    return not state.is_floating_point()


@register
class Categorical(Family):
    name = "categorical"
    Options = CategoricalOptions
    has_natural_update = True

    def from_prediction(self, mu, copy=True):
        if self.kl:
            return mu.clone() if copy else mu
        return torch.softmax(mu, -1)

    def from_data(self, value):
        if _is_index(value):
            return value.long()
        return value.to(self.dtype)

    def check_data(self, value):
        if _is_index(value) and tuple(value.shape[1:]) == self.shape[:-1]:
            return None
        return super().check_data(value)

    @property
    def vis_is_state(self):
        return not self.kl and self.support is None

    def _logits(self, state):
        """The state's logits, with entries outside the support pinned to MASK."""
        return state if self.support is None else state.masked_fill(~self.support, MASK)

    def mean(self, state, clamped):
        # a clamped target keeps its compact form (indices); ``visible`` expands it
        if clamped:
            return state
        if not self.kl:
            return state if self.support is None else state.masked_fill(~self.support, 0.0)
        return torch.softmax(self._logits(state), -1)

    def project(self, direction):
        """Drop entries outside the support; for the natural (F_KL) update also remove
        the per-row constant, which softmax ignores (the minimum-norm natural step)."""
        if self.support is not None:
            direction = direction.masked_fill(~self.support, 0.0)
        if self.kl and self.natural:
            if self.support is None:
                direction = direction - direction.mean(-1, keepdim=True)
            else:
                count = self.support.sum(-1, keepdim=True).to(direction.dtype)
                direction = (direction - direction.sum(-1, keepdim=True) / count).masked_fill(~self.support, 0.0)
        return direction

    def visible(self, state, mean, noise):
        return F.one_hot(mean, self.shape[-1]).to(self.dtype) if _is_index(mean) else mean

    def prediction_value(self, mu):
        return torch.softmax(mu, -1)

    def energy(self, state, mean, mu, params, clamped):
        if self.kl:
            logq = torch.log_softmax(mu, -1)
            if clamped:
                if _is_index(state):
                    return -per_sample(logq.gather(-1, state.unsqueeze(-1)))
                return per_sample(torch.xlogy(state, state) - state * logq)
            return per_sample(mean * (torch.log_softmax(self._logits(state), -1) - logq))
        s = torch.softmax(mu, -1)
        if _is_index(state):  # 1/2 |onehot - s|^2 = 1/2 (|s|^2 - 2 s_y + 1)
            s_y = s.gather(-1, state.unsqueeze(-1)).squeeze(-1)
            return 0.5 * per_sample((s * s).sum(-1) - 2.0 * s_y + 1.0)
        d = mean - s
        return 0.5 * per_sample(d * d)

    def describe(self, x, mu, clamped):
        if self.kl:
            if clamped:
                return f"−Σ p·log_softmax({mu})   (cross-entropy, p = clamped {x})"
            return f"KL[softmax({x}) ‖ softmax({mu})]   ({'natural' if self.natural else 'gradient'} update)"
        return f"½·‖{x} − softmax({mu})‖²"

    def describe_visible(self, x):
        return f"softmax({x})" if self.kl else x

    @staticmethod
    def _sub_onehot_(s, idx):
        """s - onehot(idx), in place (no one-hot tensor is built)."""
        idx = idx.unsqueeze(-1)
        return s.scatter_add_(-1, idx, torch.full(idx.shape, -1.0, dtype=s.dtype, device=s.device))

    def grad_mu(self, state, mean, mu, params, clamped):
        s = torch.softmax(mu, -1)
        if self.kl:
            if clamped:
                # d/dmu of -sum p log softmax(mu) = s * sum(p) - p
                if _is_index(state):
                    return self._sub_onehot_(s, state)
                return s * state.sum(-1, keepdim=True) - state
            return s - mean
        if _is_index(state):
            # e = onehot - s; <s, e> = s_y - |s|^2; -s (e - <s, e>) = s (s + <s, e>) - s_y onehot
            s_y = s.gather(-1, state.unsqueeze(-1))
            c = s_y - (s * s).sum(-1, keepdim=True)
            return (s * (s + c)).scatter_add_(-1, state.unsqueeze(-1), -s_y)
        e = mean - s  # v - s
        return -s * (e - (s * e).sum(-1, keepdim=True))

    def grad_state(self, state, mu, params, g_vis, noise, prior=None):
        if not self.kl:
            g = torch.zeros_like(state) if mu is None else self.mean(state, False) - torch.softmax(mu, -1)
            return self.project(g if g_vis is None else g + g_vis)
        logp = torch.log_softmax(self._logits(state), -1)
        h = torch.zeros_like(state) if mu is None else logp - torch.log_softmax(mu, -1)
        if g_vis is not None:
            h = h + g_vis
        if self.natural:
            return self.project(h)
        p = torch.exp(logp)
        return p * (h - (p * h).sum(-1, keepdim=True))
