"""Queries: clamp any nodes of a compiled program and infer or predict all the others.

A PC network is a generative model: every node can be observed or inferred. A query
names the clamped nodes and their values (the evidence); every other node is either

* *inferred*, when a clamped node lies below it: the program's own inference
  (``Program.infer``, at fixed weights, on the energy as written) moves it to explain
  the evidence, on the graph of the evidence and the nodes above it; or
* *predicted*, when none does: it takes its parents' prediction from their final
  states (``evidence.py`` says why; on a cyclic graph: the free prediction, as in
  evaluation).

A clamped latent or target node keeps its energy against its parents (its error
drives the inference of its ancestors), but its state does not move. An input node
left unclamped becomes a free node of the family its spec gives it (default
``gaussian``) under its ``prior`` (default ``standard_normal``): the program is rebuilt
from the rewritten spec with the same weights. A partly clamped node (``masks``: True
where observed) is evidence whose observed units the state optimiser holds.

States start from the forward pass with the clamped values in place (DAGs), or from
zero (cyclic graphs: the start of their free prediction, ``prediction.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from ..core.errors import DataError, Issue
from ..graph import build_graph
from ..core.registry import suggest
from ..families import families
from ..spec.models import Spec
from .clamp import draw_noise
from .energy import mu, node_energies, total_energy
from .evidence import evidence_program, explained, predict, substate
from .forward import forward_pass
from .guard import guard_limit
from .optim import StateOptimizer, make_state_optimizer
from .prediction import relax_start
from .state import State

PRIOR = "prior"


@dataclass
class QueryResult:
    """What a query found, for one batch of B examples."""

    #: the program inference ran on (the clamped graph)
    program: Any
    state: State
    clamped: frozenset
    #: the nodes asked for (default: every node not clamped)
    inferred: list
    #: {node: True where observed} for partly clamped nodes
    masks: dict
    #: {node: energy per example [B]} before and after inference (non-input nodes)
    energy_before: dict
    energy_after: dict
    #: examples that kept their starting state because inference raised their energy
    reverted: int = 0
    #: {node: mean parameters after inference}: probabilities (categorical), the mean
    #: and log-variance halves (gaussian_meanvar), the state (gaussian, inputs)
    values: dict = field(default_factory=dict)
    #: {node: mean parameters of the parents' prediction} for nodes with parents
    predictions: dict = field(default_factory=dict)
    #: {node: what children saw} for sampling nodes (a draw from gaussian_meanvar)
    samples: dict = field(default_factory=dict)
    #: the nodes with no clamped node below them, held at their parents' prediction
    predicted: list = field(default_factory=list)
    #: the inference steps run (0 when every free node was predicted by a forward pass)
    steps: int = 0


class _Held(StateOptimizer):
    """A state optimiser that keeps the observed units of partly clamped nodes fixed."""

    def __init__(self, inner: StateOptimizer, held: Mapping[str, tuple[torch.Tensor, torch.Tensor]]):
        self.inner = inner
        self.cfg = inner.cfg  # preconditioning and the guard follow the inner optimiser
        self.held = dict(held)

    def begin_step(self) -> None:
        self.inner.begin_step()

    def update(self, name, x, d):
        entry = self.held.get(name)
        if entry is None:
            self.inner.update(name, x, d)
            return
        mask, value = entry
        self.inner.update(name, x, d.masked_fill(mask, 0.0))
        x.copy_(torch.where(mask, value, x))


def query_spec(spec: Spec, free_inputs: set[str]) -> Spec:
    """The spec with the input nodes in ``free_inputs`` turned into free nodes of
    their query family (default gaussian) under their prior (default standard_normal)."""
    data = spec.to_data()
    data.pop("data", None)
    for name in free_inputs:
        nd = data["nodes"][name]
        if nd.get("dtype") == "long":
            msg = (
                f"input node '{name}' holds integer tokens, which cannot be inferred: clamp it (e.g. --clamp "
                f"{name}=test[0:8])"
            )
            raise DataError(Issue(("nodes", name), msg))
        nd["role"] = "latent"
        nd.pop("bind", None)
        nd.setdefault("family", {"type": "gaussian"})
        nd.setdefault("prior", {"type": "standard_normal"})
    return Spec.model_validate(data)


def query_program(program, free_inputs: set[str]):
    """``program`` itself when no input is left free, else the same weights compiled
    from the spec where those inputs are free nodes (see ``query_spec``)."""
    if not free_inputs:
        return program
    graph = build_graph(query_spec(program.graph.spec, free_inputs))
    q = type(program)(graph, energy=program.energy_kind, device=program.device, dtype=program.dtype)
    q.load_state_dict(program.state_dict())
    q.eval()
    return q


def prior_sample(program, name: str, batch: int) -> torch.Tensor:
    """A state of node ``name`` drawn from its prior: for a Gaussian node a sample; for
    a sampling node (gaussian_meanvar) the prior's parameters, whose children then see
    a sample. Input nodes use their query prior (default standard normal)."""
    from ..families.gaussian import prior_moments

    info = program.nodes[name]
    spec_node = program.graph.spec.nodes[name]
    prior = info.prior if info.role != "input" else spec_node.prior
    if prior is None and info.role != "input":
        msg = f"node '{name}' has no prior (it is predicted by its parents): clamp a root node to 'prior' instead"
        raise DataError(Issue(("nodes", name), msg))
    m, v = prior_moments(prior) if prior is not None else (0.0, 1.0)
    shape = (batch,) + info.shape
    if info.role != "input" and program.families[name].samples:
        return program.families[name].from_prior(prior, batch, program.dtype, program.device)
    return m + math.sqrt(v) * torch.randn(shape, dtype=program.dtype, device=program.device)


def as_state(program, name: str, value, batch: int) -> torch.Tensor:
    """A clamped value (``batch`` examples, or one for all) as the node's state."""
    info = program.nodes[name]
    value = torch.as_tensor(value)
    if not (value.dim() > 0 and value.shape[0] == batch and _fits(program, name, value)):
        if _fits(program, name, value.unsqueeze(0)):
            value = value.unsqueeze(0).expand((batch,) + tuple(value.shape))
        else:
            want = list(info.shape) if info.role == "input" else list(info.param_shape)
            msg = (
                f"the value for node '{name}' has shape {list(value.shape)}: give {batch} examples of shape "
                f"{want} (or one, for all){_index_hint(program, name)}"
            )
            raise DataError(Issue(("nodes", name), msg))
    value = value.to(program.device)
    if info.role == "input":
        if _indices(info, value):  # class indices for a vector input: one-hot rows
            value = torch.nn.functional.one_hot(value.long(), info.shape[-1])
        value = value.reshape((batch,) + info.shape)
        return value.long() if info.dtype == "long" else value.to(program.dtype)
    fam = program.families[name]
    if fam.check_data(value) is not None:  # a flat float value of the right size
        value = value.reshape((batch,) + info.param_shape)
    return fam.from_data(value.contiguous())


