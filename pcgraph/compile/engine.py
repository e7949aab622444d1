"""The fast inference path: local closed-form gradients with cached predictions.

Per batch the engine keeps each node's visible value, each edge's output (and
pre-activation), and each node's prediction mu. Which of them are stale, and which
nodes may carry a non-zero error, is tracked structurally (Python sets driven by the
graph and the update schedule, never by tensor values), so the T loop has no host
synchronisation:

* after a forward initialisation only the clamped targets (and prior terms) carry
  error; a node's gradient is skipped while neither it nor any child can have error,
  so the error front moves back one generation per step instead of every matmul
  running from the first step;
* an edge is recomputed only when one of its sources moved: edges from clamped
  nodes (W x of the input) are computed once per batch;
* gradients use the families' closed forms (dE/dmu, dE/dstate) and the transforms'
  vector-Jacobian products (closed form for every built-in transform); the weight
  gradient reuses the last pass's errors.

* the per-node energies are cached until the node's state or prediction changes, so
  the guard (``guard: true``) sums the total energy per sample after a generation's
  step re-evaluating only the nodes that step touched;
* a preconditioned step (``precondition: true``) scales each node's direction by its
  family's ``step_scale`` at the state before the generation moves.

Every result equals the plain autograd path (``infer``/``weight_grads`` with
``fast=False``) in float64.
"""

from __future__ import annotations

import torch

from .energy import node_energy


#: the guard's second, shorter step, as a fraction of the first
GUARD_SHRINK = 0.25


def guard_tolerance(before: torch.Tensor) -> torch.Tensor:
    """How much a step may raise a sample's energy before the guard calls it a rise:
    rounding, a few ulps of the energy's size."""
    return (before.abs() + 1.0) * (16 * torch.finfo(before.dtype).eps)


