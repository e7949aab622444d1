"""``pcgraph bench``: the cost of a PC training step against a BP step on the same
graph, batch and process.

Timing: both methods run in this process on the same random batch; after warm-up,
``rounds`` alternating blocks of ``steps`` steps each are timed one step at a time
(CUDA synchronised), and the median of all steps is reported, so slow drifts of the
machine hit both methods alike. Each round's median is kept too: their spread
(largest minus smallest, over the median) says how far the figures can be trusted,
and a spread above ``DISAGREE`` is reported as a warning (other work on the machine
is in the figures). Memory: the extra resident memory a training step needs beyond
the model and the batch (CPU: peak RSS of a fresh child process per method, measured
from just before its first step; CUDA: max allocated). Cold start: from building the
program to the end of its first PC step (torch.compile included when used).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch
import yaml

from ..compile import compile_graph as compile_program, resolve_device
from ..core.errors import Issue, Location, TrainError
from ..graph import build_graph
from ..spec import load_spec, loads_spec

#: round medians further apart than this fraction of the median: the runs disagree
DISAGREE = 0.10


def random_batch(program, batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch for every bound node, shaped and typed by the nodes."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n in program.inputs + program.targets:
        info = program.nodes[n]
        if info.bind in out:
            continue
        shape = (batch_size,) + info.shape
        if info.dtype == "long":
            t = torch.randint(0, program.graph.vocab_of(n) or 2, shape, generator=g)
        elif info.role == "target" and info.family == "categorical":
            t = torch.randint(0, info.shape[-1], (batch_size,) + info.shape[:-1], generator=g)
        else:
            t = torch.rand(shape, generator=g)
        out[info.bind] = t.to(program.device)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(spec, method: str, device, compile_mode: str | None):
    torch.manual_seed(spec.train.seed)
    prog = compile_program(build_graph(spec), energy=spec.train.energy, device=device)
    if compile_mode:
        step = prog.step_fn(method, compile=True, mode=None if compile_mode == "default" else compile_mode)
    else:
        step = prog.step_fn(method, compile=spec.train.compile)
    return prog, step


def _status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> None:
    """Reset the peak resident memory (VmHWM) to the current one, where the kernel allows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_child(spec_text: str, method: str, device: str, batch_size: int, steps: int, threads: int, compile_mode, queue) -> None:
    torch.set_num_threads(threads)
    spec = loads_spec(spec_text, "<bench>")
    prog, step = _build(spec, method, torch.device(device), compile_mode)
    batch = random_batch(prog, batch_size)
    base = _status_mb("VmRSS")
    _reset_hwm()
    for _ in range(steps):
        step(batch)
    queue.put(max(0.0, _status_mb("VmHWM") - base))


def peak_memory_mb(spec_text: str, method: str, device: torch.device, batch_size: int, steps: int = 3, compile_mode=None) -> float:
    """Extra memory of training steps beyond the model and batch, in MiB."""
    if device.type == "cuda":
        spec = loads_spec(spec_text, "<bench>")
        prog, step = _build(spec, method, device, compile_mode)
        batch = random_batch(prog, batch_size)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            step(batch)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if not Path("/proc/self/status").exists():
        return float("nan")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_peak_child, args=(spec_text, method, str(device), batch_size, steps, torch.get_num_threads(), compile_mode, q))
    p.start()
    try:
        value = q.get(timeout=600)
    finally:
        p.join(timeout=60)
    return float(value)


def run_bench(
    spec_path=None,
    overrides=(),
    *,
    spec_text: str | None = None,
    steps: int = 20,
    warmup: int = 5,
    rounds: int = 3,
    device=None,
    compile_mode: str | None = None,
    memory: bool = True,
) -> dict:
    """Median ms per step for BP and PC, their ratio and spread, peak memories, cold start."""
    for option, value, least in (("--steps", steps, 1), ("--rounds", rounds, 1), ("--warmup", warmup, 0)):
        if int(value) < least:
            raise TrainError(Issue(None, f"must be at least {least}, got {value}", Location(option)))
    spec = load_spec(spec_path, overrides) if spec_text is None else loads_spec(spec_text, "<bench>", overrides)
    spec_text = yaml.safe_dump(spec.to_data(), sort_keys=False)  # what the memory child processes build
    dev = resolve_device(device if device is not None else spec.train.device)
    B = spec.data.batch_size if spec.data is not None else 64
    (pc_step, batch, compile_s), (bp_step, _, bp_compile_s) = (_cold_start(spec, m, dev, compile_mode, B) for m in ("pc", "bp"))
    times = _timed(dev, {"bp": bp_step, "pc": pc_step}, batch, steps, warmup, rounds)
    ms = {m: statistics.median(t for r in times[m] for t in r) * 1e3 for m in times}
    result = {
        "spec": spec.name,
        "device": str(dev) if dev.type != "cuda" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        "threads": torch.get_num_threads(),
        "batch": B,
        "T": spec.train.inference.steps,
        "steps": steps * rounds,
        "rounds": rounds,
        "bp_step_ms": round(ms["bp"], 3),
        "pc_step_ms": round(ms["pc"], 3),
        "ratio": round(ms["pc"] / ms["bp"], 3),
        **spread_fields(times),
        "compile_s": round(compile_s, 3),
        "bp_compile_s": round(bp_compile_s, 3),
        "compile_mode": compile_mode or ("torch.compile" if spec.train.compile else "eager"),
        "torch": torch.__version__,
    }
    warning = disagreement(result)
    if warning:
        result["warning"] = warning
    if memory:
        result["bp_peak_mb"] = round(peak_memory_mb(spec_text, "bp", dev, B, compile_mode=compile_mode), 2)
        result["pc_peak_mb"] = round(peak_memory_mb(spec_text, "pc", dev, B, compile_mode=compile_mode), 2)
        result["memory_ratio"] = round(result["pc_peak_mb"] / result["bp_peak_mb"], 3) if result["bp_peak_mb"] else None
    return result


