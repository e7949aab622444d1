"""Program: a compiled PCGraph -- parameters, node states, energies, inference."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..core import activations
from ..core.errors import CompileError, DataError, Issue
from ..graph import EdgeInfo, PCGraph
from ..schedules import Schedule, get as get_schedule
from ..spec.models import StateOptimizerSpec
from .clamp import Clamping
from .energy import Energies
from .engine import Engine
from .optim import StateOptimizer, make_state_optimizer
from .printer import listing
from .query import run_query
from .reference import infer_reference
from .state import State
from .steps import Steps


def _as_opt(cfg) -> StateOptimizerSpec:
    if cfg is None or isinstance(cfg, StateOptimizerSpec):
        return cfg
    if isinstance(cfg, Mapping):
        return StateOptimizerSpec.model_validate(dict(cfg))
    raise TypeError(f"optimizer must be a mapping like {{'type': 'sgd', 'lr': 0.1}}, got {cfg!r}")


def _same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` is ``b`` or a view of its memory (e.g. flatten's output): an
    in-place activation on ``a`` would then overwrite ``b``."""
    return a is b or a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


class Program(Clamping, Energies, Steps, nn.Module):
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

        self._check_energy(graph)
        self._build_families(graph, dtype)
        self._build_transforms(graph)
        self._build_node_params(graph)
        self.nodes = graph.nodes
        self.edges: list[EdgeInfo] = list(graph.edges)
        self.in_edges = {n: graph.in_edges(n) for n in self.nodes}
        self.out_edges = {n: graph.out_edges(n) for n in self.nodes}
        self.to(device=self.device_, dtype=dtype)
        self._set_supports()
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

    def _check_energy(self, graph: PCGraph) -> None:
        issues = [
            Issue(("nodes", n.name, "family"), f"family '{n.family}' on node '{n.name}' has no standard-PC form: it needs the KL energy (energy kl)", n.location)
            for n in graph.nodes.values()
            if n.family_cls is not None and n.family_cls.needs_kl and not self.kl
        ]
        if issues:
            raise CompileError(issues)

    def _build_families(self, graph: PCGraph, dtype) -> None:
        update = self.train_cfg.inference.update
        self.families = {}
        for n in graph.nodes.values():
            if n.family_cls is not None:
                choice = getattr(n.options, "update", None) or update
                self.families[n.name] = n.family_cls(n.options, n.shape, kl=self.kl, natural=choice == "natural", dtype=dtype)

    def _build_transforms(self, graph: PCGraph) -> None:
        self.transforms = {}  # edge name -> Transform; their parameters live in edge_modules
        self.edge_modules = nn.ModuleDict()
        self.acts: dict[str, activations.Activation] = {}
        for e in graph.edges:
            act = activations.get(e.activation)
            self.acts[e.name] = act
            t = e.transform_cls(e.options, e.in_shapes, e.out_shape, self._init_activation(e, act))
            self.transforms[e.name] = t
            self.edge_modules[e.name] = t.module
        for e in graph.edges:
            if e.share:
                root = self.edge_modules[e.share]
                for pname in e.shared_names:
                    setattr(self.edge_modules[e.name], pname, getattr(root, pname))

    def _build_node_params(self, graph: PCGraph) -> None:
        self.node_params = nn.ModuleDict()
        for n in graph.nodes.values():
            if n.node_params:
                pd = nn.ParameterDict({k: nn.Parameter(torch.empty(s)) for k, s in n.node_params.items()})
                self.families[n.name].init_params(dict(pd.items()))
                self.node_params[n.name] = pd

    def _set_supports(self) -> None:
        """A categorical node fed only by masked edges keeps its states on their support."""
        for n, fam in self.families.items():
            masks = [self.transforms[e.name].support() for e in self.in_edges[n]]
            if masks and all(m is not None for m in masks):
                support = masks[0]
                for m in masks[1:]:
                    support = support | m
                fam.support = support.to(self.device_)

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

    def to(self, *args, **kwargs) -> "Program":
        """Move and/or cast the program (as ``nn.Module.to``): parameters, the dtype new
        states take, the families' dtype and masks follow."""
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        super().to(*args, **kwargs)
        if device is not None:
            self.device_ = torch.device(device)
        if dtype is not None and dtype.is_floating_point:
            self.dtype = dtype
        for fam in list(getattr(self, "families", {}).values()) + list(self.__dict__.get("_kl_families", {}).values()):
            fam.dtype = self.dtype
            if fam.support is not None:
                fam.support = fam.support.to(self.device_)
        return self

    def params_of(self, node: str) -> dict[str, torch.Tensor]:
        return dict(self.node_params[node].items()) if node in self.node_params else {}

    # ------------------------------------------------------------- forward pass
    def edge_forward(self, e: EdgeInfo, vis: Mapping[str, torch.Tensor], inplace: bool = False):
        """(output after activation, pre-activation) of one edge. ``inplace`` (no
        autograd) applies the activation in place when the pre-activation is not
        needed for its derivative; the pre-activation is then None."""
        a = self.transforms[e.name](*[vis[s] for s in e.sources])
        act = self.acts[e.name]
        if act.name == "identity":
            return a, a
        if inplace and not act.needs_pre and act.fn_ is not None and not any(_same_memory(a, vis[s]) for s in e.sources):
            return act.fn_(a), None
        return act.fn(a), a

    def predict_node(self, n: str, vis, out=None, pre=None) -> torch.Tensor:
        mu = None
        for e in self.in_edges[n]:
            y, a = self.edge_forward(e, vis)
            if out is not None:
                out[e.name] = y
                pre[e.name] = a
            mu = y if mu is None else mu + y
        return mu

    def forward_pass(self, clamped: dict, noise: dict, batch_size: int, copy: bool = True):
        """The forward pass: every free node takes its prediction (zero energy).
        ``copy=False`` lets states alias predictions (no in-place updates follow)."""
        values, vis, mean, mu, out, pre = {}, {}, {}, {}, {}, {}
        for n in self.order:
            info = self.nodes[n]
            if info.role != "input" and self.in_edges[n]:
                mu[n] = self.predict_node(n, vis, out, pre)
            if n in clamped:
                x = clamped[n]
            elif info.role == "input":
                raise DataError(Issue(("nodes", n), f"input node '{n}' has no data", info.location))
            elif n in mu:
                x = self.families[n].from_prediction(mu[n], copy)
            else:
                x = self.families[n].from_prior(info.prior, batch_size, self.dtype, self.device_)
            values[n] = x
            m, v = self.see(n, x, clamped, noise)
            if m is not None:
                mean[n] = m
            if v is not None:
                vis[n] = v
        return values, vis, mean, mu, out, pre

    # ------------------------------------------------------------------ states
    def init_state(self, batch: Mapping[str, Any], init: str = "forward", noise: Mapping[str, torch.Tensor] | None = None) -> State:
        """A State for ``batch`` (bind name -> tensor). Inputs are clamped, and targets
        too when the batch has their field. ``init``: forward | zeros | normal."""
        clamped = self.clamped_from_batch(batch)
        B = next(iter(clamped.values())).shape[0]
        nz = self.draw_noise(B, noise)
        with torch.no_grad():
            if init == "forward":
                if not self.graph.is_dag:
                    raise CompileError(Issue(("train", "inference", "init"), "a cyclic graph has no forward pass: use init='zeros' or 'normal'"))
                values, vis, mean, mu, out, pre = self.forward_pass(clamped, nz, B)
                state = State(values, nz, frozenset(clamped))
                state.engine = Engine(self, state, vis, mean, mu, out, pre, fresh=True)
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
            state.engine = Engine.from_state(self, state)
            return state

    @torch.no_grad()
    def forward(self, batch: Mapping[str, Any], fixed: Mapping[str, torch.Tensor] | None = None, noise: Mapping[str, torch.Tensor] | None = None) -> State:
        """The forward pass as a State: every free node takes its prediction, except
        the nodes in ``fixed`` (node -> state), which keep the given state -- e.g. a
        latent code to decode. Targets are left free (predicted)."""
        clamped = self.clamped_from_batch(batch, targets=False)
        for n, v in (fixed or {}).items():
            if n not in self.nodes:
                raise KeyError(f"no node '{n}'")
            clamped[n] = v.to(self.device_, self.dtype) if v.is_floating_point() else v.to(self.device_)
        B = next(iter(clamped.values())).shape[0]
        nz = self.draw_noise(B, noise)
        values, *_ = self.forward_pass(clamped, nz, B)
        return State(values, nz, frozenset(n for n in clamped if self.nodes[n].role == "input"))

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], steps: int | None = None) -> dict[str, torch.Tensor]:
        """The forward-pass values of the target nodes: the mean parameters of the
        predicted distribution (probabilities for categorical and bernoulli, the mean
        for Gaussians). Cyclic graphs run inference with the targets free instead."""
        clamped = self.clamped_from_batch(batch, targets=False)
        B = next(iter(clamped.values())).shape[0]
        nz = self.draw_noise(B, None)
        if self.graph.is_dag:
            _, _, _, mu, _, _ = self.forward_pass(clamped, nz, B, copy=False)
        else:
            inputs_only = {self.nodes[n].bind: batch[self.nodes[n].bind] for n in self.inputs}
            state = self.init_state(inputs_only, init=self.train_cfg.inference.init)
            cfg = self.train_cfg.inference
            self.infer(state, steps=cfg.eval_steps if steps is None and cfg.eval_steps is not None else steps)
            mu = self.predictions(state)
        return {t: self.families[t].prediction_value(mu[t]) for t in self.targets}

    # ------------------------------------------------------------------ inference
    def infer(self, state: State, steps: int | None = None, optimizer=None, schedule: str | Schedule | None = None, *, fast: bool | None = None, weight_step=None) -> State:
        """Run ``steps`` local inference updates on the free states, in place.

        ``optimizer`` is a mapping like ``{"type": "sgd", "lr": 0.1, "precondition":
        true, "guard": true}`` (or a built StateOptimizer; default: the spec's);
        ``schedule`` is sweep (by topological generation, from the targets back to the
        inputs), sync (all free nodes at once) or incremental (a weight step after
        every inference step, using ``weight_step`` or the program's weight optimizer)."""
        cfg = self.train_cfg.inference
        T = cfg.steps if steps is None else int(steps)
        opt = optimizer if isinstance(optimizer, StateOptimizer) else make_state_optimizer(_as_opt(optimizer) or cfg.optimizer)
        schedule = get_schedule(schedule or cfg.schedule)
        if schedule.steps_weights and weight_step is None:
            weight_step = self._default_weight_step
        fast = self.fast if fast is None else fast
        with torch.no_grad():
            if fast:
                self.engine_for(state).infer(T, opt, schedule, weight_step)
            else:
                infer_reference(self, state, T, opt, schedule, weight_step)
        return state

    def engine_for(self, state: State) -> Engine:
        """The state's fast-path caches, built from the state if it has none for this program."""
        if state.engine is None or state.engine.prog is not self:
            state.engine = Engine.from_state(self, state)
        return state.engine

    def free_groups(self, state: State, schedule: Schedule) -> list[list[str]]:
        free = [n for n in self.order if n not in state.clamped and self.nodes[n].role != "input"]
        return schedule.groups(free, self.generations)

    def query(self, clamp: Mapping[str, Any], infer=None, **kw):
        """Clamp any nodes ({node: value or "prior"}) and infer the others on the
        clamped graph (see ``pcgraph.compile.query.run_query`` for ``masks``,
        ``batch`` and ``steps``). Returns a QueryResult."""
        return run_query(self, clamp, infer, **kw)

    # ------------------------------------------------------------------ listing
    def listing(self) -> str:
        return listing(self)
