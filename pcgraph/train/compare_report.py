"""What ``pcgraph compare`` writes besides compare.json: the tables of compare.md and
the figure compare.png."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .grid import point_stats
from .metrics import error_of
from .plots import plot_curves, x_key


def mean_std(values: list[float], key: str) -> str:
    """'mean ± std' of a metric over seeds (accuracy in %), or the value of one seed."""
    scale = 100.0 if key == "accuracy" else 1.0
    vs = [v * scale for v in values]
    mean = statistics.fmean(vs)
    digits = 2 if key == "accuracy" else 4
    if len(vs) > 1:
        return f"{mean:.{digits}f} ± {statistics.stdev(vs):.{digits}f}"
    return f"{mean:.{digits}f}"


def _seconds(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.1f}"


_NOT_METRICS = ("method", "seed", "split", "epoch", "iteration", "seconds")


def table(
    rows: list[dict], methods: list[str], title: str = "", split: str = "test", keys: list[str] | None = None
) -> str:
    """Markdown table, one line per method: seeds, epochs (a stream's: iterations),
    each metric (all that the rows hold unless ``keys`` names them), training seconds
    per epoch (a stream's: of the last stretch between two evaluations)."""
    if keys is None:
        keys = []
        for r in rows:
            if r["split"] != split:
                continue
            for k, v in r.items():
                if k in _NOT_METRICS or not isinstance(v, (int, float)):
                    continue
                if k not in keys:
                    keys.append(k)
    stream = x_key(rows) == "iteration"
    head = ["method", "seeds", "iterations" if stream else "epochs"]
    head += [f"{k} (%)" if k == "accuracy" else k for k in keys]
    head.append("train s/stretch" if stream else "train s/epoch")
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for m in methods:
        rs = [r for r in rows if r["method"] == m and r["split"] == split]
        if not rs:
            continue
        train = [r for r in rows if r["method"] == m and r["split"] == "train"]
        secs = [r["seconds"] for r in train if "seconds" in r]
        cells = [m, str(len(rs)), str(rs[0].get("iteration" if stream else "epoch", ""))]
        for k in keys:
            vals = [r[k] for r in rs if k in r]
            cells.append(mean_std(vals, k) if vals else "")
        cells.append(_seconds(statistics.fmean(secs)) if secs else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mean_history(histories: list[list[dict]]) -> list[dict]:
    """Per (epoch or iteration, split): the mean of each metric over seeds."""
    grouped: dict = {}
    for h in histories:
        x = x_key(h)
        for r in h:
            grouped.setdefault((x, r[x], r["split"]), []).append(r)
    out = []
    for (x, at, split), rs in sorted(grouped.items()):
        keys = {k for r in rs for k, v in r.items() if isinstance(v, (int, float)) and k != x}
        out.append({x: at, "split": split, **{k: statistics.fmean(r[k] for r in rs if k in r) for k in keys}})
    return out


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def edge_notes(grid, best: dict) -> dict[str, list[str]]:
    """Per method, the numeric grid keys whose best value is the grid's smallest or
    largest: the best may lie beyond the grid."""
    notes: dict[str, list[str]] = {}
    for m, choice in best.items():
        for key, values in zip(grid.keys, grid.values):
            if len(values) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                continue
            v = choice["grid"][key]
            if v in (min(values), max(values)):
                end = "smallest" if v == min(values) else "largest"
                notes.setdefault(m, []).append(f"{key} at the grid's {end} value")
    return notes


def at_best(rows: list[dict], best: dict) -> list[dict]:
    """The rows of each method's best grid point."""
    return [r for r in rows if r["method"] in best and r.get("grid", {}) == best[r["method"]]["grid"]]


def grid_table(rows: list[dict], methods: list[str], points: list[dict], metric: str, best: dict) -> str:
    """Markdown: the selection metric (mean ± std over seeds) of every method at every
    grid point; the best point of each method in bold."""
    keys = list(points[0]) if points else []
    head = ["method", *keys, "seeds", metric]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        for p in points:
            vals = point_stats(rows, m, p, metric)
            cell = mean_std(vals, metric) if vals else "failed"
            if m in best and best[m]["grid"] == p:
                cell = f"**{cell}**"
            lines.append("| " + " | ".join([m, *(_show(p[k]) for k in keys), str(len(vals)), cell]) + " |")
    return "\n".join(lines) + "\n"


def curve_of(metric: str) -> str:
    """The per-evaluation metric whose curve shows a run judged by ``metric``."""
    return "error" if metric in ("mean_error", "final_error", "error") else metric


def _curve_points(history: list[dict], key: str) -> list[tuple]:
    x = x_key(history)
    pts = []
    for r in history:
        if r["split"] != "test":
            continue
        v = error_of(r) if key == "error" else r.get(key)
        if isinstance(v, (int, float)):
            pts.append((r[x], v))
    return pts


def _draw_best_curves(ax, histories: dict, best: dict, metric: str, colors) -> None:
    key = curve_of(metric)
    x = "epoch"
    for i, (m, choice) in enumerate(best.items()):
        runs = histories.get((m, json.dumps(choice["grid"], sort_keys=True)), [])
        curves = [dict(_curve_points(h, key)) for h in runs]
        if not curves:
            continue
        x = x_key(runs[0])
        xs = sorted(set.intersection(*(set(c) for c in curves)))
        ys = [[c[t] for c in curves] for t in xs]
        mean = [statistics.fmean(v) for v in ys]
        at = ", ".join(f"{k.split('.')[-1]}={_show(v)}" for k, v in choice["grid"].items())
        label = m + (" " + at if at else "")
        ax.plot(xs, mean, color=colors[i % len(colors)], label=label)
        if len(curves) > 1:
            low, high = [min(v) for v in ys], [max(v) for v in ys]
            ax.fill_between(xs, low, high, color=colors[i % len(colors)], alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_title(f"test {key} at the best point (seeds: min-max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _draw_metric_by_value(ax, rows, methods, key, values, best, metric, colors) -> None:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    for i, m in enumerate(methods):
        if m not in best:
            continue
        fixed = best[m]["grid"]
        xs, means, stds = [], [], []
        for j, v in enumerate(values):
            vals = point_stats(rows, m, {**fixed, key: v}, metric)
            if vals:
                xs.append(v if numeric else j)
                means.append(statistics.fmean(vals))
                stds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
        ax.errorbar(xs, means, yerr=stds, color=colors[i % len(colors)], marker="o", capsize=3, label=m)
    if numeric and min(values) > 0 and max(values) >= 10 * min(values):
        ax.set_xscale("log")
    if numeric:  # the grid's own values, not a scale's
        ax.set_xticks(values, [_show(v) for v in values])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(values)), [_show(v) for v in values])
    ax.set_xlabel(key)
    ax.set_title(f"{metric} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_grid(path: Path, rows, histories: dict, methods, grid, best: dict, metric: str, title: str = "") -> None:
    """compare.png of a grid: each method's test curve at its best point (seeds shaded),
    then per grid key the selection metric against the key's values (the other keys at
    the method's best point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + len(grid.keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    _draw_best_curves(axes[0][0], histories, best, metric, colors)
    for ax, key, values in zip(axes[0][1:], grid.keys, grid.values):
        _draw_metric_by_value(ax, rows, methods, key, values, best, metric, colors)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_methods(path: Path, histories: dict, title: str = "") -> None:
    """compare.png without a grid: the learning curves of each method (mean over seeds)."""
    plot_curves({m: mean_history(h) for (m, _), h in histories.items()}, path, title=title)


__all__ = ["table", "mean_std", "mean_history", "grid_table", "at_best", "plot_grid", "plot_methods", "curve_of"]