def _cold_start(spec, method: str, dev, compile_mode, B: int):
    """(step function, its batch, seconds from building the program to the end of the first step)."""
    t0 = time.perf_counter()
    prog, step = _build(spec, method, dev, compile_mode)
    batch = random_batch(prog, B)
    step(batch)
    _sync(dev)
    return step, batch, time.perf_counter() - t0


def _timed(dev, fns: dict, batch, steps: int, warmup: int, rounds: int) -> dict[str, list[list[float]]]:
    """Seconds per step of each function, per round: warm-up, then ``rounds`` alternating blocks."""
    for _ in range(warmup):
        for fn in fns.values():
            fn(batch)
    _sync(dev)
    times: dict[str, list[list[float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            block = []
            for _ in range(steps):
                a = time.perf_counter()
                fn(batch)
                _sync(dev)
                block.append(time.perf_counter() - a)
            times[name].append(block)
    return times


def spread_fields(times: dict[str, list[list[float]]]) -> dict:
    """Per method the median of each round (ms) and their spread: (largest - smallest)
    / the median of all steps (0 with one round); the ratio PC/BP of each round."""
    out = {}
    for m, rounds in times.items():
        meds = [statistics.median(r) * 1e3 for r in rounds]
        overall = statistics.median(t for r in rounds for t in r) * 1e3
        out[f"{m}_rounds_ms"] = [round(v, 3) for v in meds]
        out[f"{m}_spread"] = round((max(meds) - min(meds)) / overall, 3) if overall > 0 else 0.0
    out["ratio_rounds"] = [round(p / b, 3) for p, b in zip(out["pc_rounds_ms"], out["bp_rounds_ms"])]
    return out


def disagreement(r: dict) -> str | None:
    """A warning when the rounds of a method disagree by more than DISAGREE, else None."""
    worst = max(("bp", "pc"), key=lambda m: r[f"{m}_spread"])
    if r[f"{worst}_spread"] <= DISAGREE:
        return None
    meds = r[f"{worst}_rounds_ms"]
    return (
        f"the timing rounds disagree: {worst.upper()} step medians {min(meds):.2f} .. {max(meds):.2f} ms "
        f"(spread {r[f'{worst}_spread']:.0%}, more than {DISAGREE:.0%}); other work on the machine is in these figures: "
        "rerun on a quiet machine, or with more --rounds"
    )


def format_result(r: dict) -> str:
    lines = [
        f"{r['spec']} on {r['device']} ({r['threads']} threads), batch {r['batch']}, T = {r['T']}, {r['compile_mode']}",
        f"  BP step  {r['bp_step_ms']:9.2f} ms   (median of {r['steps']} steps; {_rounds(r, 'bp')})",
        f"  PC step  {r['pc_step_ms']:9.2f} ms   ({_rounds(r, 'pc')})",
        f"  ratio    {r['ratio']:9.2f} x    (rounds {' '.join(f'{v:.2f}' for v in r['ratio_rounds'])})",
    ]
    if "bp_peak_mb" in r:
        lines.append(f"  memory   BP {r['bp_peak_mb']:.1f} MiB, PC {r['pc_peak_mb']:.1f} MiB beyond model and batch (x{r['memory_ratio']})")
    lines.append(f"  cold start (build + first PC step) {r['compile_s']:.2f} s")
    if r.get("warning"):
        lines.append(f"warning: {r['warning']}")
    return "\n".join(lines)


def _rounds(r: dict, m: str) -> str:
    meds = r[f"{m}_rounds_ms"]
    if len(meds) == 1:
        return "one round: no spread"
    return f"{len(meds)} rounds {min(meds):.2f} .. {max(meds):.2f} ms, spread {r[f'{m}_spread']:.0%}"


__all__ = ["run_bench", "random_batch", "format_result", "peak_memory_mb"]