def _index_hint(program, name) -> str:
    info = program.nodes[name]
    if info.family_cls is not None and info.family_cls.classes:
        return f" or class indices of shape {list(info.shape[:-1])}"
    return ""


def _fits(program, name, value: torch.Tensor) -> bool:
    info = program.nodes[name]
    if value.dim() == 0:
        return False
    if info.role == "input":
        if info.dtype == "long" and (value.is_floating_point() or value.is_complex()):
            return False
        return value[0].numel() == math.prod(info.shape) or _indices(info, value)
    if program.families[name].check_data(value) is None:
        return True
    return value.is_floating_point() and value[0].numel() == math.prod(info.param_shape)


def _indices(info, value) -> bool:
    """Whether ``value`` holds class indices for the float vector input ``info``."""
    return info.dtype != "long" and not value.is_floating_point() and tuple(value.shape[1:]) == info.shape[:-1]


def _mask(program, name: str, mask, batch: int) -> torch.Tensor:
    """A boolean mask [batch, *shape] from one for all examples or one per example."""
    shape = program.nodes[name].shape
    m = torch.as_tensor(mask, device=program.device).to(torch.bool)
    per = math.prod(shape)
    if m.numel() == per:
        return m.reshape(shape).expand((batch,) + shape)
    if m.numel() == batch * per:
        return m.reshape((batch,) + shape)
    msg = (
        f"the mask for node '{name}' has {m.numel()} entries: give {per} (shape {list(shape)}), or {batch}x{per} "
        f"for one per example"
    )
    raise DataError(Issue(("nodes", name), msg))


