"""Program: the compiled graph as a record -- families, transforms, parameters,
order, edges, schedule -- with the jobs on it as methods that hand it to the module
named for the job (forward, start, energy, inference, steps, query, printer)."""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch
from torch import nn

from ..graph import EdgeInfo, PCGraph
from ..schedules import get as get_schedule
from . import energy as _energy
from . import forward as _forward
from . import inference as _inference
from . import steps as _steps
from .build import build_families, build_node_params, build_transforms, check_energy, set_supports
from .optim import make_weight_optimizer
from .printer import listing
from .query import run_query
from .start import init_state
from .state import State


class Program(nn.Module):
    """The compiled network. Parameters, states and batches live on one device.

    Energies are per sample and summed over a node's units; ``energy`` averages over
    the batch (the weights' objective), while inference steps each sample's state
    along the gradient of its own energy.
    """

    def __init__(
        self, graph: PCGraph, energy: str = "kl", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ):
        super().__init__()
        check_energy(graph, energy)
        self.graph = graph
        self.energy_kind = energy
        self.kl = energy == "kl"
        self.train_cfg = graph.spec.train
        self.dtype = dtype
        self.device_ = torch.device(device)
        #: use the closed-form fast path for inference and weight gradients
        self.fast = True
        #: node -> Family; node -> its F_KL form, made when first needed (``energy.kl_family``)
        self.families = build_families(graph, self.kl, dtype)
        self.kl_families: dict = {}
        #: edge -> Transform and Activation; the edges' and nodes' parameters
        self.transforms, self.acts, self.edge_modules = build_transforms(graph)
        self.node_params = build_node_params(graph, self.families)
        self.nodes = graph.nodes
        self.edges: list[EdgeInfo] = list(graph.edges)
        self.in_edges = {n: graph.in_edges(n) for n in self.nodes}
        self.out_edges = {n: graph.out_edges(n) for n in self.nodes}
        self.to(device=self.device_, dtype=dtype)
        set_supports(self.families, self.transforms, self.in_edges, self.device_)
        self.order = graph.order if graph.order is not None else list(graph.nodes)
        self.inputs = [n for n in self.order if self.nodes[n].role == "input"]
        self.targets = [n for n in self.order if self.nodes[n].role == "target"]
        self.energy_nodes = [n for n in self.order if self.nodes[n].role != "input"]
        self.sampling = [n for n in self.order if n in self.families and self.families[n].samples]
        #: topological generations without the inputs (a cyclic graph: one of all nodes)
        self.generations = [
            [n for n in g if self.nodes[n].role != "input"] for g in (graph.generations or [self.order])
        ]
        self.schedule = get_schedule(self.train_cfg.inference.schedule)
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

    # ------------------------------------------------------------------ the record
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
        for fam in [*self.__dict__.get("families", {}).values(), *self.__dict__.get("kl_families", {}).values()]:
            fam.dtype = self.dtype
            if fam.support is not None:
                fam.support = fam.support.to(self.device_)
        return self

    def params_of(self, node: str) -> dict[str, torch.Tensor]:
        """{name: parameter} of the node's own parameters (a learned variance)."""
        return dict(self.node_params[node].items()) if node in self.node_params else {}

    @property
    def weight_optimizer(self) -> torch.optim.Optimizer:
        """The weights' optimiser, built from ``train.weights.optimizer`` when first asked for."""
        if self._weight_optimizer is None:
            self._weight_optimizer = make_weight_optimizer(self.parameters(), self.train_cfg.weights.optimizer)
        return self._weight_optimizer

    # ------------------------------------------------------------------ the jobs
    def init_state(
        self, batch: Mapping[str, Any], init: str = "forward", noise=None, loss_weight: float = 1.0
    ) -> State:
        """A State for ``batch`` (``start.init_state``)."""
        return init_state(self, batch, init, noise, loss_weight)

    @torch.no_grad()
    def forward(self, batch: Mapping[str, Any], fixed: Mapping[str, torch.Tensor] | None = None, noise=None) -> State:
        """The forward pass as a State, the nodes in ``fixed`` held (``forward.forward_state``)."""
        return _forward.forward_state(self, batch, fixed, noise)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], steps: int | None = None) -> dict[str, torch.Tensor]:
        """The targets' predicted mean parameters (``forward.predict``)."""
        return _forward.predict(self, batch, steps)

    def infer(self, state: State, steps=None, optimizer=None, schedule=None, *, fast=None, weight_step=None) -> State:
        """Inference steps on ``state``, in place (``inference.infer``)."""
        return _inference.infer(self, state, steps, optimizer, schedule, fast=fast, weight_step=weight_step)

    def node_energies(self, state: State) -> dict[str, torch.Tensor]:
        """{node: energy per sample [B]} (``energy.node_energies``)."""
        return _energy.node_energies(self, state)

    def energy(self, state: State) -> torch.Tensor:
        """Batch mean of the per-sample total energy (differentiable)."""
        return _energy.mean_energy(_energy.node_energies(self, state))

    def mu(self, state: State) -> dict[str, torch.Tensor]:
        """{node: mu}: each node's prediction from its parents' current states (``energy.mu``);
        ``predict`` is what the network outputs for a batch."""
        return _energy.mu(self, state)

    def predictions(self, state: State) -> dict[str, torch.Tensor]:
        """Former name of ``mu`` (deprecated: it read like ``predict``)."""
        warnings.warn("Program.predictions(state) is now Program.mu(state)", DeprecationWarning, stacklevel=2)
        return _energy.mu(self, state)

    def loss_terms(self, batch: Mapping[str, Any], noise=None, *, kl_targets: bool = False):
        """The BP loss terms and the targets' predictions (``energy.loss_terms``)."""
        return _energy.loss_terms(self, batch, noise, kl_targets=kl_targets)

    def loss_bp(self, batch: Mapping[str, Any], noise=None) -> torch.Tensor:
        """The backprop loss (``energy.loss_bp``)."""
        return _energy.loss_bp(self, batch, noise)

    def evaluate_batch(self, batch: Mapping[str, Any], noise=None):
        """Energies and target predictions for evaluation (``energy.evaluate_batch``)."""
        return _energy.evaluate_batch(self, batch, noise)

    def weight_grads(self, state: State, *, fast: bool | None = None) -> dict[str, torch.Tensor]:
        """``.grad`` of every parameter at ``state`` (``steps.weight_grads``)."""
        return _steps.weight_grads(self, state, fast=fast)

    def arrival_grads(self, state: State) -> None:
        """``.grad`` of every parameter at the error's arrival (``steps.arrival_grads``)."""
        _steps.arrival_grads(self, state)

    def weight_gradient(self, schedule=None) -> str:
        """arrival or equilibrium, as PC takes its weight gradient (``steps.weight_gradient``)."""
        return _steps.weight_gradient(self, schedule)

    def loss_weight(self, schedule=None) -> float:
        """The weight of the loss terms in a PC training step's E-step (``steps.loss_weight``)."""
        return _steps.loss_weight(self, schedule)

    def weight_step(self) -> None:
        """One weight step on the gradients in ``.grad`` (``steps.weight_step``)."""
        _steps.weight_step(self)

    def pc_step(self, batch: Mapping[str, Any], *, steps: int | None = None, schedule=None) -> dict[str, torch.Tensor]:
        """One PC training step (``steps.pc_step``)."""
        return _steps.pc_step(self, batch, steps=steps, schedule=schedule)

    def bp_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One backprop training step (``steps.bp_step``)."""
        return _steps.bp_step(self, batch)

    def step_fn(
        self, method: str | None = None, compile: bool | None = None, backend: str = "inductor", mode: str | None = None
    ):
        """The training step for ``method`` (``steps.step_fn``)."""
        return _steps.step_fn(self, method, compile, backend, mode)

    def query(self, clamp: Mapping[str, Any], infer=None, **kw):
        """Clamp any nodes and infer the others (``query.run_query``)."""
        return run_query(self, clamp, infer, **kw)

    def listing(self) -> str:
        """Per node its prediction and energy term (``printer.listing``)."""
        return listing(self)
