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
  vector-Jacobian products (closed form for every built-in transform), a node's
  children's messages added into its own gradient inside the products
  (``Transform.vjp_into``); the weight gradient reuses the last pass's errors;
* the per-node energies are cached until the node's state or prediction changes, so
  the guard sums the total energy per sample re-evaluating only the nodes a step touched;
  so are the errors dE/dmu, and a family whose energy is a function of its error alone
  (``Family.energy_from_error``: a unit-variance Gaussian's) scores a node from the
  error a step already took, or leaves the error it took for the next step.

Every result equals the plain autograd path (``reference.py``) in float64.
"""

from __future__ import annotations

import torch

from .energy import grad_state, node_energy, step_scale, sum_terms
from .forward import edge_forward, see, vis_mean


class Engine:
    """The caches of one State on one program, and the gradients computed from them."""

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
        self.diffs: dict[str, torch.Tensor] = {}  # dE/dmu (loss terms unweighted) still valid
        #: straight from a forward pass, nothing moved since
        self.fresh = fresh
        if fresh:  # only clamped targets and priors carry error
            self.active = {
                n
                for n in prog.energy_nodes
                if (n in state.clamped and prog.in_edges[n]) or prog.nodes[n].prior is not None
            }
        else:
            self.active = set(prog.energy_nodes)
        self.seen = {} if torch.compiler.is_compiling() else {n: (id(t), t._version) for n, t in state.items()}
        self.params = {n: prog.params_of(n) for n in prog.nodes}
        #: per node: the names of its out-edges and their targets (``moved`` marks them)
        self.feeds = {n: ({e.name for e in es}, {e.target for e in es}) for n, es in prog.out_edges.items()}

    @classmethod
    def from_state(cls, prog, state):
        """Build caches from whatever the state holds (no forward-pass assumption)."""
        vis, mean = vis_mean(prog, state, state.noise, state.clamped)
        eng = cls(prog, state, vis, mean, {}, {}, {}, fresh=False)
        eng.weights_changed()  # nothing cached yet: every prediction is stale
        return eng

    # ------------------------------------------------------------ bookkeeping
    def assigned(self, n: str) -> None:
        """A node's tensor was replaced from outside."""
        self.moved(n)

    def check_outside_edits(self) -> None:
        """Take note of states changed in place or replaced since the engine last looked."""
        if torch.compiler.is_compiling():  # a compiled step makes its own state: nothing outside
            return
        for n, t in self.state.items():
            if self.seen.get(n) != (id(t), t._version):
                self.moved(n)

    def moved(self, n: str) -> None:
        """Node ``n``'s state changed: what it shows, its energy and its children's
        predictions are stale, and it and its children may carry error."""
        prog = self.prog
        self.fresh = False
        x = self.state[n]
        m, v = see(prog, n, x, self.state.clamped, self.state.noise)
        if m is not None:
            self.mean[n] = m
            self.active.add(n)
        if v is not None:
            self.vis[n] = v
        self.node_energy.pop(n, None)
        self.diffs.pop(n, None)
        edges, targets = self.feeds[n]
        self.stale_edges |= edges
        self.stale_mu |= targets
        self.active |= targets
        if not torch.compiler.is_compiling():
            self.seen[n] = (id(x), x._version)

    def weights_changed(self) -> None:
        """The weights changed: every prediction and energy is stale."""
        prog = self.prog
        self.fresh = False
        self.stale_edges = {e.name for e in prog.edges}
        self.stale_mu = {n for n in prog.energy_nodes if prog.in_edges[n]}
        self.active = set(prog.energy_nodes)
        self.node_energy = {}
        self.diffs = {}

    def refresh(self, nodes) -> None:
        """Recompute the stale predictions among ``nodes`` (only their stale edges)."""
        if not self.stale_mu:
            return
        prog = self.prog
        for n in nodes:
            if n not in self.stale_mu:
                continue
            mu = None
            for e in prog.in_edges[n]:
                if e.name in self.stale_edges:
                    self.out[e.name], self.pre[e.name] = edge_forward(prog, e, self.vis, inplace=True)
                    self.stale_edges.discard(e.name)
                y = self.out[e.name]
                mu = y if mu is None else mu + y
            self.mu[n] = mu
            self.stale_mu.discard(n)
            self.node_energy.pop(n, None)
            self.diffs.pop(n, None)

    # ------------------------------------------------------------ gradients
    def errors(self, nodes) -> dict[str, torch.Tensor]:
        """{node: dE/dmu} for the nodes among ``nodes`` that have parents and may carry
        error (the others' is exactly zero); their predictions must be fresh. A clamped
        node's error is weighted by the state's ``loss_weight``."""
        prog, st = self.prog, self.state
        w = st.loss_weight
        out = {}
        for n in nodes:
            if n in self.active and prog.in_edges[n]:
                g = self.diff(n)
                out[n] = g * w if w != 1.0 and n in st.clamped else g
        return out

    def diff(self, n: str) -> torch.Tensor:
        """Node ``n``'s dE/dmu, loss term unweighted (its prediction must be fresh);
        cached until its state or prediction changes. Callers never change it in place."""
        g = self.diffs.get(n)
        if g is None:
            st = self.state
            g = self.diffs[n] = self.prog.families[n].grad_mu(
                st[n], self.mean[n], self.mu[n], self.params[n], n in st.clamped
            )
        return g

    def edge_errors(self, errors: dict, edges) -> dict[str, torch.Tensor]:
        """dE/d(pre-activation) of every edge among ``edges`` whose target has an error."""
        acts, pre, out = self.prog.acts, self.pre, self.out
        return {
            e.name: acts[e.name].grad_pre(errors[e.target], pre[e.name], out[e.name])
            for e in edges
            if e.target in errors
        }

    def _direction_seen_as_state(self, n, fam, own: bool, prior, feeding, ga) -> torch.Tensor:
        """The direction of a node whose children see its state: its own gradient, with
        its children's messages added into it inside their transforms' products."""
        st = self.state
        acc = None
        if own or prior is not None:
            mu = self.mu[n] if own else None
            acc = grad_state(fam, st[n], mu, self.params[n], None, st.noise.get(n), prior, st.loss_weight)
        for e in feeding:
            mod = self.prog.transforms[e.name]
            inputs = [self.vis[s] for s in e.sources]
            for k, s in enumerate(e.sources):
                if s == n:
                    acc = mod.vjp_into(acc, inputs, ga[e.name], k)
        return fam.project(acc)

    def _gradient_seen(self, n, feeding, ga, in_group, gin_cache) -> torch.Tensor | None:
        """The gradient with respect to what node ``n``'s children see."""
        st, g_vis = self.state, None
        for e in feeding:
            gin = gin_cache.get(e.name)
            if gin is None:
                need = [s in in_group and s not in st.clamped for s in e.sources]
                gin, _ = self.prog.transforms[e.name].vjp([self.vis[s] for s in e.sources], ga[e.name], need, False)
                gin_cache[e.name] = gin
            for s, gs in zip(e.sources, gin):
                if s == n and gs is not None:
                    g_vis = gs if g_vis is None else g_vis + gs
        return g_vis

    def directions(self, group, ga: dict, own: bool = True) -> dict[str, torch.Tensor]:
        """{node: update direction} for the nodes of ``group``, from the edge errors
        ``ga``; ``own``: with each node's own prediction term (else its children's
        messages and its prior only). A node whose direction is exactly zero is left out."""
        prog, st = self.prog, self.state
        in_group, dirs, gin_cache = set(group), {}, {}
        for n in group:
            fam = prog.families[n]
            active = own and n in self.active and bool(prog.in_edges[n])
            prior = prog.nodes[n].prior
            feeding = [e for e in prog.out_edges[n] if e.name in ga]
            if not active and prior is None and not feeding:
                continue
            if fam.vis_is_state:
                dirs[n] = self._direction_seen_as_state(n, fam, active, prior, feeding, ga)
                continue
            g_vis = self._gradient_seen(n, feeding, ga, in_group, gin_cache)
            mu = self.mu[n] if active else None
            dirs[n] = grad_state(fam, st[n], mu, self.params[n], g_vis, st.noise.get(n), prior, st.loss_weight)
        return dirs

    def step_scale(self, n: str, prior: bool = True):
        """The preconditioner of node ``n``'s step at the current state (``prior``: with
        the prior's curvature)."""
        prog = self.prog
        mu = None
        if prog.in_edges[n]:
            self.refresh([n])
            mu = self.mu[n]
        free_prior = prog.nodes[n].prior if prior and n not in self.state.clamped else None
        return step_scale(prog.families[n], self.state[n], mu, self.params[n], free_prior, self.state.loss_weight)

    # ------------------------------------------------------------ weights
    def edge_param_grads(self, ga: dict, edges, grads: dict) -> None:
        """Add every edge's parameter gradients (batch sums) to ``grads`` {parameter: tensor}."""
        for e in edges:
            if e.name in ga:
                mod = self.prog.transforms[e.name]
                _, gp = mod.vjp([self.vis[s] for s in e.sources], ga[e.name], [False] * len(e.sources), True)
                for k, t in gp.items():
                    add_grad(grads, mod.params[k], t)

    def node_param_grads(self, grads: dict, states: dict | None = None, nodes=None) -> None:
        """Add the gradients of the nodes' own parameters (a learned variance) to
        ``grads``, at the current states or at ``states`` {node: state}, for ``nodes``
        (default: every node with parents)."""
        prog, clamped = self.prog, self.state.clamped
        for n, pd in prog.node_params.items():
            if not prog.in_edges[n] or (nodes is not None and n not in nodes):
                continue
            self.refresh([n])
            fam = prog.families[n]
            x = self.state[n] if states is None else states[n]
            mean = self.mean[n] if states is None else fam.mean(x, n in clamped)
            w = self.state.loss_weight if n in clamped else 1.0  # a loss term is weighted
            for k, g in fam.grad_params(x, mean, self.mu[n], self.params[n], n in clamped).items():
                add_grad(grads, pd[k], g if w == 1.0 else g * w)

    def set_grads(self, grads: dict) -> None:
        """``.grad`` of every parameter: its entry in ``grads`` (a batch sum) over the
        batch size and the state's loss weight, zero where it has none."""
        scale = 1.0 / (self.state.batch_size * self.state.loss_weight)
        for p in self.prog.parameters():
            g = grads.get(p)
            p.grad = torch.zeros_like(p) if g is None else g.mul_(scale)

    def weight_grads(self) -> dict[str, torch.Tensor]:
        """Set ``.grad`` of every parameter to the gradient of the batch-mean energy at
        the current state; return the per-node energies [B]."""
        prog = self.prog
        self.check_outside_edits()
        self.refresh(prog.energy_nodes)
        grads: dict = {}
        self.edge_param_grads(self.edge_errors(self.errors(prog.energy_nodes), prog.edges), prog.edges, grads)
        self.node_param_grads(grads)
        self.set_grads(grads)
        return self.energies()

    # ------------------------------------------------------------ energies
    def energies(self) -> dict[str, torch.Tensor]:
        """Per-node energies [B] from the cached predictions (loss terms weighted by the
        state's ``loss_weight``)."""
        prog = self.prog
        self.refresh(prog.energy_nodes)
        return {n: self.energy_of(n) for n in prog.energy_nodes}

    def plain_energies(self) -> dict[str, torch.Tensor]:
        """Per-node energies [B] as written (loss terms not weighted) from the cached
        predictions; a node without a loss term shares the weighted cache."""
        terms = self.energies()
        prog, st = self.prog, self.state
        if st.loss_weight == 1.0:
            return terms
        for n in prog.energy_nodes:
            if n in st.clamped or prog.nodes[n].prior is not None:
                mu = self.mu[n] if prog.in_edges[n] else None
                terms[n] = node_energy(prog, n, st[n], self.mean[n], mu, st.clamped, self.params[n])
        return terms

    def energy_of(self, n: str) -> torch.Tensor:
        """Node ``n``'s energy [B] (prior included), cached until its state or prediction changes."""
        e = self.node_energy.get(n)
        if e is None:
            prog, st = self.prog, self.state
            mu = self.mu[n] if prog.in_edges[n] else None
            if mu is not None and (n in st.clamped or prog.nodes[n].prior is None):  # node_energy's terms
                e = prog.families[n].energy_from_error(lambda: self.diff(n), self.params[n])
                if e is not None and st.loss_weight != 1.0 and n in st.clamped:
                    e = e * st.loss_weight
            if e is None:
                e = node_energy(prog, n, st[n], self.mean[n], mu, st.clamped, self.params[n], weight=st.loss_weight)
            self.node_energy[n] = e
        return e

    def total_energy(self) -> torch.Tensor:
        """The total energy per sample [B] at the current state: ``energies()`` summed
        in the same order, without building the dictionary."""
        self.refresh(self.prog.energy_nodes)
        return sum_terms(self.energy_of(n) for n in self.prog.energy_nodes)


def add_grad(grads: dict, p, g: torch.Tensor) -> None:
    """grads[p] += g (the first ``g`` is kept as it is: gradients are new tensors)."""
    grads[p] = g if p not in grads else grads[p] + g


def engine_for(prog, state):
    """The state's fast-path caches, built from the state if it has none for this program."""
    if state.engine is None or state.engine.prog is not prog:
        state.engine = Engine.from_state(prog, state)
    return state.engine
