"""Inference: ``steps`` local updates of the free states, in place, by the fast engine
(``engine.py``) or the plain autograd path (``reference.py``), which give the same
numbers. The schedule says which nodes update together; the state optimiser how a
node's gradient becomes its step; preconditioning scales each node's gradient by the
inverse curvature of its own terms; the guard (``guard.py``) keeps no step that
raises a sample's energy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from ..schedules import Schedule, get as get_schedule
from ..spec.models import StateOptimizerSpec
from .engine import Engine, engine_for
from .guard import Guard
from .optim import StateOptimizer, make_state_optimizer
from .reference import infer_reference
from .state import State


def state_optimizer(optimizer, default: StateOptimizerSpec) -> StateOptimizer:
    """A StateOptimizer from a built one, a mapping like ``{"type": "sgd", "lr": 0.1}``,
    a StateOptimizerSpec, or None (``default``)."""
    if isinstance(optimizer, StateOptimizer):
        return optimizer
    if optimizer is None:
        return make_state_optimizer(default)
    if isinstance(optimizer, Mapping):
        optimizer = StateOptimizerSpec.model_validate(dict(optimizer))
    if not isinstance(optimizer, StateOptimizerSpec):
        raise TypeError(f"optimizer must be a mapping like {{'type': 'sgd', 'lr': 0.1}}, got {optimizer!r}")
    return make_state_optimizer(optimizer)


def free_groups(prog, state: State, schedule: Schedule) -> list[list[str]]:
    """The groups of the state's free nodes that one step updates, in order."""
    free = [n for n in prog.order if n not in state.clamped and prog.nodes[n].role != "input"]
    return schedule.groups(free, prog.generations)


def infer(prog, state: State, steps=None, optimizer=None, schedule=None, *, fast=None, weight_step=None) -> State:
    """Run ``steps`` (default ``train.inference.steps``) inference steps on ``state``,
    in place, with ``optimizer`` (default: the spec's) and ``schedule`` (a name or a
    Schedule; default: the spec's). A schedule that steps the weights calls
    ``weight_step`` (default: the program's weight step) after every step."""
    cfg = prog.train_cfg.inference
    T = cfg.steps if steps is None else int(steps)
    opt = state_optimizer(optimizer, cfg.optimizer)
    schedule = prog.schedule if schedule is None else get_schedule(schedule)
    if schedule.steps_weights and weight_step is None:
        weight_step = prog.weight_step
    with torch.no_grad():
        if prog.fast if fast is None else fast:
            infer_fast(engine_for(prog, state), T, opt, schedule, weight_step)
        else:
            groups = free_groups(prog, state, schedule)
            infer_reference(prog, state, T, opt, groups, schedule.steps_weights, weight_step, schedule.follows)
    return state


@dataclass
class Plan:
    """One group's part of an inference step: the nodes whose predictions it needs
    fresh, the nodes whose errors reach it, and the edges those errors travel."""

    group: list[str]
    need: list[str]
    error_nodes: list[str]
    edges: list


def plans(prog, state: State, schedule: Schedule) -> list[Plan]:
    """Per group of the schedule: what its step reads (a weight-stepping schedule
    needs every error, for the weights' gradient)."""
    out = []
    for group in free_groups(prog, state, schedule):
        in_group = set(group)
        if schedule.steps_weights:
            edges = list(prog.edges)
        else:
            edges = [e for e in prog.edges if any(s in in_group for s in e.sources)]
        targets = list(dict.fromkeys(e.target for e in edges))
        need = list(dict.fromkeys([*group, *targets] + (prog.energy_nodes if schedule.steps_weights else [])))
        out.append(Plan(group, need, targets, edges))
    return out


