"""``pcgraph compare``: several methods x seeds (x the points of a grid) on one spec,
with the same data order and the same initial weights per seed, a table and curves
of the results, and each method's best grid point.

    OUT/<method>[-<point>]-seed<k>/   one run directory per run (resumable)
    OUT/compare.json   {"rows": [{"method", "seed", "grid", "split", <final metrics>}],
                        "best": {method: {"grid", <metric>, <metric>_std, "seeds"}}, ...}
    OUT/compare.md     mean +- std per method (at its best point), and per grid point
    OUT/compare.png    learning curves (mean over seeds); with a grid, each method's
                       curve at its best point and the metric against each grid key
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..core.errors import GraphError, Issue, Location, SpecError, TrainError
from ..spec import load_spec
from . import checkpoint as ckpt
from .compare_report import at_best, edge_notes, grid_table, mean_std, plot_grid, plot_methods, table
from .grid import (
    Grid, best_points, check_select, default_select, higher_is_better, parse_grid, point_overrides, point_tags, regrid
)
from .metrics import error_summary
from .run import device_override, holds_run, open_run, run_data_dir, run_info

#: method name -> spec overrides
METHODS = {
    "bp": ["train.method=bp", "train.energy=kl"],
    "pc-kl": ["train.method=pc", "train.energy=kl"],
    "pc-f": ["train.method=pc", "train.energy=gaussian"],
    "bp-f": ["train.method=bp", "train.energy=gaussian"],
    # the gradient at the error's arrival (Z-IL): backprop's gradient computed locally
    "pc-zil": ["train.method=pc", "train.energy=kl", "train.weights.gradient=arrival"],
}

def parse_methods(text: str) -> list[str]:
    from ..core.registry import suggest

    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        if m not in METHODS:
            msg = f"unknown method '{m}'{suggest(m, METHODS)}; known: {', '.join(METHODS)}"
            raise TrainError(Issue(("--methods",), msg))
    if not names:
        raise TrainError(Issue(("--methods",), "no methods given"))
    return names


#: what ``pcgraph compare`` runs when no --methods are given
DEFAULT_METHODS = ["bp", "pc-f", "pc-kl"]


def _check_methods(spec_path, methods: list[str], overrides: list[str], base, *, named: bool = True) -> list[str]:
    """Before any training: the methods the spec can be trained with. A named method it
    cannot be trained with is an error that names it in --methods (not the --set lines
    it stands for); from the default list such a method is left out with a note."""
    from ..core.errors import GraphError
    from ..graph import build_graph

    graph = build_graph(base)  # the spec's own problems are reported as they are
    where = Location(f"--methods {','.join(methods)}")
    kept = []
    for m in methods:
        problem = None
        if "train.energy=gaussian" in METHODS[m]:
            for n in graph.nodes.values():
                if n.family_cls is not None and n.family_cls.needs_kl:
                    problem = (
                        f"{m} trains with the standard energy F, which family '{n.family}' on node '{n.name}' does "
                        f"not have"
                    )
                    break
        if problem is None:
            try:
                build_graph(load_spec(spec_path, [*overrides, *METHODS[m]]))
            except GraphError as e:
                problem = f"{m} cannot train this spec ({e.issues[0].message})"
        if problem is None:
            kept.append(m)
        elif named:
            raise TrainError(Issue(None, f"{problem}; leave {m} out of --methods", where))
        else:
            print(f"compare: leaving out {m}: {problem}", flush=True)
    return kept


def _run_one(
    spec_path, overrides, method, seed, out: Path, *, tag=None, device, data_dir, progress, data_cache: dict, log=None
):
    run_dir = out / (f"{method}-seed{seed}" if tag is None else f"{method}-{tag}-seed{seed}")
    spec = load_spec(spec_path, [*overrides, *METHODS[method], f"train.seed={seed}", *device_override(device)])
    resume = (run_dir / ckpt.NAME).exists()
    if holds_run(run_dir) and not resume:
        msg = f"{run_dir} holds an unfinished run without a checkpoint; move it away to start over"
        raise TrainError(Issue(("--out",), msg))
    if resume:
        data_dir = run_data_dir(run_dir, data_dir)
    key = (json.dumps(spec.data.model_dump(mode="json")) if spec.data else None, str(data_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = open_run(
        spec, run_dir, resume=resume, data_dir=data_dir, progress=progress, data=data_cache.get(key), log=log
    )
    if not resume:  # eval, query and a rerun of compare find the data folder again
        ckpt.atomic_write_text(run_dir / "run.json", json.dumps(run_info(trainer, data_dir), indent=2))
    data_cache[key] = trainer.data
    if not trainer.finished:
        if progress:
            print(f"== {method}{'' if tag is None else ' ' + tag} seed {seed}: {spec.name} -> {run_dir}", flush=True)
        trainer.fit()
    return trainer


def _check_points(spec_path, overrides: list[str], grid: Grid) -> None:
    """Before any training: every grid point makes a valid spec (its problems named at
    the --grid that set them)."""
    from ..graph import build_graph

    for point in grid.points():
        try:
            build_graph(load_spec(spec_path, [*overrides, *point_overrides(point)]))
        except (SpecError, GraphError) as e:
            raise regrid(e, grid) from None


def _final_rows(trainer, method: str, seed: int, point: dict) -> list[dict]:
    """The run's last train and test rows, the test row with its error summary."""
    rows = []
    for split in ("train", "test"):
        history = [r for r in trainer.history if r["split"] == split]
        if history:
            last = {k: v for k, v in history[-1].items() if k != "split"}
            row = {"method": method, "seed": seed, "grid": point, **last, "split": split}
            if split == "test":
                row.update(error_summary(history))
            rows.append(row)
    return rows


