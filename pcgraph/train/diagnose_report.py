"""How ``pcgraph diagnose`` shows its report: markdown tables, a plot of the
per-node energies over the inference steps, and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path


def _num(v, fmt: str = ".4g") -> str:
    return "–" if v is None else format(v, fmt)


def _gradient_lines(r: dict) -> list[str]:
    """The table of PC's weight gradients against BP's, per parameter."""
    prior = any("cos_prior_part" in e for e in r["edges"])
    arrival = r.get("weight_gradient") == "arrival"
    where = "at the error's arrival (from the forward state)" if arrival else "after inference"
    head = "| parameter | cos(PC, BP) | ‖PC‖/‖BP‖ |"
    if prior:
        head += " cos(PC, BP targets' part) | cos(PC, BP prior part) |"
    lines = ["", f"PC's weight gradient, taken {where}, against BP's:", "", head, "|---" * (5 if prior else 3) + "|"]
    for e in r["edges"]:
        row = f"| {e['where']} ({e['param']}) | {_num(e['cos'], '+.3f')} | {_num(e['norm_ratio'], '.3g')} |"
        if prior:
            row += f" {_num(e.get('cos_targets_part'), '+.3f')} | {_num(e.get('cos_prior_part'), '+.3f')} |"
        lines.append(row)
    return lines


def format_report(r: dict, title: str = "") -> str:
    """The report as readable tables (markdown)."""
    opt = r["inference"]["optimizer"]
    head = title or r["graph"]
    lr = _num(opt.get("lr"), "g") if isinstance(opt.get("lr"), (int, float)) else opt.get("lr")
    lines = [
        f"{head}: energy {r['energy']}, batch of {r['batch_size']}, T = {r['steps']} {r['inference']['schedule']} "
        f"steps ({opt.get('type')}, lr {lr}), init {r['inference']['init']}, nudge {r['inference'].get('nudge', 1):g}",
        "",
        "| node | hops to target | energy t=0 | energy t=T | front step |",
        "|---|---|---|---|---|",
    ]
    for n in r["nodes"]:
        lines.append(
            f"| {n['node']} | {_num(n['hops'], 'd')} | {_num(n['energy_before'])} | {_num(n['energy_after'])} | "
            f"{_num(n['front_step'], 'd')} |"
        )
    lines.append(f"| total | | {_num(r['total_before'])} | {_num(r['total_after'])} | |")
    never = [n["node"] for n in r["nodes"] if n["front_step"] is None]
    lines += [
        "",
        f"{'the nudged' if r['inference'].get('nudge', 1) != 1 else 'total'} energy rose at {r['energy_rises']} of "
        f"{r['steps']} steps"
        + (
            f" ({', '.join(map(str, r['energy_rise_steps'][:10]))}{' ...' if r['energy_rises'] > 10 else ''})"
            if r["energy_rises"]
            else ""
        ),
    ]
    if never and r.get("weight_gradient") == "arrival":
        lines.append(
            f"inference did not move {', '.join(never)} in {r['steps']} steps (the weight gradient, taken at the "
            f"error's arrival, does not depend on it)"
        )
    elif never:
        lines.append(
            f"the error never reached {', '.join(never)} in {r['steps']} steps: the edges into "
            f"{'it' if len(never) == 1 else 'them'} get no PC gradient (more steps reach "
            f"{'it' if len(never) == 1 else 'them'})"
        )
    lines += _gradient_lines(r)
    if r["replayed"]:
        lines += ["", "(the state optimiser has memory: each step count was replayed from the start)"]
    return "\n".join(lines)


def plot_energies(r: dict, path: Path) -> None:
    """Per-node energy (batch mean) over the inference steps, one line per node; log
    scale when no energy is negative (a node's line starts where its energy turns
    positive), symlog otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    steps = list(range(r["steps"] + 1))
    series = dict(r["energies"], total=r["total"])
    for name, ys in series.items():
        style = {"color": "black", "linestyle": "--"} if name == "total" else {}
        ax.plot(steps, ys, marker="o" if len(steps) <= 40 else None, ms=3, label=name, **style)
    values = [v for ys in series.values() for v in ys]
    if any(v < 0 for v in values):
        positive = [abs(v) for v in values if v != 0]
        ax.set_yscale("symlog", linthresh=min(positive) if positive else 1.0)
    elif any(v > 0 for v in values):
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("inference step")
    ax.set_ylabel("energy (batch mean)")
    ax.set_title(f"{r['graph']}: energy per node ({r['energy']}, {r['inference']['schedule']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(r: dict, out: Path) -> list[Path]:
    """diagnose.json and diagnose.png in ``out`` (created)."""
    from .checkpoint import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "diagnose.json", json.dumps(r, indent=2))
    plot_energies(r, out / "diagnose.png")
    return [out / "diagnose.json", out / "diagnose.png"]