def infer_fast(eng: Engine, T: int, opt: StateOptimizer, schedule: Schedule, weight_step: Callable | None) -> None:
    """T inference steps on the engine's state (the fast path)."""
    st = eng.state
    eng.check_outside_edits()
    precondition = getattr(opt.cfg, "precondition", False)
    guard = Guard() if getattr(opt.cfg, "guard", False) else None
    steps = plans(eng.prog, st, schedule)
    free = [n for plan in steps for n in plan.group]
    kept: dict[str, float] = {}  # the step scales that are floats: the same at every step
    for _ in range(T):
        opt.begin_step()
        if guard is not None:
            guard.start(st, free, eng.total_energy)
        follow = Follow(eng) if schedule.follows else None
        for plan in steps:
            eng.refresh(plan.need)
            errors = eng.errors(plan.error_nodes) if follow is None else follow.errors(plan.error_nodes)
            ga = eng.edge_errors(errors, plan.edges)
            if schedule.steps_weights:
                grads: dict = {}
                eng.edge_param_grads(ga, plan.edges, grads)
                eng.node_param_grads(grads)
                eng.set_grads(grads)
            dirs = eng.directions(plan.group, ga)
            if precondition:  # every scale at the state before this group moves
                dirs = {n: scaled(d, step_scale(eng, n, kept)) for n, d in dirs.items()}
            if follow is not None:
                follow.before_step(plan.group)
            for n, d in dirs.items():
                opt.update(n, st[n], d)
                eng.moved(n)
            if guard is not None:
                guard.scale(st, dirs, eng.moved)
            if follow is not None:
                follow.after_step(plan.group)
            if schedule.steps_weights:
                weight_step()
                eng.weights_changed()
        if follow is not None:
            follow.follow()
        if guard is not None:
            guard.judge(st, eng.total_energy, eng.moved)


def step_scale(eng: Engine, n: str, kept: dict):
    """``eng.step_scale(n)``; one that is a float depends on no tensor (``Family.step_scale``)
    and is kept in ``kept`` for the rest of the call."""
    s = kept.get(n)
    if s is None:
        s = eng.step_scale(n)
        if isinstance(s, float):
            kept[n] = s
    return s


def scaled(d: torch.Tensor, scale) -> torch.Tensor:
    """``d * scale``; a scale of exactly 1 (a unit-variance node's) leaves ``d`` as it is."""
    return d if isinstance(scale, float) and scale == 1.0 else d * scale


class Follow:
    """A following schedule's bookkeeping over one step (see ``schedules/carry.py``):
    the error each node held right after its own step (a clamped node's: as first
    seen), and each node's prediction when it stepped."""

    def __init__(self, eng: Engine):
        self.eng = eng
        self.held: dict[str, torch.Tensor] = {}
        self.mu_at: dict[str, torch.Tensor] = {}

    def errors(self, nodes) -> dict:
        """The errors of ``nodes`` (``Engine.errors``), the held ones in place of the
        current ones (which are not computed); a clamped node's is held as first seen."""
        held, clamped = self.held, self.eng.state.clamped
        fresh = self.eng.errors([n for n in nodes if n not in held])
        for n, g in fresh.items():
            if n in clamped:
                held[n] = g
        return {n: held[n] if n in held else fresh[n] for n in nodes if n in held or n in fresh}

    def before_step(self, group) -> None:
        prog = self.eng.prog
        for n in group:
            if prog.in_edges[n]:
                self.mu_at[n] = self.eng.mu[n]

    def after_step(self, group) -> None:
        self.eng.refresh(group)  # unchanged: the group's parents have not moved yet
        self.held.update(self.eng.errors(group))

    def follow(self) -> None:
        """Each node that stepped moves by the change of its prediction, in topological order."""
        eng, st = self.eng, self.eng.state
        for n in eng.prog.order:
            mu0 = self.mu_at.get(n)
            if mu0 is not None:
                eng.refresh([n])
                if eng.mu[n] is not mu0:  # else its parents kept still: it stays (adds zero)
                    st[n].add_(eng.mu[n] - mu0)
                    eng.moved(n)
