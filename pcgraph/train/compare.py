"""``pcgraph compare``: several methods x seeds on one spec, with the same data order
and the same initial weights per seed, and a table and curves of the results.

    OUT/<method>-seed<k>/   one run directory per run (resumable)
    OUT/compare.json        {"rows": [{"method", "seed", "split", <final metrics>}]}
    OUT/compare.md          mean +- std per method
    OUT/compare.png         learning curves overlaid (mean over seeds)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Iterable

from ..core.errors import Issue, Location, TrainError
from ..spec import load_spec
from . import checkpoint as ckpt
from .plots import plot_curves
from .run import device_override, holds_run, open_run, run_data_dir, run_info

#: method name -> spec overrides
METHODS = {
    "bp": ["train.method=bp", "train.energy=kl"],
    "pc-kl": ["train.method=pc", "train.energy=kl"],
    "pc-f": ["train.method=pc", "train.energy=gaussian"],
    "bp-f": ["train.method=bp", "train.energy=gaussian"],
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


def _run_one(spec_path, overrides, method, seed, out: Path, *, device, data_dir, progress, data_cache: dict, log=None):
    run_dir = out / f"{method}-seed{seed}"
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
    if trainer.epoch < spec.train.epochs:
        if progress:
            print(f"== {method} seed {seed}: {spec.name} -> {run_dir}", flush=True)
        trainer.fit()
    return trainer


def compare(
    spec_path,
    methods: Iterable[str] | None,
    seeds: int = 1,
    overrides: Iterable[str] = (),
    *,
    out=None,
    device=None,
    data_dir=None,
    progress=True,
    log: str | None = None,
) -> dict:
    if log == "tensorboard":
        from .tensorboard import summary_writer

        summary_writer()  # a missing package is said before anything is written
    named = methods is not None
    methods = list(methods) if named else list(DEFAULT_METHODS)
    overrides = list(overrides)
    base = load_spec(spec_path, overrides)
    methods = _check_methods(spec_path, methods, overrides, base, named=named)
    out = Path(out) if out is not None else Path("runs") / f"compare-{base.name}"
    out.mkdir(parents=True, exist_ok=True)
    rows, histories, failures = [], {}, []
    cache: dict = {}
    for seed in range(int(base.train.seed), int(base.train.seed) + seeds):
        for method in methods:
            try:
                trainer = _run_one(
                    spec_path, overrides, method, seed, out, device=device, data_dir=data_dir, progress=progress,
                    data_cache=cache, log=log
                )
            except TrainError as e:  # e.g. a diverged run: record it, go on with the others
                failures.append({"method": method, "seed": seed, "error": e.lines[0]})
                if progress:
                    print(f"== {method} seed {seed} failed: {e.lines[0]}", flush=True)
                continue
            histories.setdefault(method, []).append(trainer.history)
            for split in ("train", "test"):
                final = [r for r in trainer.history if r["split"] == split]
                if final:
                    row = {
                        "method": method, "seed": seed, **{k: v for k, v in final[-1].items() if k != "split"},
                        "split": split
                    }
                    rows.append(row)
    result = {
        "spec": base.name, "methods": methods, "seeds": seeds, "overrides": overrides, "rows": rows,
        "failures": failures
    }
    ckpt.atomic_write_text(out / "compare.json", json.dumps(result, indent=2))
    result["out"] = str(out)
    md = table(rows, methods, title=f"{base.name}: {', '.join(methods)}, {seeds} seed(s)")
    if failures:
        md += "\nFailed runs:\n\n" + "".join(f"- {f['method']} seed {f['seed']}: {f['error']}\n" for f in failures)
    ckpt.atomic_write_text(out / "compare.md", md)
    plot_curves({m: _mean_history(h) for m, h in histories.items()}, out / "compare.png", title=base.name)
    return result


def _mean_history(histories: list[list[dict]]) -> list[dict]:
    """Per (epoch, split): the mean of each metric over seeds."""
    grouped: dict = {}
    for h in histories:
        for r in h:
            grouped.setdefault((r["epoch"], r["split"]), []).append(r)
    out = []
    for (epoch, split), rs in sorted(grouped.items()):
        keys = {k for r in rs for k, v in r.items() if isinstance(v, (int, float)) and k != "epoch"}
        out.append({"epoch": epoch, "split": split, **{k: statistics.fmean(r[k] for r in rs if k in r) for k in keys}})
    return out


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


def table(
    rows: list[dict], methods: list[str], title: str = "", split: str = "test", keys: list[str] | None = None
) -> str:
    """Markdown table, one line per method: seeds, epochs, each metric (all that the
    rows hold unless ``keys`` names them), training seconds per epoch."""
    if keys is None:
        keys = []
        for r in rows:
            if r["split"] != split:
                continue
            for k, v in r.items():
                if k in ("method", "seed", "split", "epoch", "seconds") or not isinstance(v, (int, float)):
                    continue
                if k not in keys:
                    keys.append(k)
    head = ["method", "seeds", "epochs"] + [f"{k} (%)" if k == "accuracy" else k for k in keys] + ["train s/epoch"]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for m in methods:
        rs = [r for r in rows if r["method"] == m and r["split"] == split]
        if not rs:
            continue
        train = [r for r in rows if r["method"] == m and r["split"] == "train"]
        secs = [r["seconds"] for r in train if "seconds" in r]
        cells = [m, str(len(rs)), str(rs[0].get("epoch", ""))]
        for k in keys:
            vals = [r[k] for r in rs if k in r]
            cells.append(mean_std(vals, k) if vals else "")
        cells.append(_seconds(statistics.fmean(secs)) if secs else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
