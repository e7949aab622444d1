"""Evaluation metrics, accumulated on the device and read once per split."""

from __future__ import annotations

import math

import torch

from ..compile.energy import total_energy


class Metrics:
    """Accumulates loss and per-target metrics over batches.

    * ``loss``: batch-mean BP loss (targets' energies plus prior terms), per sample;
    * per target, what its family scores (``Family.score``): ``accuracy`` of class
      predictions, ``mse`` of values, ``ce_token`` (reported as ``perplexity``) of
      token sequences;
    * ``neg_elbo``: when a ``gaussian_meanvar`` node carries a prior (the loss is then
      the negative ELBO, up to the Gaussian normalising constants).
    """

    def __init__(self, program):
        self.p = program
        self.count = 0
        self.sums: dict[str, torch.Tensor] = {}
        self.n_targets = len(program.targets)
        self.has_vae = any(program.families[n].samples and program.nodes[n].prior is not None for n in program.families)

    def _add(self, key, value, count=None):
        value = value.detach().double()
        if key in self.sums:
            self.sums[key] = self.sums[key] + value
        else:
            self.sums[key] = value
        if count is not None:
            ckey = key + "#n"
            self.sums[ckey] = self.sums.get(ckey, 0) + count

    def _key(self, metric, node):
        return metric if self.n_targets == 1 else f"{metric}.{node}"

    def add(self, terms: dict[str, torch.Tensor], mus: dict[str, torch.Tensor], batch) -> None:
        B = next(iter(terms.values())).shape[0]
        self.count += B
        self._add("loss", total_energy(terms).sum())
        for t in self.p.targets:
            fam = self.p.families[t]
            y = batch[self.p.nodes[t].bind].to(mus[t].device)
            for key, (total, count) in fam.score(fam.prediction_value(mus[t]), y, terms[t]).items():
                self._add(self._key(key, t), total, count)

    def result(self) -> dict[str, float]:
        out = {"loss": (self.sums["loss"] / self.count).item()}
        for key, value in self.sums.items():
            if key == "loss" or key.endswith("#n"):
                continue
            n = self.sums[key + "#n"]
            mean = (value / n).item()
            if key.startswith("ce_token"):
                out[key.replace("ce_token", "perplexity")] = math.exp(min(mean, 700.0))
            else:
                out[key] = mean
        if self.has_vae:
            out["neg_elbo"] = out["loss"]
        return out
