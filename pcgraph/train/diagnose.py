"""``pcgraph diagnose``: what PC inference does on one batch, and where PC's weight
gradients point compared with backprop's.

With the model's current weights and one batch, from the forward-initialised state,
inference as a training step runs it (its nudge: the loss terms weighted by
``train.weights.nudge``):

* the energy of every node, as written, at each of the T inference steps (before and
  after);
* the *error front*: the first step at which a node's state or its prediction (from
  its parents' states) moves away from its initial value, i.e. at which its error can
  first differ from the forward pass's (clamped targets and nodes with a prior term
  are the error's sources: step 0);
* the steps at which the energy inference minimises (the nudged total) rose;
* per parameter of every edge (and node), the cosine and norm ratio of PC's weight
  gradient after inference (the gradient of the energy that PC training applies)
  against backprop's gradient of the BP loss on the same batch and noise; with prior
  terms (a VAE), also against the BP gradient's targets' part and prior part.

Inference runs through ``Program.infer`` with the spec's settings, so whatever the
spec (or the library's defaults) says about optimiser, schedule and step sizes is
what is measured. The weights never change (an incremental schedule's weight steps
are skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..compile.energy import mean_energy
from ..core.errors import Issue, TrainError

#: a state or prediction "moved" when it changed by more than this, relative to max(1, max|x0|)
MOVE_TOL = 1e-6
#: a step "raised" the total energy when it grew by more than this, relative to max(1, |E|)
RISE_TOL = 1e-6


# ------------------------------------------------------------------ loading
def load_model(source, overrides=(), *, device=None, fresh: bool = False):
    """(spec, program, weights) for a run directory (its checkpoint's weights, or
    fresh ones with ``fresh``) or a spec file (the spec's seeded initialisation), on
    ``device`` (default: the spec's train.device). ``weights`` says which: "checkpoint"
    or "fresh"."""
    from ..compile import compile_graph
    from ..graph import build_graph
    from ..spec import load_spec
    from . import checkpoint as ckpt
    from .run import SPEC_FILE, device_override, load_run

    path = Path(source)
    if path.is_dir():
        if not (path / SPEC_FILE).exists():
            msg = f"{path} is not a run directory (no {SPEC_FILE}): give a run directory or a spec file"
            raise TrainError(Issue(("run",), msg))
        if not fresh and not (path / ckpt.NAME).exists():
            msg = f"{path} has no {ckpt.NAME}: pass --fresh to diagnose freshly initialised weights"
            raise TrainError(Issue(("run",), msg))
        spec, program = load_run(path, device, overrides, weights=not fresh, spec_device=True)
        weights = "fresh" if fresh else "checkpoint"
    else:
        spec = load_spec(path, [*overrides, *device_override(device)])
        program = compile_graph(build_graph(spec), energy=spec.train.energy, device=spec.train.device)
        weights = "fresh"
    if not program.graph.is_dag:
        msg = f"{path}: diagnose compares PC with backprop, which needs a forward pass; this graph is cyclic"
        raise TrainError(Issue(("train", "topology"), msg))
    return spec, program, weights


def first_batch(spec, graph, split: str, batch_size: int | None, data_dir=None) -> dict[str, torch.Tensor]:
    """The first ``batch_size`` examples (default: the spec's batch size) of ``split``."""
    from .loading import load_data

    data = load_data(spec.data, graph, data_dir)
    if split not in data:
        raise TrainError(Issue(("split",), f"no split '{split}' (have: {', '.join(data)})"))
    n = batch_size or spec.data.batch_size
    return {k: v[:n] for k, v in data[split].items()}


# ------------------------------------------------------------------ measuring
def _weighted_total(prog, state) -> float:
    """The batch mean of the energy inference minimises (loss terms weighted by the
    state's ``loss_weight``)."""
    from ..compile.energy import node_energies, total_energy

    with torch.no_grad():
        return float(total_energy(node_energies(prog, state, state.loss_weight)).mean())


def _node_means(prog, state) -> dict[str, float]:
    with torch.no_grad():
        return {n: float(e.mean()) for n, e in prog.node_energies(state).items()}


def _moved(x: torch.Tensor, x0: torch.Tensor, tol: float) -> bool:
    scale = max(1.0, float(x0.abs().max())) if x0.numel() else 1.0
    return bool(((x - x0).abs() > tol * scale).any()) if x0.numel() else False


def _no_weight_step() -> None:
    """Stands in for an incremental schedule's weight step: the weights stay put."""


def hops_to_target(prog) -> dict[str, int | None]:
    """Per node, the fewest edges on a path from it to a target (targets: 0; None: none)."""
    import networkx

    hops = networkx.multi_source_dijkstra_path_length(prog.graph.nx.reverse(copy=False), set(prog.targets))
    return {n: hops.get(n) for n in prog.nodes}


def _recorder(prog, state, x0: dict, tol: float):
    """record(states) -> (per-node energies over the steps, the error front, the energy
    inference minimises over the steps), from the initial ``state`` and the steps' states."""
    with torch.no_grad():
        mu0 = prog.mu(state)
    sources = {n for n in prog.energy_nodes if n in state.clamped or prog.nodes[n].prior is not None}
    start = _node_means(prog, state)
    weight = state.loss_weight

    def record(states):
        energies = {n: [v] for n, v in start.items()}
        minimised = [_weighted_total(prog, state) if weight != 1.0 else None]
        front: dict[str, int | None] = {n: (0 if n in sources else None) for n in prog.energy_nodes}
        for t, s in enumerate(states, 1):
            for n, v in _node_means(prog, s).items():
                energies[n].append(v)
            minimised.append(_weighted_total(prog, s) if weight != 1.0 else None)
            waiting = [n for n, f in front.items() if f is None]
            if waiting:
                with torch.no_grad():
                    mu = prog.mu(s)
                for n in waiting:
                    if (n in x0 and _moved(s[n], x0[n], tol)) or (n in mu0 and _moved(mu[n], mu0[n], tol)):
                        front[n] = t
        return energies, front, minimised

    return record


def inference_trace(prog, batch: Mapping[str, Any], steps: int | None = None, *, tol: float = MOVE_TOL) -> dict:
    """Run inference on ``batch`` from the spec's initialisation, step by step.

    Returns {"steps": T, "energies": {node: [E_0..E_T]} (batch means), "total":
    [..], "front": {node: first step its state or prediction moved, 0 for clamped
    targets and free nodes with a prior, None if never}, "state": the state after T
    steps, "noise": the sampling noise used, "replayed": whether steps were replayed
    from the start}.

    Steps are taken one ``infer`` call at a time; if that does not end where one call
    of T steps does (a state optimiser with memory, such as momentum or Adam), each
    prefix of t steps is replayed from the initial state instead (T(T+1)/2 steps)."""
    cfg = prog.train_cfg.inference
    T = cfg.steps if steps is None else int(steps)
    state = prog.init_state(batch, init=cfg.init, loss_weight=prog.loss_weight())
    noise = state.noise
    initial = state.clone()  # (a random init is drawn once: replays start from this copy)

    def fresh():
        return initial.clone()

    x0 = {n: state[n].clone() for n in state.free}
    record = _recorder(prog, state, x0, tol)

    def chained():
        for _ in range(T):
            prog.infer(state, steps=1, weight_step=_no_weight_step)
            yield state

    energies, front, minimised = record(chained())
    whole = prog.infer(fresh(), steps=T, weight_step=_no_weight_step)
    replayed = not all(
        torch.allclose(state[n], whole[n], rtol=1e-4, atol=1e-6 * max(1.0, float(whole[n].abs().max()))) for n in x0
    )
    if replayed:
        energies, front, minimised = record(
            prog.infer(fresh(), steps=t, weight_step=_no_weight_step) for t in range(1, T + 1)
        )
        state = whole
    total = [sum(v[t] for v in energies.values()) for t in range(T + 1)]
    if state.loss_weight == 1.0:
        minimised = total
    return {"steps": T, "energies": energies, "total": total, "front": front, "state": state, "noise": noise,
            "replayed": replayed, "minimised": minimised}


def rises(total: list[float], tol: float = RISE_TOL) -> list[int]:
    """The steps t (1..T) at which the total energy grew: total[t] > total[t-1]."""
    return [t for t in range(1, len(total)) if total[t] - total[t - 1] > tol * max(1.0, abs(total[t - 1]))]


def _cos(a: torch.Tensor, b: torch.Tensor) -> float | None:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return None
    return float((a * b).sum()) / (na * nb)


def parameter_labels(prog) -> dict[int, tuple[str, str]]:
    """id(parameter) -> (where, name): "a → b" for an edge, "node n" for a node's own."""
    labels: dict[int, tuple[str, str]] = {}
    for e in prog.edges:
        for k, p in prog.edge_modules[e.name].named_parameters():
            labels.setdefault(id(p), (f"{' + '.join(e.sources)} → {e.target}", k))
    for n, pd in prog.node_params.items():
        for k, p in pd.items():
            labels.setdefault(id(p), (f"node {n}", k))
    return labels


def gradient_agreement(prog, batch: Mapping[str, Any], state, noise) -> list[dict]:
    """Per parameter: the weight gradient PC training applies (``train.weights.gradient``:
    at the error's arrival from the forward state, or at the inferred ``state``) against
    the gradient of ``Program.loss_terms`` (the BP loss) with the same noise."""
    params = dict(prog.named_parameters())
    saved = {n: p.grad for n, p in params.items()}
    prog.zero_grad(set_to_none=True)
    if prog.weight_gradient() == "arrival":
        prog.arrival_grads(prog.init_state(batch, noise=noise))
    else:
        prog.weight_grads(state)
    pc = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in params.items()}
    for n, p in params.items():
        p.grad = saved[n]
    with torch.enable_grad():
        terms, _ = prog.loss_terms(batch, noise)
        targets = set(prog.targets)
        has_prior = any(t not in targets for t in terms)

        def grads(keep, retain):
            parts = [v for k, v in terms.items() if keep(k)]
            if not parts:
                return {n: torch.zeros_like(p) for n, p in params.items()}
            loss = mean_energy(dict(enumerate(parts)))
            g = torch.autograd.grad(loss, list(params.values()), allow_unused=True, retain_graph=retain)
            return {n: torch.zeros_like(p) if x is None else x for (n, p), x in zip(params.items(), g)}

        bp = grads(lambda k: True, has_prior)
        parts = (grads(lambda k: k in targets, True), grads(lambda k: k not in targets, False)) if has_prior else None
    labels = parameter_labels(prog)
    rows = []
    for n, p in params.items():
        where, name = labels.get(id(p), (n, ""))
        g, b = pc[n], bp[n]
        row = {
            "where": where,
            "param": name,
            "shape": list(p.shape),
            "cos": _cos(g, b),
            "norm_ratio": float(g.norm()) / float(b.norm()) if float(b.norm()) > 0 else None,
            "pc_norm": float(g.norm()),
            "bp_norm": float(b.norm()),
        }
        if parts is not None:
            row["cos_targets_part"] = _cos(g, parts[0][n])
            row["cos_prior_part"] = _cos(g, parts[1][n])
        rows.append(row)
    return rows


def diagnose(prog, batch: Mapping[str, Any], steps: int | None = None, *, tol: float = MOVE_TOL) -> dict:
    """The full report for one batch (a JSON-ready dict; see the module doc)."""
    cfg = prog.train_cfg.inference
    trace = inference_trace(prog, batch, steps, tol=tol)
    T = trace["steps"]
    hops = hops_to_target(prog)
    up = rises(trace["minimised"])
    nodes = [
        {"node": n, "hops": hops[n], "energy_before": e[0], "energy_after": e[-1], "front_step": trace["front"][n]}
        for n, e in trace["energies"].items()
    ]
    return {
        "graph": prog.graph.name,
        "energy": prog.energy_kind,
        "batch_size": trace["state"].batch_size,
        "steps": T,
        "inference": {"schedule": cfg.schedule, "init": cfg.init, "optimizer": cfg.optimizer.model_dump(),
                      "nudge": prog.loss_weight()},
        "weight_gradient": prog.weight_gradient(),
        "replayed": trace["replayed"],
        "nodes": nodes,
        "total_before": trace["total"][0],
        "total_after": trace["total"][-1],
        "energy_rises": len(up),
        "energy_rise_steps": up,
        "edges": gradient_agreement(prog, batch, trace["state"], trace["noise"]),
        "energies": trace["energies"],
        "total": trace["total"],
    }


def run_diagnose(
    source, overrides=(), *, split="test", batch_size=None, steps=None, device=None, data_dir=None, fresh=False
) -> dict:
    """What ``pcgraph diagnose`` does: load, take the batch, measure."""
    from .run import run_data_dir

    spec, prog, weights = load_model(source, overrides, device=device, fresh=fresh)
    if Path(source).is_dir():
        data_dir = run_data_dir(Path(source), data_dir)
    batch = first_batch(spec, prog.graph, split, batch_size, data_dir)
    with torch.random.fork_rng(devices=[prog.device] if prog.device.type == "cuda" else []):
        torch.manual_seed(spec.train.seed)  # the sampling nodes' noise
        r = diagnose(prog, batch, steps)
    return {"source": str(source), "weights": weights, "split": split, **r}
