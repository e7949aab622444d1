"""Training steps: weight gradients (at equilibrium or at the error's first
arrival), the weight optimiser, and one PC or BP step."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..core.errors import CompileError, Issue
from ..schedules import get as get_schedule
from .arrival import arrival_grads
from .optim import make_weight_optimizer
from .state import State


class Steps:
    """The Program's training side (a mixin of Program)."""

    def weight_grads(self, state: State, *, fast: bool | None = None) -> dict[str, torch.Tensor]:
        """Set ``.grad`` of every parameter to the gradient of ``energy(state)`` (the
        batch mean); return the per-node energies [B] at this state."""
        fast = self.fast if fast is None else fast
        if fast:
            with torch.no_grad():
                return self.engine_for(state).weight_grads()
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
        schedule = get_schedule(schedule or cfg.inference.schedule)
        arrival = self.weight_gradient(schedule) == "arrival"
        state = self.init_state(batch, init=cfg.inference.init)
        if not arrival:
            self.infer(state, steps=steps, schedule=schedule)
        if schedule.steps_weights:  # the weights took their steps during inference
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
                        terms = state.engine.energies()
            else:
                terms = self.weight_grads(state)
            self._default_weight_step()
            if state.engine is not None:
                state.engine.weights_changed()
        return terms

    def weight_gradient(self, schedule: str | None = None) -> str:
        """Where PC takes its weight gradient: ``train.weights.gradient``, with auto
        resolved (arrival needs a forward pass and a schedule that leaves the weights
        alone during inference)."""
        cfg = self.train_cfg
        choice = cfg.weights.gradient
        schedule = get_schedule(schedule or cfg.inference.schedule)
        forward = self.graph.is_dag and cfg.inference.init == "forward" and not schedule.steps_weights
        if choice == "auto":
            return "arrival" if forward else "equilibrium"
        if choice == "arrival" and not forward:
            raise CompileError(Issue(("train", "weights", "gradient"), "gradients at arrival need a forward pass and a non-incremental schedule"
                                     " (a DAG, train.inference.init=forward): use train.weights.gradient=equilibrium"))
        return choice

    def arrival_grads(self, state: State) -> None:
        """Set ``.grad`` of every parameter to its gradient at the error's first arrival
        (``compile/arrival.py``), from a forward-initialised ``state`` (left as it is)."""
        eng = state.engine
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