def compare(
    spec_path,
    methods: Iterable[str] | None,
    seeds: int = 1,
    overrides: Iterable[str] = (),
    *,
    grid: Iterable[str] = (),
    select: str | None = None,
    out=None,
    device=None,
    data_dir=None,
    progress=True,
    log: str | None = None,
) -> dict:
    """What ``pcgraph compare`` does; ``grid``: the ``--grid KEY=V1,V2`` texts, ``select``:
    the metric that picks each method's best point (default: ``mean_error`` for a
    stream, else the test ``loss``)."""
    if log == "tensorboard":
        from .tensorboard import summary_writer

        summary_writer()  # a missing package is said before anything is written
    named = methods is not None
    methods = list(methods) if named else list(DEFAULT_METHODS)
    overrides = list(overrides)
    grid = parse_grid(list(grid))
    base = load_spec(spec_path, overrides)
    select = check_select(select) if select is not None else default_select(base)
    methods = _check_methods(spec_path, methods, overrides, base, named=named)
    _check_points(spec_path, overrides, grid)
    out = Path(out) if out is not None else Path("runs") / f"compare-{base.name}"
    out.mkdir(parents=True, exist_ok=True)
    points, tags = (grid.points(), point_tags(grid)) if grid.keys else ([{}], [None])
    rows, histories, failures = [], {}, []
    cache: dict = {}
    for seed in range(int(base.train.seed), int(base.train.seed) + seeds):
        for point, tag in zip(points, tags):
            for method in methods:
                try:
                    trainer = _run_one(
                        spec_path, [*overrides, *point_overrides(point)], method, seed, out, tag=tag, device=device,
                        data_dir=data_dir, progress=progress, data_cache=cache, log=log
                    )
                except TrainError as e:  # e.g. a diverged run: record it, go on with the others
                    failures.append({"method": method, "seed": seed, "grid": point, "error": e.lines[0]})
                    if progress:
                        at = "" if tag is None else " " + tag
                        print(f"== {method}{at} seed {seed} failed: {e.lines[0]}", flush=True)
                    continue
                histories.setdefault((method, json.dumps(point, sort_keys=True)), []).append(trainer.history)
                rows.extend(_final_rows(trainer, method, seed, point))
    best = best_points(rows, failures, methods, points, select, seeds)
    result = {
        "spec": base.name, "methods": methods, "seeds": seeds, "overrides": overrides,
        "grid": dict(zip(grid.keys, grid.values)), "select": select, "best": best, "rows": rows, "failures": failures
    }
    ckpt.atomic_write_text(out / "compare.json", json.dumps(result, indent=2))
    result["out"] = str(out)
    result["table"] = _write_report(out, base.name, result, grid, points, histories)
    return result


def _write_report(out: Path, name: str, result: dict, grid: Grid, points: list[dict], histories: dict) -> str:
    """compare.md and compare.png; returns the table the command prints."""
    methods, seeds, rows = result["methods"], result["seeds"], result["rows"]
    best, select = result["best"], result["select"]
    if not grid.keys:
        md = table(rows, methods, title=f"{name}: {', '.join(methods)}, {seeds} seed(s)")
        shown = md
        plot_methods(out / "compare.png", histories, title=name)
    else:
        how = "highest" if higher_is_better(select) else "lowest"
        title = f"{name}: each method at its best grid point (the {how} mean of {select} over {seeds} seed(s))"
        shown = table(at_best(rows, best), methods, title=title)
        edges = edge_notes(grid, best)
        lines = [
            f"{m}: {', '.join(f'{k}={json.dumps(v)}' for k, v in b['grid'].items())}"
            + (f" ({'; '.join(edges[m])}: the best may lie beyond it)" if m in edges else "")
            for m, b in best.items()
        ]
        missing = [m for m in methods if m not in best]
        none = "; none for " + ", ".join(missing) + " (no point where every seed finished)" if missing else ""
        md = shown + "\nBest points: " + "; ".join(lines) + none + "\n"
        md += f"\n### {select} at every grid point (mean ± std over seeds; best in bold)\n\n"
        md += grid_table(rows, methods, points, select, best)
        plot_grid(out / "compare.png", rows, histories, methods, grid, best, select, title=name)
    failures = result["failures"]
    if failures:
        md += "\nFailed runs:\n\n" + "".join(
            f"- {f['method']}{' ' + json.dumps(f['grid']) if f.get('grid') else ''} seed {f['seed']}: {f['error']}\n"
            for f in failures
        )
    ckpt.atomic_write_text(out / "compare.md", md)
    return shown


__all__ = ["compare", "METHODS", "DEFAULT_METHODS", "parse_methods", "table", "mean_std"]
