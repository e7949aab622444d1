"""Evaluation metrics, accumulated on the device and read once per split."""

from __future__ import annotations

import math

import torch


class Metrics:
    """Accumulates loss and per-target metrics over batches.

    * ``loss``: batch-mean BP loss (targets' energies plus prior terms), per sample;
    * ``accuracy``: categorical targets, and Gaussian targets bound to class indices;
    * ``perplexity`` (and token ``accuracy``): categorical sequence targets [L, V];
    * ``mse``: Gaussian and Bernoulli targets (mean squared error per unit);
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
        self._add("loss", torch.stack(list(terms.values())).sum(0).sum())
        for t in self.p.targets:
            info = self.p.nodes[t]
            fam = self.p.families[t]
            y = batch[info.bind].to(mus[t].device)
            pred = fam.prediction_value(mus[t])
            if fam.name == "categorical":
                seq = len(info.shape) > 1
                label = y if not y.is_floating_point() else y.argmax(-1)
                label = label.reshape(pred.shape[:-1])
                correct = (pred.argmax(-1) == label).sum()
                tokens = label.numel()
                self._add(self._key("accuracy", t), correct, tokens)
                if seq:
                    self._add(self._key("ce_token", t), terms[t].sum(), tokens)
            else:
                if not y.is_floating_point() and fam.name == "gaussian":
                    self._add(self._key("accuracy", t), (pred.argmax(-1) == y.reshape(pred.shape[:-1])).sum(), y.numel())
                    y = torch.nn.functional.one_hot(y.long(), info.shape[-1]).to(pred.dtype)
                y = y.reshape(pred.shape).to(pred.dtype)
                self._add(self._key("mse", t), ((pred - y) ** 2).sum(), pred.numel())

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


def error_of(row: dict) -> float | None:
    """The test error of a metrics row: its ``error`` (a stream's), else 1 - its
    ``accuracy``; None for a row without either (no classification target)."""
    if "error" in row:
        return row["error"]
    if "accuracy" in row:
        return 1.0 - row["accuracy"]
    return None


def error_summary(test_rows: list[dict]) -> dict[str, float]:
    """``mean_error`` (the test error averaged over a run's evaluations) and
    ``final_error`` (the last one's), where the rows have an error."""
    errors = [e for e in map(error_of, test_rows) if e is not None]
    if not errors:
        return {}
    return {"mean_error": math.fsum(errors) / len(errors), "final_error": errors[-1]}
