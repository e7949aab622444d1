"""Energies: the one per-node energy formula and the places that use it -- the
reference path (from scratch, differentiable), evaluation and the backprop loss.
The fast engine calls the same ``node_energy``."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..core.errors import CompileError, DataError, Issue
from .state import State


def node_energy(prog, n: str, x, mean, mu, clamped, params, fam=None) -> torch.Tensor | None:
    """Node ``n``'s energy per sample [B] holding ``x`` (mean parameters ``mean``):
    its family's term against the prediction ``mu`` (None: no parents, no term) plus
    its prior's term when it has a prior and is free. ``fam``: another form of the
    node's family to score it with (default: the program's)."""
    fam = prog.families[n] if fam is None else fam
    e = None if mu is None else fam.energy(x, mean, mu, params, n in clamped)
    prior = prog.nodes[n].prior
    if prior is None or n in clamped:
        return e
    p = fam.prior_energy(x, mean, prior, params)
    return p if e is None else e + p


class Energies:
    """The Program's energy side (a mixin of Program)."""

    def see(self, n: str, x: torch.Tensor, clamped, noise: Mapping, natural_leaves: dict | None = None):
        """(mean parameters, what children see) of node ``n`` holding ``x``: an input has
        no mean and is seen as it is; a node without children is not seen (None). A node
        named in ``natural_leaves`` gets its mean as an autograd leaf (stored there)."""
        if self.nodes[n].role == "input":
            return None, x
        fam = self.families[n]
        m = fam.mean(x, n in clamped)
        if natural_leaves is not None and n in natural_leaves:
            m = natural_leaves[n] = m if m.requires_grad else m.detach().requires_grad_(True)
        return m, (fam.visible(x, m, noise.get(n)) if self.out_edges[n] else None)

    def vis_mean(self, state: Mapping[str, torch.Tensor], noise: Mapping, clamped: frozenset, natural_leaves: dict | None = None):
        """({node: what children see}, {node: mean parameters}) of a state."""
        vis, mean = {}, {}
        for n in self.order:
            m, v = self.see(n, state[n], clamped, noise, natural_leaves)
            if m is not None:
                mean[n] = m
            if v is not None:
                vis[n] = v
        return vis, mean

    def energy_terms(self, state: Mapping[str, torch.Tensor], noise: Mapping, clamped: frozenset, natural_leaves: dict | None = None):
        """Per-node energies [B] computed from scratch (differentiable)."""
        vis, mean = self.vis_mean(state, noise, clamped, natural_leaves)
        energies, mus = {}, {}
        for n in self.energy_nodes:
            if self.in_edges[n]:
                mus[n] = self.predict_node(n, vis)
            energies[n] = node_energy(self, n, state[n], mean[n], mus.get(n), clamped, self.params_of(n))
        return energies, mus

    def node_energies(self, state: State) -> dict[str, torch.Tensor]:
        """{node: energy per sample [B]} for every non-input node, prior terms included."""
        return self.energy_terms(state, state.noise, state.clamped)[0]

    def energy(self, state: State) -> torch.Tensor:
        """Batch mean of the per-sample total energy (differentiable)."""
        terms = self.node_energies(state)
        return torch.stack(list(terms.values())).sum(0).mean()

    def predictions(self, state: State) -> dict[str, torch.Tensor]:
        """{node: mu [B, *param_shape]}: the prediction from the parents' current
        states, before the family's link (logits for categorical)."""
        return self.energy_terms(state, state.noise, state.clamped)[1]

    def _kl_family(self, n: str):
        """The F_KL form of node n's family (the program's own when compiled with kl)."""
        if self.kl:
            return self.families[n]
        cache = self.__dict__.setdefault("_kl_families", {})
        if n not in cache:
            info = self.nodes[n]
            cache[n] = info.family_cls(info.options, info.shape, kl=True, natural=False, dtype=self.dtype)
        return cache[n]

    def loss_terms(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None, *, kl_targets: bool = False):
        """Under the plain forward pass: ({node: energy [B]} for the targets and the
        prior terms, {target: prediction mu}). Differentiable w.r.t. parameters.
        ``kl_targets`` scores the targets with their F_KL energy whatever the program's
        energy (cross-entropy for a categorical target), so that losses compare across
        energies."""
        if not self.graph.is_dag:
            raise CompileError(Issue(("train", "method"), "backprop needs a forward pass; this graph is cyclic"))
        clamped = self.clamped_from_batch(batch)
        missing = [t for t in self.targets if t not in clamped]
        if missing:
            info = self.nodes[missing[0]]
            raise DataError(Issue(("nodes", missing[0], "bind"), f"the batch has no field '{info.bind}' for target node '{missing[0]}'", info.location))
        B = next(iter(clamped.values())).shape[0]
        nz = self.draw_noise(B, noise)
        values, vis, mean, mu, _, _ = self.forward_pass(clamped, nz, B, copy=False)
        terms = {}
        for n in self.energy_nodes:
            # under the forward pass only the clamped nodes (targets) differ from their
            # predictions; free nodes contribute their prior terms
            fam = self._kl_family(n) if kl_targets and n in clamped else self.families[n]
            m = mean[n] if fam is self.families[n] else fam.mean(values[n], True)
            e = node_energy(self, n, values[n], m, mu[n] if n in clamped else None, clamped, self.params_of(n), fam)
            if e is not None:
                terms[n] = e
        return terms, {t: mu[t] for t in self.targets}

    def loss_bp(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The backprop loss: batch mean of the target nodes' energies plus the prior
        terms, under the plain forward pass (differentiable w.r.t. parameters)."""
        terms, _ = self.loss_terms(batch, noise)
        return torch.stack(list(terms.values())).sum(0).mean()

    @torch.no_grad()
    def evaluate_batch(self, batch: Mapping[str, Any], noise: Mapping[str, torch.Tensor] | None = None):
        """({node: energy [B]}, {target: mu}) for evaluation: the BP loss terms under the
        forward pass, targets scored by their F_KL energy (cyclic graphs: the energies after inference with targets clamped,
        and predictions from inference with targets free)."""
        if self.graph.is_dag:
            return self.loss_terms(batch, noise, kl_targets=True)
        state = self.init_state(batch, init=self.train_cfg.inference.init, noise=noise)
        self.infer(state)
        terms = self.node_energies(state)
        inputs_only = {self.nodes[n].bind: batch[self.nodes[n].bind] for n in self.inputs}
        free = self.init_state(inputs_only, init=self.train_cfg.inference.init, noise=noise)
        cfg = self.train_cfg.inference
        self.infer(free, steps=cfg.eval_steps if cfg.eval_steps is not None else cfg.steps)
        mus = self.predictions(free)
        return terms, {t: mus[t] for t in self.targets}

