"""Grids of ``pcgraph compare``: ``--grid KEY=V1,V2,...`` (repeatable), every method at
every point of the grid (the product of the keys' values) and seed, and each method's
best point: the lowest mean over seeds of the selection metric (``--select``; the
highest for an accuracy).

A point whose runs did not all finish (a run that diverged) is not eligible: the
mean of the seeds that survived would flatter it.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
from dataclasses import dataclass, field

from ..core.errors import Issue, Location, PcgraphError, TrainError
from ..core.registry import suggest
from ..spec.overrides import parse_value
from ..spec.limits import LimitExceeded

#: what --select may name: the metrics of a run's final test row and its error summary
SELECTABLE = ("mean_error", "final_error", "error", "loss", "accuracy", "mse", "perplexity", "neg_elbo")


@dataclass
class Grid:
    """The keys of a grid, the values of each, and the command-line text of each key."""

    keys: list[str] = field(default_factory=list)
    values: list[list] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def points(self) -> list[dict]:
        """Every point of the grid, {key: value}, the last key varying fastest."""
        return [dict(zip(self.keys, combo)) for combo in itertools.product(*self.values)]

    def text_of(self, key: str) -> str:
        return self.texts[self.keys.index(key)]


def parse_grid(texts) -> Grid:
    """``["train.weights.optimizer.lr=0.1,0.01", ...]`` -> Grid; each value is YAML
    (a flow sequence's items: ``1.0e-3``, ``sync``, ``[1, 2]``, ``{type: sgd}``, ``null``)."""
    grid = Grid()
    for text in texts:
        where = Location(f"--grid {text}")
        key, sep, rest = text.partition("=")
        key = key.strip()
        if not sep or not key or not rest.strip():
            msg = "a grid reads KEY=V1,V2,... (e.g. train.weights.optimizer.lr=0.1,0.01)"
            raise TrainError(Issue(None, msg, where))
        try:
            values = parse_value("[" + rest + "]")
        except LimitExceeded as e:
            raise TrainError(Issue(None, e.problem, where)) from None
        if not isinstance(values, list) or not values:
            msg = "the values are YAML items separated by commas (e.g. 0.1,0.01 or sync,sweep)"
            raise TrainError(Issue(None, msg, where))
        if key in grid.keys:
            msg = f"{key} has another --grid already ({grid.text_of(key)}): give its values once"
            raise TrainError(Issue(None, msg, where))
        if len({json.dumps(v, sort_keys=True) for v in values}) < len(values):
            raise TrainError(Issue(None, "a value is given twice", where))
        grid.keys.append(key)
        grid.values.append(values)
        grid.texts.append(text)
    return grid


def point_overrides(point: dict) -> list[str]:
    """The ``--set`` lines of a grid point (values as JSON, which YAML reads back)."""
    return [f"{k}={json.dumps(v)}" for k, v in point.items()]


def regrid(error: PcgraphError, grid: Grid) -> PcgraphError:
    """``error`` with the locations of a grid point's ``--set`` lines named as the user
    wrote them (``--grid KEY=V1,V2``)."""
    issues = []
    for i in error.issues:
        loc = getattr(i, "location", None)
        if loc is not None and loc.file.startswith("--set "):
            key = loc.file[len("--set ") :].split("=", 1)[0]
            if key in grid.keys:
                i = Issue(i.path, i.message, Location(f"--grid {grid.text_of(key)}"))
        issues.append(i)
    return type(error)(issues)


def _short(keys: list[str]) -> dict[str, str]:
    """Each key's shortest dotted suffix that no other key ends with."""
    out = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(o != k and (o == tail or o.endswith("." + tail)) for o in keys):
                break
        out[k] = tail
    return out


def _safe(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", text)


def point_tags(grid: Grid) -> list[str]:
    """One folder-name tag per grid point (``lr0.01``, ``lr0.01-steps64``), unique."""
    short = _short(grid.keys)
    tags = ["-".join(f"{short[k]}{_safe(v)}" for k, v in p.items()) for p in grid.points()]
    if len(set(tags)) < len(tags):  # values that differ only in characters a folder name drops
        tags = [f"{t}-p{i}" for i, t in enumerate(tags)]
    return tags


def default_select(spec) -> str:
    """``mean_error`` for a stream, else the test loss."""
    return "mean_error" if spec.data is not None and spec.data.stream is not None else "loss"


def check_select(name: str) -> str:
    if name not in SELECTABLE:
        msg = f"unknown metric '{name}'{suggest(name, SELECTABLE)}; --select takes one of: {', '.join(SELECTABLE)}"
        raise TrainError(Issue(None, msg, Location(f"--select {name}")))
    return name


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (an accuracy), not a smaller one."""
    return metric.split(".")[0] == "accuracy"


def point_stats(rows: list[dict], method: str, point: dict, metric: str) -> list[float]:
    """The selection metric of each seed's final test row of ``method`` at ``point``."""
    return [
        r[metric]
        for r in rows
        if r["method"] == method
        and r["split"] == "test"
        and r.get("grid", {}) == point
        and isinstance(r.get(metric), (int, float))
    ]


def best_points(
    rows: list[dict], failures: list[dict], methods: list[str], points: list[dict], metric: str, seeds: int
) -> dict:
    """Per method: its grid point with the best mean of ``metric`` over seeds, as
    {"grid": point, metric: mean, metric_std: std over seeds, "seeds": n}."""
    best: dict = {}
    for m in methods:
        choice = None
        for p in points:
            if any(f["method"] == m and f.get("grid", {}) == p for f in failures):
                continue
            values = point_stats(rows, m, p, metric)
            if len(values) < seeds:
                continue
            mean = statistics.fmean(values)
            better = choice is None or (mean > choice[1] if higher_is_better(metric) else mean < choice[1])
            if better:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                choice = (p, mean, std, len(values))
        if choice is not None:
            best[m] = {"grid": choice[0], metric: choice[1], f"{metric}_std": choice[2], "seeds": choice[3]}
    return best


__all__ = [
    "Grid", "parse_grid", "point_overrides", "point_tags", "regrid", "best_points", "point_stats", "higher_is_better",
    "default_select", "check_select", "SELECTABLE",
]