def check_nodes(program, names) -> None:
    """Raise a DataError naming the first of ``names`` that is not a node."""
    for n in names:
        if n not in program.nodes:
            msg = f"no node '{n}'{suggest(n, program.nodes) or ' (nodes: ' + ', '.join(program.nodes) + ')'}"
            raise DataError(Issue(("nodes", n), msg))


def run_query(
    program, clamp: Mapping[str, Any], infer=None, *, masks: Mapping[str, Any] | None = None, batch: int | None = None,
    steps: int | None = None, lr: float | None = None
) -> QueryResult:
    """Clamp ``clamp`` ({node: value or "prior"}; nodes in ``masks`` only where the
    mask is True); infer every free node with a clamped node below it and predict the
    others (``evidence.py``). ``infer`` names the nodes to report (default: all that
    are not clamped). ``batch``: the number of examples when no value says it.
    ``steps``: inference steps (default: the spec's eval_steps or steps); ``lr``: the
    state learning rate (default: the spec's).

    On a DAG inference never leaves an example worse than it started: an example whose
    energy (over the evidence and the inferred nodes) rose or stopped being finite (a
    step size too large for its curvature) keeps its starting state and is counted in
    ``reverted``."""
    masks = dict(masks or {})
    full = _check_query(program, clamp, infer, masks)
    q = query_program(program, {n for n in program.inputs if n not in full})
    B = batch or _batch_size(q, clamp)
    values = {
        n: (prior_sample(q, n, B) if isinstance(v, str) and v == PRIOR else as_state(q, n, v, B))
        for n, v in clamp.items()
    }
    held = {}
    for n, m in masks.items():
        if not q.families[n].holds_units:
            kinds = ", ".join(name for name, cls in families.items() if cls.holds_units)
            msg = (
                f"node '{n}' ({q.nodes[n].family}) cannot be clamped in part: only nodes of family {kinds} and float "
                f"inputs can"
            )
            raise DataError(Issue(("nodes", n), msg))
        held[n] = (_mask(q, n, m, B), values[n])
    keep = explained(q, full | set(held))
    with torch.no_grad():
        state = _start_state(q, values, full, held, B)
        before = _energies(q, state)
        worse, ran = _infer_evidence(q, state, keep, held, steps, lr)
        predicted = [n for n in q.order if n not in keep]
        predict(q, state, predicted, steps, _optimizer_spec(q, lr))
        after = _energies(q, state)
        mus = mu(q, state)
        if predicted and not q.graph.is_dag:
            ran = _steps(q, steps)
    inferred = list(infer) if infer else [n for n in q.order if n not in full]
    result = QueryResult(
        q, state, frozenset(full), inferred, {n: h[0] for n, h in held.items()}, before, after, int(worse.sum()),
        predicted=predicted, steps=ran
    )
    for n in q.order:
        x = state[n]
        result.values[n] = x if q.nodes[n].role == "input" else q.families[n].mean(x, n in state.clamped)
        if n in q.sampling:
            result.samples[n] = q.families[n].visible(x, result.values[n], state.noise[n])
        if n in mus:
            result.predictions[n] = q.families[n].prediction_value(mus[n])
    return result


