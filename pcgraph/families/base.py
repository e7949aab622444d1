"""The distribution-family interface.

A node of the graph holds the parameters phi of a distribution X(phi); its parents
predict X^(mu). A family says

* ``param_shape``: the shape of phi (and mu) given the node's declared shape;
* how a state starts from a prediction (forward initialisation) and from data (clamping);
* ``mean``: the mean parameters of X(phi) (probabilities for categorical, phi itself
  for a Gaussian); ``visible``: what children see;
* ``energy``: its term E_i under F_KL (``kl=True``) or under standard PC (``kl=False``);
* optional prior terms.

Closed-form gradients (``grad_mu``, ``grad_state``, ``grad_params``) are optional:
the defaults here differentiate ``energy`` and ``visible`` with autograd, so a new
family only has to write its energy. Every closed form is tested against them.

Shapes: states carry a leading batch axis; ``energy`` returns one value per sample.
Clamped states may use a compact form (class indices for a categorical target).
"""

from __future__ import annotations

import weakref
from typing import Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from ..core.lazy import torch
from .values import plain_table, score_values


class FamilyOptions(BaseModel):
    """Options of a family (``@register`` adds the ``type`` the spec names it by)."""

    model_config = ConfigDict(extra="forbid")


class Memo:
    """``f(t)`` for the last tensor ``t`` asked about, given again while ``t`` is the
    same tensor with the same contents (version): e.g. the log-softmax of a prediction
    that one inference step needs for the error, the update direction and the energy.
    Values that autograd tracks, inference tensors and traced code are not kept; a
    kept value must never be changed in place."""

    __slots__ = ("_key", "_value")

    def __init__(self):
        self._key = None
        self._value = None

    def get(self, t: torch.Tensor, f) -> torch.Tensor:
        if t.requires_grad or t.is_inference() or torch.compiler.is_compiling():
            return f(t)
        key = self._key
        if key is not None and key[0]() is t and key[1] == t._version:
            return self._value
        value = f(t)
        self._key, self._value = (weakref.ref(t), t._version), value
        return value


def per_sample(t: torch.Tensor) -> torch.Tensor:
    """Sum every axis but the batch axis."""
    return t.sum(1) if t.dim() == 2 else t.reshape(t.shape[0], -1).sum(1)


