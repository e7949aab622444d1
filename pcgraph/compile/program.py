"""Program: a compiled PCGraph -- parameters, node states, energies, inference."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from .. import activations
from ..errors import CompileError, DataError, Issue
from ..graph import EdgeInfo, PCGraph
from ..spec.models import StateOptimizerSpec
from .arrival import arrival_grads
from .engine import Engine
from .optim import StateOptimizer, make_state_optimizer, make_weight_optimizer
from .query import run_query
from .reference import infer_reference
from .state import State


def _as_opt(cfg) -> StateOptimizerSpec:
    if cfg is None or isinstance(cfg, StateOptimizerSpec):
        return cfg
    if isinstance(cfg, Mapping):
        return StateOptimizerSpec.model_validate(dict(cfg))
    raise TypeError(f"optimizer must be a mapping like {{'type': 'sgd', 'lr': 0.1}}, got {cfg!r}")


class Program(nn.Module):
    """The compiled network. Parameters, states and batches live on one device.

    Energies are per sample and summed over a node's units; ``energy`` averages over
    the batch (the weights' objective), while inference steps each sample's state
    along the gradient of its own energy.
    """

    def __init__(self, graph: PCGraph, energy: str = "kl", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        if energy not in ("kl", "gaussian"):
            raise CompileError(Issue(("train", "energy"), f"energy must be kl or gaussian, not {energy}"))
        self.graph = graph
        self.energy_kind = energy
        self.kl = energy == "kl"
        self.train_cfg = graph.spec.train
        self.dtype = dtype
        self.device_ = torch.device(device)
        #: use the closed-form fast path for inference and weight gradients
        self.fast = True

        issues = []
        for n in graph.nodes.values():
            if n.family_cls is not None and n.family_cls.needs_kl and not self.kl:
                issues.append(
                    Issue(("nodes", n.name, "family"), f"family '{n.family}' on node '{n.name}' has no standard-PC form: it needs the KL energy (energy kl)", n.location)
                )
        if issues:
            raise CompileError(issues)

        update = self.train_cfg.inference.update
        self.families = {}
        for n in graph.nodes.values():
            if n.family_cls is None:
                continue
            choice = getattr(n.options, "update", None) or update
            self.families[n.name] = n.family_cls(n.options, n.shape, kl=self.kl, natural=choice == "natural", dtype=dtype)

        self.edge_modules = nn.ModuleDict()
        self.acts: dict[str, activations.Activation] = {}
        for e in graph.edges:
            act = activations.get(e.activation)
            self.acts[e.name] = act
            self.edge_modules[e.name] = e.transform_cls(e.options, e.in_shapes, e.out_shape, self._init_activation(e, act))
        for e in graph.edges:
            if e.share:
                root = self.edge_modules[e.share]
                for pname in e.shared_names:
                    setattr(self.edge_modules[e.name], pname, getattr(root, pname))

        self.node_params = nn.ModuleDict()
        for n in graph.nodes.values():
            if n.node_params:
                pd = nn.ParameterDict({k: nn.Parameter(torch.empty(s)) for k, s in n.node_params.items()})
                self.families[n.name].init_params(dict(pd.items()))
                self.node_params[n.name] = pd

        self.nodes = graph.nodes
        self.edges: list[EdgeInfo] = list(graph.edges)
        self.in_edges = {n: graph.in_edges(n) for n in self.nodes}
        self.out_edges = {n: graph.out_edges(n) for n in self.nodes}

        self.to(device=self.device_, dtype=dtype)
        for n, fam in self.families.items():
            masks = [self.edge_modules[e.name].support() for e in self.in_edges[n]]
            if masks and all(m is not None for m in masks):
                support = masks[0]
                for m in masks[1:]:
                    support = support | m
                fam.support = support.to(self.device_)

        self.order = graph.order if graph.order is not None else list(graph.nodes)
        self.inputs = [n for n in self.order if self.nodes[n].role == "input"]
        self.targets = [n for n in self.order if self.nodes[n].role == "target"]
        self.energy_nodes = [n for n in self.order if self.nodes[n].role != "input"]
        self.sampling = [n for n in self.order if n in self.families and self.families[n].samples]
        # generations of free nodes, for the sweep schedule (reverse topological order)
        gens = graph.generations or [self.order]
        self.generations = [[n for n in g if self.nodes[n].role != "input"] for g in gens]
        self._weight_optimizer = None
        #: the rows (start, stop, of total) of a larger batch that this program's batch
        #: is -- data-parallel training: per-example random draws are made for the
        #: whole batch and sliced, so they do not depend on how the batch is split
        self.rows: tuple[int, int, int] | None = None
        #: called before every weight step once the local gradients are in ``.grad``
        #: (data-parallel training combines the processes' gradients there)
        self.grad_sync = None
        if self.train_cfg.method == "pc":
            self.weight_gradient()  # a choice the graph cannot honour is a compile error

    def _init_activation(self, e: EdgeInfo, act):
        """The nonlinearity that follows an edge, which its initialisation suits: the
        edge's activation, or else the target node's ``output`` (mu = W.f(x) and
        mu = f(W.x) then start from the same weights)."""
        if act.name != "identity":
            return act
        out = getattr(self.graph.nodes[e.target].options, "output", None)
        return activations.get(out) if out else act

    # ------------------------------------------------------------------ info
    @property
    def device(self) -> torch.device:
        return self.device_

    def params_of(self, node: str) -> dict[str, torch.Tensor]:
        return dict(self.node_params[node].items()) if node in self.node_params else {}

    # ------------------------------------------------------------------ data
    def _clamp(self, name: str, value: Any, batch_size: int | None) -> torch.Tensor:
        info = self.nodes[name]
        if not torch.is_tensor(value):
            try:
                value = torch.as_tensor(value)
            except Exception as e:  # noqa: BLE001 - reported as a data error
                raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' for node '{name}' is not array-like: {e}", info.location)) from None
        value = value.to(self.device_, non_blocking=True)
        if batch_size is not None and value.shape[:1] != (batch_size,):
            raise DataError(
                Issue(("nodes", name, "bind"), f"data field '{info.bind}' has batch size {value.shape[0] if value.dim() else 0}, other fields have {batch_size}", info.location)
            )
        per = tuple(value.shape[1:])
        if info.role == "input":
            if info.dtype == "long":
                if value.is_floating_point() or value.is_complex():
                    raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' holds {value.dtype} but node '{name}' takes integer tokens (dtype long)", info.location))
                value = value.long()
            elif not value.is_floating_point() and info.shape and per == info.shape[:-1]:
                value = torch.nn.functional.one_hot(value.long(), info.shape[-1]).to(self.dtype)  # class indices
                per = info.shape
            else:
                value = value.to(self.dtype)
            if per != info.shape:
                if value[0].numel() == math.prod(info.shape):
                    value = value.reshape((value.shape[0],) + info.shape)
                else:
                    raise DataError(
                        Issue(("nodes", name, "bind"), f"data field '{info.bind}' has per-sample shape {list(per)}, node '{name}' has shape {list(info.shape)}", info.location)
                    )
            return value
        fam = self.families[name]
        problem = fam.check_data(value)
        if problem is not None and value.is_floating_point() and value[0].numel() == math.prod(info.param_shape):
            value = value.reshape((value.shape[0],) + info.param_shape)
            problem = fam.check_data(value)
        if problem is not None:
            raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' does not fit {info.family} node '{name}': {problem} (dtype {value.dtype})", info.location))
        return fam.from_data(value)

    def _clamped_from_batch(self, batch: Mapping[str, Any], *, targets: bool = True) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        size = None
        for n in self.inputs + (self.targets if targets else []):
            info = self.nodes[n]
            if info.bind not in batch:
                if info.role == "input":
                    raise DataError(Issue(("nodes", n, "bind"), f"the batch has no field '{info.bind}' for input node '{n}' (fields: {', '.join(batch)})", info.location))
                continue
            out[n] = self._clamp(n, batch[info.bind], size)
            size = out[n].shape[0]
        if size is None:
            raise DataError(Issue(("<spec>",), "the batch binds no node"))
        return out

    def _per_example(self, draw, batch_size: int) -> torch.Tensor:
        """``draw(batch_size)``, a random tensor with one row per example; drawn for the
        whole batch and sliced when this batch is ``self.rows`` of a larger one."""
        if self.rows is None:
            return draw(batch_size)
        start, stop, total = self.rows
        if stop - start != batch_size:
            raise ValueError(f"the batch has {batch_size} examples, but rows {start}:{stop} of {total} were announced")
        return draw(total)[start:stop]

    def _draw_noise(self, batch_size: int, noise: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        out = {}
        like = torch.empty(0, dtype=self.dtype, device=self.device_)
        for n in self.sampling:
            if noise is not None and n in noise:
                out[n] = noise[n].to(self.device_, self.dtype)
            else:
                out[n] = self._per_example(lambda b, n=n: self.families[n].sample_noise(b, like), batch_size)
        return out

    # ------------------------------------------------------------- forward pass
    def _edge_forward(self, e: EdgeInfo, vis: Mapping[str, torch.Tensor], inplace: bool = False):
        """(output after activation, pre-activation) of one edge. ``inplace`` (no
        autograd) applies the activation in place when the pre-activation is not
        needed for its derivative and the output is no view of an input (a flatten
        edge reshapes its source's state: in place would overwrite the state); the
        pre-activation is then None."""
        try:
            a = self.edge_modules[e.name](*[vis[s] for s in e.sources])
        except (RuntimeError, ValueError, IndexError) as exc:
            raise CompileError(Issue(("edges", e.index), f"edge {' + '.join(e.sources)} -> {e.target} ({e.transform}) failed: {exc}", e.location)) from exc
        act = self.acts[e.name]
        if act.name == "identity":
            return a, a
        if inplace and not act.needs_pre and act.fn_ is not None and not a._is_view() and all(a is not vis[s] for s in e.sources):
            return act.fn_(a), None
        return act.fn(a), a

    def _predict(self, n: str, vis, out=None, pre=None) -> torch.Tensor:
        mu = None
        for e in self.in_edges[n]:
            y, a = self._edge_forward(e, vis)
            if out is not None:
                out[e.name] = y
                pre[e.name] = a
            mu = y if mu is None else mu + y
        return mu

    def _forward(self, clamped: dict, noise: dict, batch_size: int, copy: bool = True):
        """The forward pass: every free node takes its prediction (zero energy).
        ``copy=False`` lets states alias predictions (no in-place updates follow)."""
        values, vis, mean, mu, out, pre = {}, {}, {}, {}, {}, {}
        for n in self.order:
            info = self.nodes[n]
            if info.role != "input" and self.in_edges[n]:
                mu[n] = self._predict(n, vis, out, pre)
            if n in clamped:
                x = clamped[n]
            elif info.role == "input":
                raise DataError(Issue(("nodes", n), f"input node '{n}' has no data", info.location))
            elif n in mu:
                x = self.families[n].from_prediction(mu[n], copy)
            else:
                x = self.families[n].from_prior(info.prior, batch_size, self.dtype, self.device_)
            values[n] = x
            m, v = self._see(n, x, clamped, noise)
            if m is not None:
                mean[n] = m
            if v is not None:
                vis[n] = v
        return values, vis, mean, mu, out, pre

    # ------------------------------------------------------------------ states
    def init_state(self, batch: Mapping[str, Any], init: str = "forward", noise: Mapping[str, torch.Tensor] | None = None) -> State:
        """A State for ``batch`` (bind name -> tensor). Inputs are clamped, and targets
        too when the batch has their field. ``init``: forward | zeros | normal."""
        clamped = self._clamped_from_batch(batch)
        B = next(iter(clamped.values())).shape[0]
        nz = self._draw_noise(B, noise)
        with torch.no_grad():
            if init == "forward":
                if not self.graph.is_dag:
                    raise CompileError(Issue(("train", "inference", "init"), "a cyclic graph has no forward pass: use init='zeros' or 'normal'"))
                values, vis, mean, mu, out, pre = self._forward(clamped, nz, B)
                state = State(values, nz, frozenset(clamped))
                state._engine = Engine(self, state, vis, mean, mu, out, pre, fresh=True)
                return state
            if init not in ("zeros", "normal"):
                raise ValueError(f"init must be forward, zeros or normal, got {init!r}")
            values = {}
            for n in self.order:
                if n in clamped:
                    values[n] = clamped[n]
                else:
                    tail = self.nodes[n].param_shape
                    if init == "zeros":
                        values[n] = torch.zeros((B,) + tail, dtype=self.dtype, device=self.device_)
                    else:
                        values[n] = self._per_example(lambda b, tail=tail: torch.randn((b,) + tail, dtype=self.dtype, device=self.device_), B)
            state = State(values, nz, frozenset(clamped))
            state._engine = Engine.from_state(self, state)
            return state

    # ------------------------------------------------------------------ energies
    def _see(self, n: str, x: torch.Tensor, clamped, noise: Mapping, natural_leaves: dict | None = None):
        """(mean parameters, what children see) of node ``n`` holding ``x``: an input has
        no mean and is seen as it is; a node without children is not seen (None). A node
        named in ``natural_leaves`` gets its mean as an autograd leaf (stored there)."""
        if self.nodes[n].role == "input":
            return None, x
        fam = self.families[n]
        m = fam.mean(x, n in clamped)
        if natural_leaves is not None and n in natural_leaves:
            m = natural_leaves[n] = m if m.requires_grad else m.detach().requires_grad_(True)
        return m, (fam.visible(x, m, noise.get(n)) if self.out_edges[n] else None)

    def _add_prior(self, n: str, e, x: torch.Tensor, mean, clamped, params):
        """``e`` plus node ``n``'s prior term, if it has a prior and is free."""
        prior = self.nodes[n].prior
        if prior is None or n in clamped:
            return e
        p = self.families[n].prior_energy(x, mean, prior, params)
        return p if e is None else e + p

    def _vis_mean(self, state: Mapping[str, torch.Tensor], noise: Mapping, clamped: frozenset, natural_leaves: dict | None = None):
        """({node: what children see}, {node: mean parameters}) of a state."""
        vis, mean = {}, {}
        for n in self.order:
            m, v = self._see(n, state[n], clamped, noise, natural_leaves)
            if m is not None:
                mean[n] = m
            if v is not None:
                vis[n] = v
        return vis, mean

    def _terms(self, state: Mapping[str, torch.Tensor], noise: Mapping, clamped: frozenset, natural_leaves: dict | None = None):
        """Per-node energies [B] computed from scratch (differentiable)."""
        vis, mean = self._vis_mean(state, noise, clamped, natural_leaves)
        energies, mus = {}, {}
        for n in self.energy_nodes:
            fam = self.families[n]
            x = state[n]
            e = None
            if self.in_edges[n]:
                mus[n] = self._predict(n, vis)
                e = fam.energy(x, mean[n], mus[n], self.params_of(n), n in clamped)
            energies[n] = self._add_prior(n, e, x, mean[n], clamped, self.params_of(n))
        return energies, mus

    def node_energies(self, state: State) -> dict[str, torch.Tensor]:
        """{node: energy per sample [B]} for every non-input node, prior terms included."""
        return self._terms(state, state.noise, state.clamped)[0]

    def energy(self, state: State) -> torch.Tensor:
        """Batch mean of the per-sample total energy (differentiable)."""
        terms = self.node_energies(state)
        return torch.stack(list(terms.values())).sum(0).mean()

    def predictions(self, state: State) -> dict[str, torch.Tensor]:
        """{node: mu [B, *param_shape]}: the prediction from the parents' current
        states, before the family's link (logits for categorical)."""
        return self._terms(state, state.noise, state.clamped)[1]

    def _kl_family(self, n: str):
        """The F_KL form of node n's family (the program's own when compiled with kl)."""
        if self.kl:
            return self.families[n]
        cache = self.__dict__.setdefault("_kl_families", {})
        if n not in cache:
            info = self.nodes[n]
            cache[n] = info.family_cls(info.options, info.shape, kl=True, natural=False, dtype=self.dtype)
        return cache[n]

    def loss_terms(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None, *, kl_targets: bool = False):
        """Under the plain forward pass: ({node: energy [B]} for the targets and the
        prior terms, {target: prediction mu}). Differentiable w.r.t. parameters.
        ``kl_targets`` scores the targets with their F_KL energy whatever the program's
        energy (cross-entropy for a categorical target), so that losses compare across
        energies."""
        if not self.graph.is_dag:
            raise CompileError(Issue(("train", "method"), "backprop needs a forward pass; this graph is cyclic"))
        clamped = self._clamped_from_batch(batch)
        missing = [t for t in self.targets if t not in clamped]
        if missing:
            info = self.nodes[missing[0]]
            raise DataError(Issue(("nodes", missing[0], "bind"), f"the batch has no field '{info.bind}' for target node '{missing[0]}'", info.location))
        B = next(iter(clamped.values())).shape[0]
        nz = self._draw_noise(B, noise)
        values, vis, mean, mu, _, _ = self._forward(clamped, nz, B, copy=False)
        terms = {}
        for n in self.energy_nodes:
            fam = self.families[n]
            e = None
            if n in clamped:
                if kl_targets and not self.kl:
                    kfam = self._kl_family(n)
                    e = kfam.energy(values[n], kfam.mean(values[n], True), mu[n], self.params_of(n), True)
                else:
                    e = fam.energy(values[n], mean[n], mu[n], self.params_of(n), True)
            e = self._add_prior(n, e, values[n], mean[n], clamped, self.params_of(n))
            if e is not None:
                terms[n] = e
        return terms, {t: mu[t] for t in self.targets}

    def loss_bp(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The backprop loss: batch mean of the target nodes' energies plus the prior
        terms, under the plain forward pass (differentiable w.r.t. parameters)."""
        terms, _ = self.loss_terms(batch, noise)
        return torch.stack(list(terms.values())).sum(0).mean()

    @torch.no_grad()
    def evaluate_batch(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None):
        """({node: energy [B]}, {target: mu}) for evaluation: the BP loss terms under the
        forward pass, targets scored by their F_KL energy (cyclic graphs: the energies after inference with targets clamped,
        and predictions from inference with targets free)."""
        if self.graph.is_dag:
            return self.loss_terms(batch, noise, kl_targets=True)
        state = self.init_state(batch, init=self.train_cfg.inference.init, noise=noise)
        self.infer(state)
        terms = self.node_energies(state)
        inputs_only = {self.nodes[n].bind: batch[self.nodes[n].bind] for n in self.inputs}
        free = self.init_state(inputs_only, init=self.train_cfg.inference.init, noise=noise)
        cfg = self.train_cfg.inference
        self.infer(free, steps=cfg.eval_steps if cfg.eval_steps is not None else cfg.steps)
        mus = self.predictions(free)
        return terms, {t: mus[t] for t in self.targets}

    @torch.no_grad()
    def forward(self, batch: Mapping[str, Any], fixed: Mapping[str, torch.Tensor] | None = None, noise: Mapping[str, torch.Tensor] | None = None) -> State:
        """The forward pass as a State: every free node takes its prediction, except
        the nodes in ``fixed`` (node -> state), which keep the given state -- e.g. a
        latent code to decode. Targets are left free (predicted)."""
        clamped = self._clamped_from_batch(batch, targets=False)
        for n, v in (fixed or {}).items():
            if n not in self.nodes:
                raise KeyError(f"no node '{n}'")
            clamped[n] = v.to(self.device_, self.dtype) if v.is_floating_point() else v.to(self.device_)
        B = next(iter(clamped.values())).shape[0]
        nz = self._draw_noise(B, noise)
        values, *_ = self._forward(clamped, nz, B)
        return State(values, nz, frozenset(n for n in clamped if self.nodes[n].role == "input"))

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], steps: int | None = None) -> dict[str, torch.Tensor]:
        """The forward-pass values of the target nodes: the mean parameters of the
        predicted distribution (probabilities for categorical and bernoulli, the mean
        for Gaussians). Cyclic graphs run inference with the targets free instead."""
        clamped = self._clamped_from_batch(batch, targets=False)
        B = next(iter(clamped.values())).shape[0]
        nz = self._draw_noise(B, None)
        if self.graph.is_dag:
            _, _, _, mu, _, _ = self._forward(clamped, nz, B, copy=False)
        else:
            inputs_only = {self.nodes[n].bind: batch[self.nodes[n].bind] for n in self.inputs}
            state = self.init_state(inputs_only, init=self.train_cfg.inference.init)
            cfg = self.train_cfg.inference
            self.infer(state, steps=cfg.eval_steps if steps is None and cfg.eval_steps is not None else steps)
            mu = self.predictions(state)
        return {t: self.families[t].prediction_value(mu[t]) for t in self.targets}

    # ------------------------------------------------------------------ inference
    def infer(self, state: State, steps: int | None = None, optimizer=None, schedule: str | None = None, *, fast: bool | None = None, weight_step=None) -> State:
        """Run ``steps`` local inference updates on the free states, in place.

        ``optimizer`` is a mapping like ``{"type": "sgd", "lr": 0.1, "precondition":
        true, "guard": true}`` (or a built StateOptimizer; default: the spec's);
        ``schedule`` is sweep (by topological generation, from the targets back to the
        inputs), sync (all free nodes at once) or incremental (a weight step after
        every inference step, using ``weight_step`` or the program's weight optimizer)."""
        cfg = self.train_cfg.inference
        T = cfg.steps if steps is None else int(steps)
        opt = optimizer if isinstance(optimizer, StateOptimizer) else make_state_optimizer(_as_opt(optimizer) or cfg.optimizer)
        schedule = schedule or cfg.schedule
        if schedule not in ("sync", "sweep", "incremental"):
            raise ValueError(f"schedule must be sync, sweep or incremental, got {schedule!r}")
        if schedule == "incremental" and weight_step is None:
            weight_step = self._default_weight_step
        fast = self.fast if fast is None else fast
        with torch.no_grad():
            if fast:
                self._engine_for(state).infer(T, opt, schedule, weight_step)
            else:
                infer_reference(self, state, T, opt, schedule, weight_step)
        return state

    def _engine_for(self, state: State) -> Engine:
        """The state's fast-path caches, built from the state if it has none for this program."""
        if state._engine is None or state._engine.prog is not self:
            state._engine = Engine.from_state(self, state)
        return state._engine

    def _free_groups(self, state: State, schedule: str) -> list[list[str]]:
        free = [n for n in self.order if n not in state.clamped and self.nodes[n].role != "input"]
        if schedule != "sweep":
            return [free]
        return [[n for n in g if n in free] for g in reversed(self.generations) if any(n in free for n in g)]

    def query(self, clamp: Mapping[str, Any], infer=None, **kw):
        """Clamp any nodes ({node: value or "prior"}) and infer the others on the
        clamped graph (see ``pcgraph.compile.query.run_query`` for ``masks``,
        ``batch`` and ``steps``). Returns a QueryResult."""
        return run_query(self, clamp, infer, **kw)

    # ------------------------------------------------------------------ weights
    def weight_grads(self, state: State, *, fast: bool | None = None) -> dict[str, torch.Tensor]:
        """Set ``.grad`` of every parameter to the gradient of ``energy(state)`` (the
        batch mean); return the per-node energies [B] at this state."""
        fast = self.fast if fast is None else fast
        if fast:
            with torch.no_grad():
                return self._engine_for(state).weight_grads()
        params = list(self.parameters())
        with torch.enable_grad():
            terms = self.node_energies(state)
            total = torch.stack(list(terms.values())).sum(0).mean()
            grads = torch.autograd.grad(total, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        return {k: v.detach() for k, v in terms.items()}

    @property
    def weight_optimizer(self) -> torch.optim.Optimizer:
        """The weights' optimiser, built from ``train.weights.optimizer``."""
        if self._weight_optimizer is None:
            self._weight_optimizer = make_weight_optimizer(self.parameters(), self.train_cfg.weights.optimizer)
        return self._weight_optimizer

    def _default_weight_step(self) -> None:
        if self.grad_sync is not None:
            self.grad_sync()
        clip = self.train_cfg.weights.grad_clip
        if clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), clip)
        self.weight_optimizer.step()

    # ------------------------------------------------------------------ steps
    def pc_step(self, batch: Mapping[str, Any], *, steps: int | None = None, schedule: str | None = None) -> dict[str, torch.Tensor]:
        """One PC training step, then ``weights.updates`` weight steps, each from the
        gradient ``weights.gradient`` names. equilibrium: forward init, T inference steps,
        the gradients at the inferred state. arrival: forward init and the arrival sweep
        (inference past it would not change the gradient, so the step ends there), a
        fresh forward pass before each further update. Returns the per-node energies [B]
        at the state the gradient was taken from (no sync)."""
        cfg = self.train_cfg
        schedule = schedule or cfg.inference.schedule
        arrival = self.weight_gradient(schedule) == "arrival"
        state = self.init_state(batch, init=cfg.inference.init)
        if not arrival:
            self.infer(state, steps=steps, schedule=schedule)
        if schedule == "incremental":
            with torch.no_grad():
                return self.node_energies(state)
        terms = None
        for k in range(cfg.weights.updates):
            if arrival:
                if k:  # the next gradient at the new weights: a fresh forward pass
                    state = self.init_state(batch, noise=state.noise)
                self.arrival_grads(state)
                if terms is None:
                    with torch.no_grad():
                        terms = state._engine.energies()
            else:
                terms = self.weight_grads(state)
            self._default_weight_step()
            if state._engine is not None:
                state._engine.weights_changed()
        return terms

    def weight_gradient(self, schedule: str | None = None) -> str:
        """Where PC takes its weight gradient: ``train.weights.gradient``, with auto
        resolved (arrival needs a forward pass and a schedule that leaves the weights
        alone during inference)."""
        cfg = self.train_cfg
        choice = cfg.weights.gradient
        schedule = schedule or cfg.inference.schedule
        forward = self.graph.is_dag and cfg.inference.init == "forward" and schedule != "incremental"
        if choice == "auto":
            return "arrival" if forward else "equilibrium"
        if choice == "arrival" and not forward:
            raise CompileError(Issue(("train", "weights", "gradient"), "gradients at arrival need a forward pass and a non-incremental schedule"
                                     " (a DAG, train.inference.init=forward): use train.weights.gradient=equilibrium"))
        return choice

    def arrival_grads(self, state: State) -> None:
        """Set ``.grad`` of every parameter to its gradient at the error's first arrival
        (``compile/arrival.py``), from a forward-initialised ``state`` (left as it is)."""
        eng = state._engine
        if eng is not None and eng.prog is self:
            eng._check_outside_edits()
        if eng is None or eng.prog is not self or not eng.fresh:
            raise CompileError(Issue(("train", "weights", "gradient"), "gradients at arrival start from a forward-initialised state: set train.inference.init=forward"))
        with torch.no_grad():
            arrival_grads(eng)

    def bp_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One backprop step on the same graph: loss_bp, backward, weight step.
        Returns the loss terms per node [B] (targets and priors; no sync)."""
        opt = self.weight_optimizer
        opt.zero_grad(set_to_none=True)
        terms, _ = self.loss_terms(batch)
        torch.stack(list(terms.values())).sum(0).mean().backward()
        self._default_weight_step()
        return {k: v.detach() for k, v in terms.items()}

    def step_fn(self, method: str | None = None, compile: bool | None = None, backend: str = "inductor", mode: str | None = None):
        """The training step for ``method`` (pc or bp): batch -> per-node energies (pc)
        or the loss (bp), parameters updated. With ``compile`` the whole step runs under
        ``torch.compile`` with ``backend`` and ``mode`` (e.g. "reduce-overhead": CUDA
        graphs; same numbers; the first call pays the compile time)."""
        method = method or self.train_cfg.method
        fn = self.pc_step if method == "pc" else self.bp_step
        compile = self.train_cfg.compile if compile is None else compile
        if compile:
            _ = self.weight_optimizer  # built eagerly, outside the compiled region
            return torch.compile(fn, backend=backend, mode=mode)
        return fn

    # ------------------------------------------------------------------ listing
    def listing(self) -> str:
        from .printer import listing

        return listing(self)