def _check_query(program, clamp, infer, masks) -> set[str]:
    """The fully clamped nodes, after checking the names the query gives."""
    check_nodes(program, list(clamp) + list(masks) + list(infer or []))
    unknown = [n for n in masks if n not in clamp]
    if unknown:
        msg = f"a mask is given for node '{unknown[0]}' but no value to clamp it to"
        raise DataError(Issue(("nodes", unknown[0]), msg))
    full = {n for n in clamp if n not in masks}
    clashing = [n for n in (infer or []) if n in full]
    if clashing:
        raise DataError(Issue(("nodes", clashing[0]), f"node '{clashing[0]}' is both clamped and to be inferred"))
    return full


def _start_state(q, values, full, held, B: int) -> State:
    """The state inference starts from: the forward pass from the clamped nodes (a DAG)
    or zero (cyclic), with partly clamped nodes holding their observed entries."""
    if q.graph.is_dag:
        start = {n: values[n] for n in full}
        for n, (m, v) in held.items():  # a partly clamped root starts from its prior mean where unobserved
            if not q.in_edges[n]:
                start[n] = torch.where(m, v, q.families[n].from_prior(q.nodes[n].prior, B, q.dtype, q.device))
        noise = draw_noise(q, B, None)
        state = State(forward_pass(q, start, noise, B).values, noise, frozenset(full))
    else:
        state = relax_start(q, {n: values[n] for n in full}, B)
    for n, (m, v) in held.items():
        state[n] = torch.where(m, v, state[n])
    return state


def _steps(q, steps) -> int:
    return q.train_cfg.inference.prediction_steps if steps is None else int(steps)


def _optimizer_spec(q, lr):
    cfg = q.train_cfg.inference
    return cfg.optimizer if lr is None else cfg.optimizer.model_copy(update={"lr": float(lr)})


def _infer_evidence(q, state: State, keep, held, steps, lr):
    """Infer the free nodes in ``keep`` (the evidence and the nodes above it) on the
    program of those nodes alone, in place; on a DAG an example whose energy there rose
    or became non-finite goes back to its start (the forward pass). Returns (the examples put back, steps run)."""
    worse = torch.zeros(state.batch_size, dtype=torch.bool, device=q.device)
    if not any(n in keep and n not in state.clamped for n in q.energy_nodes):
        return worse, 0
    sub = evidence_program(q, keep)
    st = substate(sub, state)
    T = _steps(q, steps)
    opt = make_state_optimizer(_optimizer_spec(q, lr))
    start = st.clone()
    total_before = _total(_energies(sub, st), st)
    sub.infer(st, steps=T, optimizer=_Held(opt, held) if held else opt, schedule=sub.schedule.at_fixed_weights())
    total_after = _total(_energies(sub, st), st)
    worse = ~torch.isfinite(total_after) | (total_after > guard_limit(total_before))
    worse &= q.graph.is_dag  # a cyclic graph's start (zero) is no answer to go back to
    for n in st.free:
        x = st[n]
        if bool(worse.any()):
            x = torch.where(worse.view((-1,) + (1,) * (x.dim() - 1)), start[n], x)
        state[n] = x
    return worse, T


def _total(energies: dict, state: State) -> torch.Tensor:
    total = total_energy(energies)
    return torch.zeros(state.batch_size) if total is None else total


def _energies(program, state) -> dict:
    """{node: energy [B]}; zero for a clamped root (its prior no longer counts)."""
    zero = torch.zeros(state.batch_size, dtype=program.dtype, device=program.device)
    return {k: zero if e is None else e.clone() for k, e in node_energies(program, state).items()}


def _batch_size(program, clamp) -> int:
    for n, v in clamp.items():
        if isinstance(v, str):
            continue
        t = torch.as_tensor(v)
        if t.dim() > 0 and _fits(program, n, t) and not _fits(program, n, t.unsqueeze(0)):
            return t.shape[0]
    return 1
