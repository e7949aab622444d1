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
  vector-Jacobian products (closed form for linear/identity/flatten, autograd on
  the single edge otherwise); the weight gradient reuses the last pass's errors.

Every result equals the plain autograd path (``Program(fast=False)``) in float64.
"""

from __future__ import annotations

import torch


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
        if fresh:  # straight after a forward pass: only clamped targets and priors carry error
            self.active = {n for n in prog.energy_nodes if (n in state.clamped and prog.in_edges[n]) or prog.nodes[n].prior is not None}
        else:
            self.active = set(prog.energy_nodes)
        self._seen = {} if torch.compiler.is_compiling() else {n: (id(t), t._version) for n, t in state.items()}

    @classmethod
    def from_state(cls, prog, state):
        """Build caches from whatever the state holds (no forward-pass assumption)."""
        vis, mean = {}, {}
        for n in prog.order:
            x = state[n]
            if prog.nodes[n].role == "input":
                vis[n] = x
                continue
            fam = prog.families[n]
            mean[n] = fam.mean(x, n in state.clamped)
            if prog.out_edges[n]:
                vis[n] = fam.visible(x, mean[n], state.noise.get(n))
        eng = cls(prog, state, vis, mean, {}, {}, {}, fresh=False)
        eng.stale_edges = {e.name for e in prog.edges}
        eng.stale_mu = {n for n in prog.energy_nodes if prog.in_edges[n]}
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
        x = self.state[n]
        if prog.nodes[n].role == "input":
            self.vis[n] = x
        else:
            fam = prog.families[n]
            m = self.mean[n] = fam.mean(x, n in self.state.clamped)
            if prog.out_edges[n]:
                self.vis[n] = fam.visible(x, m, self.state.noise.get(n))
            self.active.add(n)
        for e in prog.out_edges[n]:
            self.stale_edges.add(e.name)
            self.stale_mu.add(e.target)
            self.active.add(e.target)
        if not torch.compiler.is_compiling():
            self._seen[n] = (id(x), x._version)

    def weights_changed(self) -> None:
        prog = self.prog
        self.stale_edges = {e.name for e in prog.edges}
        self.stale_mu = {n for n in prog.energy_nodes if prog.in_edges[n]}
        self.active = set(prog.energy_nodes)

    def _refresh(self, nodes) -> None:
        prog = self.prog
        for n in nodes:
            if n not in self.stale_mu:
                continue
            mu = None
            for e in prog.in_edges[n]:
                if e.name in self.stale_edges:
                    self.out[e.name], self.pre[e.name] = prog._edge_forward(e, self.vis)
                    self.stale_edges.discard(e.name)
                y = self.out[e.name]
                mu = y if mu is None else mu + y
            self.mu[n] = mu
            self.stale_mu.discard(n)

    def _gmu(self, nodes) -> dict[str, torch.Tensor]:
        prog = self.prog
        st = self.state
        out = {}
        for n in nodes:
            if n in self.active and prog.in_edges[n]:
                out[n] = prog.families[n].grad_mu(st[n], self.mean[n], self.mu[n], prog.params_of(n), n in st.clamped)
        return out

    def _grad_pre(self, e, gmu):
        """dE/d(pre-activation) of an edge, from its target's dE/dmu."""
        act = self.prog.acts[e.name]
        g = gmu[e.target]
        if act.name == "identity":
            return g
        return g * act.derivative(self.pre[e.name], self.out[e.name])

    # ------------------------------------------------------------ inference
    def _directions(self, group, gmu, param_grads: dict | None = None):
        """Update directions for the nodes of ``group`` (and, if ``param_grads`` is a
        dict, the weight gradients from the same errors)."""
        prog = self.prog
        st = self.state
        in_group = set(group)
        gvis: dict[str, torch.Tensor] = {}
        edges = prog.edges if param_grads is not None else {e.name: e for n in group for e in prog.out_edges[n]}.values()
        for e in edges:
            if e.target not in gmu:
                continue
            need = [s in in_group for s in e.sources]
            want_p = param_grads is not None
            if not any(need) and not want_p:
                continue
            ga = self._grad_pre(e, gmu)
            mod = prog.edge_modules[e.name]
            gin, gp = mod.vjp([self.vis[s] for s in e.sources], ga, need, want_p)
            for s, g in zip(e.sources, gin):
                if g is not None:
                    gvis[s] = g if s not in gvis else gvis[s] + g
            if want_p:
                for k, g in gp.items():
                    _accumulate(param_grads, getattr(mod, k), g)
        dirs = {}
        for n in group:
            own = n in self.active and n in gmu
            prior = prog.nodes[n].prior
            g = gvis.get(n)
            if not own and prior is None and g is None:
                continue  # the gradient is exactly zero
            fam = prog.families[n]
            dirs[n] = fam.grad_state(st[n], self.mu[n] if own else None, prog.params_of(n), g, st.noise.get(n), prior)
        return dirs

    def infer(self, T: int, opt, schedule: str, weight_step) -> None:
        prog = self.prog
        st = self.state
        self._check_outside_edits()
        groups = prog._free_groups(st, schedule)
        for _ in range(T):
            opt.begin_step()
            for group in groups:
                need = set(group)
                for n in group:
                    need.update(e.target for e in prog.out_edges[n])
                if schedule == "incremental":
                    need.update(prog.energy_nodes)
                self._refresh(need)
                gmu = self._gmu(need)
                pgrads = {} if schedule == "incremental" else None
                dirs = self._directions(group, gmu, pgrads)
                if pgrads is not None:
                    self._node_param_grads(pgrads)
                    self._set_grads(pgrads)
                for n, d in dirs.items():
                    opt.update(n, st[n], d)
                    self._moved(n)
                if schedule == "incremental":
                    weight_step()
                    self.weights_changed()

    # ------------------------------------------------------------ weights
    def _node_param_grads(self, acc: dict) -> None:
        prog = self.prog
        st = self.state
        for n, pd in prog.node_params.items():
            if not prog.in_edges[n]:
                continue
            self._refresh([n])
            grads = prog.families[n].grad_params(st[n], self.mean[n], self.mu[n], dict(pd.items()), n in st.clamped)
            for k, g in grads.items():
                _accumulate(acc, pd[k], g)

    def _set_grads(self, acc: dict) -> None:
        B = self.state.batch_size
        for p in self.prog.parameters():
            g = acc.get(p)
            p.grad = torch.zeros_like(p) if g is None else g.div_(B)

    def weight_grads(self) -> dict[str, torch.Tensor]:
        prog = self.prog
        st = self.state
        self._check_outside_edits()
        self._refresh(prog.energy_nodes)
        gmu = self._gmu(prog.energy_nodes)
        acc: dict = {}
        self._directions([], gmu, acc)
        self._node_param_grads(acc)
        self._set_grads(acc)
        return self.energies()

    def energies(self) -> dict[str, torch.Tensor]:
        """Per-node energies [B] from the cached predictions."""
        prog = self.prog
        st = self.state
        self._refresh(prog.energy_nodes)
        out = {}
        for n in prog.energy_nodes:
            fam = prog.families[n]
            e = None
            if prog.in_edges[n]:
                e = fam.energy(st[n], self.mean[n], self.mu[n], prog.params_of(n), n in st.clamped)
            prior = prog.nodes[n].prior
            if prior is not None and n not in st.clamped:
                p = fam.prior_energy(st[n], self.mean[n], prior, prog.params_of(n))
                e = p if e is None else e + p
            out[n] = e
        return out


def _accumulate(acc: dict, p, g) -> None:
    if p in acc:
        acc[p] = acc[p] + g
    else:
        acc[p] = g
