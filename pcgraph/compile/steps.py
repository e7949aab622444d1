"""Training steps: weight gradients (at equilibrium or at the error's first arrival),
the weight step, and one PC or BP training step."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..core.errors import CompileError, Issue
from ..schedules import get as get_schedule
from .arrival import arrival_grads as grads_at_arrival
from .energy import loss_terms, mean_energy, node_energies
from .engine import engine_for
from .state import State


def weight_grads(prog, state: State, *, fast: bool | None = None) -> dict[str, torch.Tensor]:
    """Set ``.grad`` of every parameter to the gradient of the batch-mean energy at
    ``state`` (its loss terms weighted by the state's ``loss_weight``), divided by the
    loss weight; return the per-node energies [B] at this state (weighted)."""
    if prog.fast if fast is None else fast:
        with torch.no_grad():
            return engine_for(prog, state).weight_grads()
    params = list(prog.parameters())
    with torch.enable_grad():
        terms = node_energies(prog, state, state.loss_weight)
        grads = torch.autograd.grad(mean_energy(terms) / state.loss_weight, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = torch.zeros_like(p) if g is None else g
    return {k: v.detach() for k, v in terms.items()}


def weight_step(prog) -> None:
    """One step of the weight optimiser on the gradients in ``.grad`` (combined across
    processes first by ``prog.grad_sync``, clipped by ``train.weights.grad_clip``)."""
    if prog.grad_sync is not None:
        prog.grad_sync()
    clip = prog.train_cfg.weights.grad_clip
    if clip:
        torch.nn.utils.clip_grad_norm_(prog.parameters(), clip)
    prog.weight_optimizer.step()


def weight_gradient(prog, schedule=None) -> str:
    """Where PC takes its weight gradient: ``train.weights.gradient`` (arrival needs a
    forward pass and a schedule that leaves the weights alone during inference)."""
    cfg = prog.train_cfg
    choice = cfg.weights.gradient
    schedule = prog.schedule if schedule is None else get_schedule(schedule)
    forward = prog.graph.is_dag and cfg.inference.init == "forward" and not schedule.steps_weights
    if choice == "arrival" and not forward:
        msg = (
            "gradients at arrival need a forward pass and a non-incremental schedule (a DAG, "
            "train.inference.init=forward):"
            " use train.weights.gradient=equilibrium"
        )
        raise CompileError(Issue(("train", "weights", "gradient"), msg))
    return choice


def loss_weight(prog, schedule=None) -> float:
    """The weight of the loss terms in the energy a PC training step relaxes on:
    ``train.weights.nudge`` for the gradient at equilibrium, 1 at arrival."""
    return 1.0 if weight_gradient(prog, schedule) == "arrival" else float(prog.train_cfg.weights.nudge)


def arrival_grads(prog, state: State) -> None:
    """Set ``.grad`` of every parameter to its gradient at the error's first arrival
    (``arrival.py``), from a forward-initialised ``state`` (left as it is)."""
    eng = state.engine
    if eng is not None and eng.prog is prog:
        eng.check_outside_edits()
    if eng is None or eng.prog is not prog or not eng.fresh:
        msg = "gradients at arrival start from a forward-initialised state: set train.inference.init=forward"
        raise CompileError(Issue(("train", "weights", "gradient"), msg))
    with torch.no_grad():
        grads_at_arrival(eng)


def pc_step(prog, batch: Mapping[str, Any], *, steps: int | None = None, schedule=None) -> dict[str, torch.Tensor]:
    """One PC training step: ``weights.updates`` weight steps, each from the gradient
    ``weights.gradient`` names.

    equilibrium (the EM algorithm): from the forward pass, T inference steps on the
    energy with the loss terms (clamped targets, priors) weighted by ``weights.nudge``
    (beta), then the gradient of that energy at the inferred state, divided by beta;
    each further update runs this E-step again at the new weights (same noise).
    arrival: forward init and the arrival sweep (inference past it would not change the
    gradient), a fresh forward pass before each further update.

    Returns the per-node energies [B] -- the energy as written -- at the state the first
    gradient was taken from (no sync)."""
    cfg = prog.train_cfg
    schedule = prog.schedule if schedule is None else get_schedule(schedule)
    arrival = weight_gradient(prog, schedule) == "arrival"
    beta = loss_weight(prog, schedule)
    if schedule.steps_weights:  # the weights take their steps during inference
        state = prog.init_state(batch, init=cfg.inference.init, loss_weight=beta)
        prog.infer(state, steps=steps, schedule=schedule)
        with torch.no_grad():
            return node_energies(prog, state)
    terms, noise = None, None
    for _ in range(cfg.weights.updates):
        state = prog.init_state(batch, init=cfg.inference.init, noise=noise, loss_weight=beta)
        noise = state.noise  # every update sees the same draws
        if arrival:
            arrival_grads(prog, state)
        else:
            prog.infer(state, steps=steps, schedule=schedule)
            weighted = weight_grads(prog, state)
        if terms is None:
            with torch.no_grad():
                if arrival:
                    terms = state.engine.energies()
                else:
                    terms = weighted if beta == 1.0 else _energies_as_written(prog, state)
        weight_step(prog)
        if state.engine is not None:
            state.engine.weights_changed()
    return terms


def _energies_as_written(prog, state: State) -> dict[str, torch.Tensor]:
    """The per-node energies [B] at the state, loss terms unweighted: from the fast
    engine's cached predictions where it holds them (no forward pass)."""
    eng = state.engine
    if prog.fast and eng is not None and eng.prog is prog:
        return eng.plain_energies()
    return node_energies(prog, state)


def bp_step(prog, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """One backprop step on the same graph: the BP loss, backward, weight step.
    Returns the loss terms per node [B] (targets and priors; no sync)."""
    prog.weight_optimizer.zero_grad(set_to_none=True)
    terms, _ = loss_terms(prog, batch)
    mean_energy(terms).backward()
    weight_step(prog)
    return {k: v.detach() for k, v in terms.items()}


def step_fn(
    prog, method: str | None = None, compile: bool | None = None, backend: str = "inductor", mode: str | None = None
):
    """The training step for ``method`` (pc or bp): batch -> per-node energies (pc)
    or the loss terms (bp), parameters updated. With ``compile`` the whole step runs
    under ``torch.compile`` with ``backend`` and ``mode`` (e.g. "reduce-overhead": CUDA
    graphs; same numbers; the first call pays the compile time)."""
    method = method or prog.train_cfg.method
    fn = prog.pc_step if method == "pc" else prog.bp_step
    if prog.train_cfg.compile if compile is None else compile:
        _ = prog.weight_optimizer  # built eagerly, outside the compiled region
        return torch.compile(fn, backend=backend, mode=mode)
    return fn
