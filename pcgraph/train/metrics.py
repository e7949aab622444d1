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


def run_summary(trainer, seconds: float | None = None) -> dict:
    """What summary.json holds: the run's length, its last row of each split, totals,
    the error summary and the best test accuracy (``seconds``: those of fit)."""
    history = trainer.history
    last = {}
    for r in history:
        last[r["split"]] = {k: v for k, v in r.items() if k not in ("split",)}
    if trainer.plan is not None:
        length = {"iterations": trainer.step, "evaluations": trainer.epoch}
    else:
        length = {"epochs": trainer.epoch, "steps": trainer.step}
    program = trainer.program
    out = {
        "name": program.graph.name,
        "method": trainer.method,
        "energy": program.energy_kind,
        **length,
        "parameters": sum(p.numel() for p in program.parameters()),
        "final": last,
        "train_seconds": round(sum(r.get("seconds", 0.0) for r in history if r["split"] == "train"), 3),
        "device": str(program.device),
    }
    if seconds is not None:
        out["fit_seconds"] = round(seconds, 3)
    if trainer.warmup_seconds is not None:
        out["warmup_seconds"] = round(trainer.warmup_seconds, 3)
    tests = [r for r in history if r["split"] == "test"]
    out.update(error_summary(tests))
    if tests and "accuracy" in tests[0]:
        x = "iteration" if trainer.plan is not None else "epoch"
        best = max(tests, key=lambda r: r["accuracy"])
        out["best_test"] = {x: best[x], "accuracy": best["accuracy"]}
    return out
