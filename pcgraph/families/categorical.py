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

One softmax of the state and one of the prediction per inference step: softmax is
blind to a per-row constant, so log p - log q = (phi - mu) + a per-row constant, which
both updates drop -- the natural step by centring, the gradient step because
p . (h - <p, h>) ignores it -- and the direction needs no log-softmax at all; the
softmax a step needs in more than one place is computed once per value (``Memo``).
"""

from __future__ import annotations

from typing import Literal, Optional


from ..core.lazy import F, torch
from ..core.constants import MASK
from . import register
from .base import Family, FamilyOptions, Memo, per_sample
from .values import accuracy, plain_table

#: examples and most probable tokens a token distribution's text shows
TEXT_EXAMPLES = 4
TOP_K = 3


class CategoricalOptions(FamilyOptions):
    update: Optional[Literal["natural", "gradient"]] = None  # None: train.inference.update


def _is_index(state: torch.Tensor) -> bool:
    return not state.is_floating_point()


def _softmax(t: torch.Tensor) -> torch.Tensor:
    return torch.softmax(t, -1)


@register("categorical")
class Categorical(Family):
    Options = CategoricalOptions
    has_natural_update = True
    classes = True
    pictured = False
    style = ("#fdae6b", "hexagon")

    def __init__(self, options, shape, **kw):
        super().__init__(options, shape, **kw)
        self._of_mu = Memo()  # softmax(mu) (F: the error, the direction and the energy)
        self._of_state = Memo()  # softmax of the state's logits (F_KL: the mean, the direction)

    def _q(self, mu):
        """softmax(mu), once per prediction (never changed in place)."""
        return self._of_mu.get(mu, _softmax)

    def _p(self, state):
        """The probabilities of a free state's logits, once per state (never changed in place)."""
        return self._of_state.get(state, lambda x: torch.softmax(self._logits(x), -1))

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
        return self._p(state)

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
            if clamped and _is_index(state):  # -log q_y = logsumexp(mu) - mu_y
                return per_sample(torch.logsumexp(mu, -1) - mu.gather(-1, state.unsqueeze(-1)).squeeze(-1))
            logq = torch.log_softmax(mu, -1)
            if clamped:
                return per_sample(torch.xlogy(state, state) - state * logq)
            return per_sample(mean * (torch.log_softmax(self._logits(state), -1) - logq))
        s = self._q(mu)
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
        if self.kl:
            if clamped:
                # d/dmu of -sum p log softmax(mu) = s * sum(p) - p
                s = torch.softmax(mu, -1)
                if _is_index(state):
                    return self._sub_onehot_(s, state)
                return s * state.sum(-1, keepdim=True) - state
            return torch.softmax(mu, -1) - mean
        s = self._q(mu)
        if _is_index(state):
            # e = onehot - s; <s, e> = s_y - |s|^2; -s (e - <s, e>) = s (s + <s, e>) - s_y onehot
            s_y = s.gather(-1, state.unsqueeze(-1))
            c = s_y - (s * s).sum(-1, keepdim=True)
            return (s * (s + c)).scatter_add_(-1, state.unsqueeze(-1), -s_y)
        e = mean - s  # v - s
        return -s * (e - (s * e).sum(-1, keepdim=True))

    def grad_state(self, state, mu, params, g_vis, noise, prior=None):
        if not self.kl:
            g = torch.zeros_like(state) if mu is None else self.mean(state, False) - self._q(mu)
            return self.project(g if g_vis is None else g + g_vis)
        # h = log p - log q + g_vis up to a per-row constant, which both steps drop
        if mu is None:
            h = torch.zeros_like(state) if g_vis is None else g_vis
        else:
            h = state - mu if g_vis is None else (state - mu).add_(g_vis)
        if self.natural:
            return self.project(h)
        p = self._p(state)
        return p * (h - torch.linalg.vecdot(p, h).unsqueeze(-1))

    # ------------------------------------------------- what its values mean
    def score(self, value, truth, energy=None, mask=None):
        """The accuracy of the most probable class; for a sequence of classes with its
        energy given, also the cross-entropy per token (``ce_token``)."""
        correct, count = accuracy(value, truth.to(value.device))
        out = {"accuracy": (correct, count)}
        if energy is not None and len(self.shape) > 1:
            out["ce_token"] = (energy.sum(), count)
        return out

    def table(self, value):
        if not value.is_floating_point():  # class indices: one-hot rows
            value = F.one_hot(value.long(), self.shape[-1])
        return plain_table(value, "p")

    def text(self, value, decode=None):
        """A sequence's most probable tokens per position, with their probabilities."""
        if len(self.shape) < 2 or not value.is_floating_point():
            return None
        show = (lambda i: repr(decode([i]))) if decode is not None else str
        lines = []
        for i in range(min(TEXT_EXAMPLES, value.shape[0])):
            lines.append(f"example {i}:")
            p, t = value[i].float().topk(min(TOP_K, value.shape[-1]), -1)
            for pos in range(p.shape[0]):
                lines.append(
                    f"  {pos:3d}: " + ", ".join(f"{show(int(a))} {float(b):.3f}" for a, b in zip(t[pos], p[pos]))
                )
        return f"top-{TOP_K} tokens per position (probability)\n" + "\n".join(lines) + "\n"

    @classmethod
    def synthetic_target(cls, p, noise, gen):
        """The most probable class after shifting the teacher's output bias so that each
        class's mean log-probability over the examples is zero: a plain argmax of a
        random network mostly names one class."""
        logp = p.clamp_min(1e-30).log()
        return (logp - logp.mean(dim=0, keepdim=True)).argmax(-1).to(torch.int64)

    @classmethod
    def random_data(cls, shape, batch, gen):
        return torch.randint(0, shape[-1], (batch,) + tuple(shape[:-1]), generator=gen)