class Family:
    name: ClassVar[str]
    Options: ClassVar[type[FamilyOptions]] = FamilyOptions
    #: a family that only has an F_KL form (the spec is rejected under ``energy: gaussian``)
    needs_kl: ClassVar[bool] = False
    #: whether ``prior:`` is meaningful on a node of this family
    supports_prior: ClassVar[bool] = False
    #: whether the family offers the natural (mirror-descent) state update
    has_natural_update: ClassVar[bool] = False
    #: whether children see random samples (noise drawn when the state is initialised)
    samples: ClassVar[bool] = False
    #: whether dE/dmu (``grad_mu``) is affine in the state, so that its first-order
    #: change over a step is its value after the step
    errors_affine: ClassVar[bool] = False
    #: its values are probabilities over classes on the last axis, and data may give
    #: class indices (a token distribution, a label)
    classes: ClassVar[bool] = False
    #: its values may be drawn as an image when the node's shape is one
    pictured: ClassVar[bool] = True
    #: a node of it may be clamped in part (a query's mask): the state holds the
    #: observed units themselves, and they are independent given the prediction
    holds_units: ClassVar[bool] = False
    #: (fill colour, Graphviz shape) of its nodes in drawings
    style: ClassVar[tuple[str, str]] = ("#fff7bc", "ellipse")

    @property
    def vis_is_state(self) -> bool:
        """True when children see the state itself (visible(x) = x), so a child's
        gradient adds to the state's gradient unchanged."""
        return False

    #: boolean mask of the entries the node's distribution may use (set by the compiler
    #: from the incoming edges, e.g. causal attention); None means every entry
    support: torch.Tensor | None = None

    def __init__(
        self,
        options: FamilyOptions,
        shape: tuple[int, ...],
        *,
        kl: bool = True,
        natural: bool = False,
        dtype: torch.dtype | None = None,
    ):
        self.options = options
        self.dtype = torch.float32 if dtype is None else dtype
        self.shape = tuple(shape)
        self.param_shape = self.param_shape_for(self.shape)
        self.kl = kl
        self.natural = natural and self.has_natural_update and kl

    # ----------------------------------------------------------------- shapes
    @classmethod
    def param_shape_for(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape)

    @classmethod
    def check_options(cls, options: FamilyOptions, shape: tuple[int, ...]) -> list[tuple[tuple, str]]:
        """Problems with the options given the node shape, as (relative path, message)."""
        return []

    @classmethod
    def node_param_shapes(cls, options: FamilyOptions, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Trainable parameters the node itself owns (e.g. a learned variance)."""
        return {}

    def init_params(self, params: dict[str, torch.Tensor]) -> None:
        for p in params.values():
            torch.nn.init.zeros_(p)

    # ---------------------------------------------------------------- states
    def from_prediction(self, mu: torch.Tensor, copy: bool = True) -> torch.Tensor:
        """The state a forward pass puts in the node (zero energy). ``copy=False``
        may return ``mu`` itself (for a pass that never updates states in place)."""
        return mu.clone() if copy else mu

    def from_data(self, value: torch.Tensor) -> torch.Tensor:
        """A clamped state from a data field."""
        return value.to(self.dtype)

    def mean(self, state: torch.Tensor, clamped: bool) -> torch.Tensor:
        return state

    def visible(self, state: torch.Tensor, mean: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return mean

    def prediction_value(self, mu: torch.Tensor) -> torch.Tensor:
        """The mean parameters of X^(mu): what ``Program.predict`` reports."""
        return mu

    def sample_noise(self, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        return None

    def from_prior(self, prior, batch: int, dtype, device) -> torch.Tensor:
        """The forward-pass state of a root node that only has a prior."""
        raise NotImplementedError(f"family '{self.name}' has no prior")

    def check_data(self, value: torch.Tensor) -> str | None:
        """Why a data tensor cannot be clamped to this node, or None."""
        if tuple(value.shape[1:]) == self.param_shape:
            return None
        return f"expected per-sample shape {list(self.param_shape)}, got {list(value.shape[1:])}"

    def describe(self, x: str, mu: str, clamped: bool) -> str:
        """The energy term as a formula, for ``pcgraph compile --print``."""
        return f"E({x}, {mu})"

    def describe_visible(self, x: str) -> str:
        """What children see of state ``x``, as a formula (``pcgraph compile --print``)."""
        return f"visible({x})"

    # ------------------------------------------------- what its values mean
    def score(self, value: torch.Tensor, truth: torch.Tensor, energy=None, mask=None) -> dict:
        """{metric: (sum, count)} of the mean parameters ``value`` against the data
        ``truth`` (``energy``: the node's energy per sample, as a target; ``mask``: True
        where the node was observed)."""
        return score_values(value, truth, mask)

    def table(self, value: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """(column names, [N, columns]) of mean parameters, for a CSV file."""
        return plain_table(value, "x")

    def text(self, value: torch.Tensor, decode=None) -> str | None:
        """A readable text of mean parameters (``decode``: token ids -> text), or None."""
        return None

    def decoded(self, value: torch.Tensor, sample: torch.Tensor | None = None):
        """Mean parameters as a query reports them: a tensor, or {part: tensor}."""
        return value

    @classmethod
    def synthetic_target(cls, p: torch.Tensor, noise: float, gen: torch.Generator) -> torch.Tensor:
        """A data field for a target from a teacher's predicted mean parameters ``p``
        [N, ...]: the values a dataset of such targets would hold."""
        return p

    @classmethod
    def random_data(cls, shape: tuple[int, ...], batch: int, gen: torch.Generator) -> torch.Tensor:
        """A random batch of data for a target of this family and shape (benchmarks):
        uniform values of the node's parameter shape."""
        return torch.rand((batch,) + cls.param_shape_for(tuple(shape)), generator=gen)

    # ---------------------------------------------------------------- energy
    def energy(self, state, mean, mu, params, clamped: bool) -> torch.Tensor:
        raise NotImplementedError

    def prior_energy(self, state, mean, prior, params) -> torch.Tensor:
        raise NotImplementedError(f"family '{self.name}' has no prior term")

    def project(self, direction: torch.Tensor) -> torch.Tensor:
        """Restrict an update direction to the coordinates that matter (identity here;
        a masked categorical drops the entries outside its support)."""
        return direction

    def step_scale(self, state, mu, params, prior):
        """The inverse curvature of the node's own terms (its energy given the
        prediction ``mu``, None for a node without parents, plus its ``prior``), by which a
        preconditioned state step multiplies the update direction: a float (computed
        from no tensor, so the same for a whole inference call) or a tensor
        broadcastable to the state. 1.0 here: right for families whose update is already
        natural (the mirror-descent step of categorical and bernoulli states)."""
        return 1.0

    def energy_from_error(self, error: Callable[[], torch.Tensor], params) -> torch.Tensor | None:
        """The energy per sample [B] from ``error()``, ``grad_mu``'s value at the same
        state and prediction, where that gives ``energy``'s value bit for bit (so the
        fast engine need not take the state's difference from its prediction twice);
        None (``error`` not called): ``energy`` computes it."""
        return None

    # ------------------------------------------------- gradients (autograd defaults)
    def grad_mu(self, state, mean, mu, params, clamped: bool) -> torch.Tensor:
        """dE/dmu for the per-sample energy."""
        with torch.enable_grad():
            m = mu.detach().requires_grad_(True)
            e = self.energy(state, mean, m, params, clamped).sum()
            return torch.autograd.grad(e, m)[0]

    def grad_state(self, state, mu, params, g_vis, noise, prior=None) -> torch.Tensor:
        """The update direction of a free state: d/dstate of (own energy + prior +
        <visible, g_vis>), or for natural updates the same gradient taken with
        respect to the mean parameters. ``mu``, ``g_vis`` and ``prior`` may be None (no
        such term). Returns a new tensor: the inference engine adds to it in place."""
        with torch.enable_grad():
            x = state.detach().requires_grad_(True)
            m = self.mean(x, False)
            if self.natural:
                m = m.detach().requires_grad_(True)
            total = 0.0
            if mu is not None:
                total = self.energy(x, m, mu.detach(), params, False).sum()
            if prior is not None:
                total = total + self.prior_energy(x, m, prior, params).sum()
            if g_vis is not None:
                total = total + (self.visible(x, m, noise) * g_vis).sum()
            wrt = m if self.natural else x
            if not torch.is_tensor(total) or not total.requires_grad:
                return torch.zeros_like(x)
            return self.project(torch.autograd.grad(total, wrt)[0])

    def grad_params(self, state, mean, mu, params, clamped: bool) -> dict[str, torch.Tensor]:
        """d/dparams of the batch-summed energy."""
        if not params:
            return {}
        with torch.enable_grad():
            leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            e = self.energy(state, mean, mu, leaves, clamped).sum()
            grads = torch.autograd.grad(e, list(leaves.values()), allow_unused=True)
        return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(leaves.items(), grads)}