def guard_choice(before, e_long, e_short, alpha):
    """The guard's decision per sample, without a host synchronisation: (the step
    fraction to keep, the fraction to try next step). The long step alpha is kept if it
    does not raise the energy (and alpha doubles, up to 1), else the short one
    alpha * GUARD_SHRINK (which becomes the next alpha), else none (alpha shrinks twice)."""
    limit = before + guard_tolerance(before)
    long_ok = e_long <= limit
    short_ok = e_short <= limit
    short = alpha * GUARD_SHRINK
    take = torch.where(long_ok, alpha, torch.where(short_ok, short, torch.zeros_like(alpha)))
    nxt = torch.where(long_ok, (2 * alpha).clamp_(max=1.0), torch.where(short_ok, short, short * GUARD_SHRINK))
    return take, nxt


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector [B] shaped to broadcast against ``like`` [B, ...]."""
    return v.view((-1,) + (1,) * (like.dim() - 1))


class Engine:
    def __init__(self, prog, state, vis, mean, mu, out, pre, fresh: bool):
        self.prog = prog
        self.state = state
        self.vis = vis
        self.mean = mean
        self.mu = mu
        self.out = out
        self.pre = pre
        self.stale_edges: set[str] = set()
        self.stale_mu: set[str] = set()
        self.node_energy: dict[str, torch.Tensor] = {}  # per-node energies [B] still valid
        self.fresh = fresh  # straight from a forward pass, nothing moved since
        if fresh:  # straight after a forward pass: only clamped targets and priors carry error
            self.active = {n for n in prog.energy_nodes if (n in state.clamped and prog.in_edges[n]) or prog.nodes[n].prior is not None}
        else:
            self.active = set(prog.energy_nodes)
        self._seen = {} if torch.compiler.is_compiling() else {n: (id(t), t._version) for n, t in state.items()}
        self.params = {n: prog.params_of(n) for n in prog.nodes}

    @classmethod
    def from_state(cls, prog, state):
        """Build caches from whatever the state holds (no forward-pass assumption)."""
        vis, mean = prog.vis_mean(state, state.noise, state.clamped)
        eng = cls(prog, state, vis, mean, {}, {}, {}, fresh=False)
        eng.weights_changed()  # nothing cached yet: every prediction is stale
        return eng

    # ------------------------------------------------------------ bookkeeping
    def assigned(self, n: str) -> None:
        """A node's tensor was replaced from outside."""
        self._moved(n)

    def _check_outside_edits(self) -> None:
        if torch.compiler.is_compiling():  # a compiled step makes its own state: nothing outside
            return
        for n, t in self.state.items():
            key = (id(t), t._version)
            if self._seen.get(n) != key:
                self._moved(n)

    def _moved(self, n: str) -> None:
        prog = self.prog
        self.fresh = False
        x = self.state[n]
        m, v = prog.see(n, x, self.state.clamped, self.state.noise)
        if m is not None:
            self.mean[n] = m
            self.active.add(n)
        if v is not None:
            self.vis[n] = v
        self.node_energy.pop(n, None)
        for e in prog.out_edges[n]:
            self.stale_edges.add(e.name)
            self.stale_mu.add(e.target)
            self.active.add(e.target)
        if not torch.compiler.is_compiling():
            self._seen[n] = (id(x), x._version)

    def weights_changed(self) -> None:
        prog = self.prog
        self.fresh = False
        self.stale_edges = {e.name for e in prog.edges}
        self.stale_mu = {n for n in prog.energy_nodes if prog.in_edges[n]}
        self.active = set(prog.energy_nodes)
        self.node_energy = {}

    def _refresh(self, nodes) -> None:
        prog = self.prog
        for n in nodes:
            if n not in self.stale_mu:
                continue
            mu = None
            for e in prog.in_edges[n]:
                if e.name in self.stale_edges:
                    self.out[e.name], self.pre[e.name] = prog.edge_forward(e, self.vis, inplace=True)
                    self.stale_edges.discard(e.name)
                y = self.out[e.name]
                mu = y if mu is None else mu + y
            self.mu[n] = mu
            self.stale_mu.discard(n)
            self.node_energy.pop(n, None)

    def _errors(self, nodes):
        """For the active nodes among ``nodes``: ({n: (g, sign)} with dE/dmu = sign * g,
        {n: own-energy gradient} where the family gives it for free)."""
        prog = self.prog
        st = self.state
        gmu, own = {}, {}
        for n in nodes:
            if n in self.active and prog.in_edges[n]:
                g, sign, o = prog.families[n].errors(st[n], self.mean[n], self.mu[n], self.params[n], n in st.clamped)
                gmu[n] = (g, sign)
                if o is not None:
                    own[n] = o
        return gmu, own

    # ------------------------------------------------------------ inference
    def _edge_errors(self, gmu, edges) -> dict[str, tuple]:
        """dE/d(pre-activation) of every edge that carries error to where it is needed."""
        acts, pre, out = self.prog.acts, self.pre, self.out
        ga: dict[str, tuple] = {}
        for e in edges:
            entry = gmu.get(e.target)
            if entry is not None:
                ga[e.name] = (acts[e.name].grad_pre(entry[0], pre[e.name], out[e.name]), entry[1])
        return ga

    def _edge_param_grads(self, ga, edges, param_grads: dict) -> None:
        for e in edges:
            if e.name in ga:
                mod = self.prog.transforms[e.name]
                g, sign = ga[e.name]
                _, gp = mod.vjp([self.vis[s] for s in e.sources], g, [False] * len(e.sources), True)
                for k, t in gp.items():
                    _accumulate(param_grads, mod._parameters[k], t, sign)

    def _direction_seen_as_state(self, n, fam, active, prior, feeding, ga, own, aliased):
        """A node whose children see its state: their gradients add to the node's own,
        accumulated straight into one buffer (linear edges: inside the matmul)."""
        st = self.state
        acc, acc_sign, owned = None, 1.0, False
        if active and prior is None and n in own:
            acc, owned = own[n], id(own[n]) not in aliased
        elif active or prior is not None:
            acc, owned = fam.grad_state(st[n], self.mu[n] if active else None, self.params[n], None, st.noise.get(n), prior), True
        for e in feeding:
            mod = self.prog.transforms[e.name]
            g, sign = ga[e.name]
            inputs = [self.vis[s] for s in e.sources]
            for k, s in enumerate(e.sources):
                if s == n:
                    acc, acc_sign, owned = mod.vjp_into(acc, acc_sign, owned, inputs, g, sign, k)
        return fam.project(acc), acc_sign

    def _gradient_seen(self, n, feeding, ga, in_group, gin_cache) -> torch.Tensor | None:
        """The gradient with respect to what node ``n``'s children see."""
        st, g_vis = self.state, None
        for e in feeding:
            gin = gin_cache.get(e.name)
            if gin is None:
                mod = self.prog.transforms[e.name]
                g, sign = ga[e.name]
                need = [s in in_group and s not in st.clamped for s in e.sources]
                gin, _ = mod.vjp([self.vis[s] for s in e.sources], g if sign == 1.0 else -g, need, False)
                gin_cache[e.name] = gin
            for s, gs in zip(e.sources, gin):
                if s == n and gs is not None:
                    g_vis = gs if g_vis is None else g_vis + gs
        return g_vis

    def _directions(self, group, gmu, own, param_grads: dict | None = None, edges=None):
        """Update directions {node: (d, sign)} for the nodes of ``group`` (and, if
        ``param_grads`` is a dict, the weight gradients from the same errors).
        ``edges``: the edges leaving ``group`` (default: all edges, as weights need)."""
        prog, st = self.prog, self.state
        edges = prog.edges if edges is None else edges
        ga = self._edge_errors(gmu, edges)
        if param_grads is not None:
            self._edge_param_grads(ga, edges, param_grads)
        aliased = {id(g) for g, _ in ga.values()}  # own-gradient buffers that double as an edge's ga
        in_group, dirs, gin_cache = set(group), {}, {}
        for n in group:
            fam = prog.families[n]
            active = n in self.active and n in gmu
            prior = prog.nodes[n].prior
            feeding = [e for e in prog.out_edges[n] if e.name in ga]
            if not active and prior is None and not feeding:
                continue  # the gradient is exactly zero
            if fam.vis_is_state:
                dirs[n] = self._direction_seen_as_state(n, fam, active, prior, feeding, ga, own, aliased)
                continue
            g_vis = self._gradient_seen(n, feeding, ga, in_group, gin_cache)
            mu = self.mu[n] if active else None
            dirs[n] = (fam.grad_state(st[n], mu, self.params[n], g_vis, st.noise.get(n), prior), 1.0)
        return dirs

    def infer(self, T: int, opt, schedule, weight_step) -> None:
        prog = self.prog
        st = self.state
        self._check_outside_edits()
        incremental = schedule.steps_weights
        precondition = getattr(opt.cfg, "precondition", False)
        guard = getattr(opt.cfg, "guard", False)
        plans = []  # per group: (nodes whose mu and error are needed, edges leaving the group)
        for group in prog.free_groups(st, schedule):
            need = list(group)
            for n in group:
                need.extend(e.target for e in prog.out_edges[n] if e.target not in need)
            if incremental:
                need.extend(n for n in prog.energy_nodes if n not in need)
            in_group = set(group)
            edges = prog.edges if incremental else [e for e in prog.edges if any(s in in_group for s in e.sources)]
            plans.append((group, need, edges))
        alphas: dict[int, torch.Tensor] = {}  # the guard's step fraction per group and sample
        for _ in range(T):
            opt.begin_step()
            for group, need, edges in plans:
                self._refresh(need)
                gmu, own = self._errors(need)
                pgrads = {} if incremental else None
                dirs = self._directions(group, gmu, own, pgrads, edges)
                if pgrads is not None:
                    self._node_param_grads(pgrads)
                    self._set_grads(pgrads)
                guarded = guard and bool(dirs)
                if guarded:
                    before = self.total_energy()
                    old = {n: st[n].clone() for n in dirs}
                    alpha = alphas.get(id(group))
                    if alpha is None:
                        alpha = torch.ones_like(before)
                if precondition:  # every scale at the state before this group moves
                    dirs = {n: (d * self.step_scale(n), sign) for n, (d, sign) in dirs.items()}
                for n, (d, sign) in dirs.items():
                    opt.update(n, st[n], d, sign)
                    self._moved(n)
                if guarded:
                    alphas[id(group)] = self._guard(old, before, alpha)
                if incremental:
                    weight_step()
                    self.weights_changed()

    def step_scale(self, n: str, prior: bool = True):
        """The preconditioner of node ``n``'s step at the current state (``prior``: with
        the prior's curvature)."""
        prog = self.prog
        mu = None
        if prog.in_edges[n]:
            self._refresh([n])
            mu = self.mu[n]
        free_prior = prog.nodes[n].prior if prior and n not in self.state.clamped else None
        return prog.families[n].step_scale(self.state[n], mu, self.params[n], free_prior)

    def _guard(self, old: dict, before: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Keep, per sample, the first of the steps alpha * full and alpha/4 * full (full:
        the step just taken from ``old``) that does not raise the total energy above
        ``before``, else no step; return the next step fractions (see ``guard_choice``)."""
        st = self.state
        full = {n: st[n] - x for n, x in old.items()}
        energy = []
        for frac in (alpha, alpha * GUARD_SHRINK):
            for n, x in old.items():
                st[n].copy_(x + _per_sample(frac, x) * full[n])
                self._moved(n)
            energy.append(self.total_energy())
        take, nxt = guard_choice(before, energy[0], energy[1], alpha)
        for n, x in old.items():
            st[n].copy_(x + _per_sample(take, x) * full[n])
            self._moved(n)
        return nxt

    # ------------------------------------------------------------ weights
    def _node_param_grads(self, acc: dict) -> None:
        prog = self.prog
        st = self.state
        for n, pd in prog.node_params.items():
            if not prog.in_edges[n]:
                continue
            self._refresh([n])
            grads = prog.families[n].grad_params(st[n], self.mean[n], self.mu[n], self.params[n], n in st.clamped)
            for k, g in grads.items():
                _accumulate(acc, pd[k], g, 1.0)

    def _set_grads(self, acc: dict) -> None:
        B = self.state.batch_size
        for p in self.prog.parameters():
            entry = acc.get(p)
            p.grad = torch.zeros_like(p) if entry is None else entry[0].mul_(entry[1] / B)

    def weight_grads(self) -> dict[str, torch.Tensor]:
        prog = self.prog
        self._check_outside_edits()
        self._refresh(prog.energy_nodes)
        gmu, own = self._errors(prog.energy_nodes)
        acc: dict = {}
        self._directions([], gmu, own, acc)
        self._node_param_grads(acc)
        self._set_grads(acc)
        return self.energies()

    def energies(self) -> dict[str, torch.Tensor]:
        """Per-node energies [B] from the cached predictions."""
        prog = self.prog
        self._refresh(prog.energy_nodes)
        out = {}
        for n in prog.energy_nodes:
            out[n] = self._energy_of(n)
        return out

    def _energy_of(self, n: str) -> torch.Tensor:
        """Node ``n``'s energy [B] (prior included), cached until its state or prediction changes."""
        e = self.node_energy.get(n)
        if e is None:
            prog = self.prog
            st = self.state
            mu = self.mu[n] if prog.in_edges[n] else None
            e = self.node_energy[n] = node_energy(prog, n, st[n], self.mean[n], mu, st.clamped, self.params[n])
        return e

    def total_energy(self) -> torch.Tensor:
        """The total energy per sample [B] at the current state."""
        prog = self.prog
        self._refresh(prog.energy_nodes)
        total = None
        for n in prog.energy_nodes:
            e = self._energy_of(n)
            if e is not None:
                total = e if total is None else total + e
        return total


def _accumulate(acc: dict, p, g, sign: float) -> None:
    """acc[p] = (tensor, sign) representing the running sum of sign * g."""
    if p in acc:
        t, s = acc[p]
        acc[p] = (t + g * (sign * s), s)
    else:
        acc[p] = (g, sign)
