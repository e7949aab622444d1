"""pcgraph side by side with the JAX predictive-coding libraries pcx and FabricPC on
bench-mlp (benchmarks/bench-mlp.yaml), in one command:

    benchmarks/peers/run.sh [--quick] [--omp-passive] [--note "provisional, loaded machine"]
    benchmarks/peers/run.sh --from-json benchmarks/results/peers/results.json   # re-render the table

1. Creates one virtual environment per peer under benchmarks/peers/.venvs/ from the
   pinned requirements-<peer>.txt (again whenever that file changes).
2. Checks that every peer computes pcgraph's model: check_same_model.py, float64.
3. Times every (framework, method) once per round, rounds interleaved, each case in a
   fresh process pinned to the same CPUs (--threads, default 2): pcgraph through
   ``python -m pcgraph bench --json`` (BP and PC in one process), each peer through
   case.py inside its environment.
4. Writes results.json and results.md (the table) to --out
   (default benchmarks/results/peers/).

Runs with the project's Python (torch + pcgraph importable); the peers' environments
never see torch, and this file imports neither jax nor pcgraph.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPEC = REPO / "benchmarks" / "bench-mlp.yaml"
VENVS = HERE / ".venvs"
PEERS = ("pcx", "fabricpc")

# (row label, framework, method, extra pcgraph-bench overrides or None for a peer case)
PCGRAPH_VARIANTS = {
    "arrival": ("train.weights.gradient=arrival",),
    "equilibrium, sync": ("train.weights.gradient=equilibrium", "train.inference.schedule=sync"),
    "equilibrium, sweep": ("train.weights.gradient=equilibrium",),
}
MEANING = {
    ("pcgraph", "bp"): "backprop on the same graph (torch eager); its first call is timed after the PC program's in the same process, so torch is already warm",
    ("pcgraph", "pc arrival"): "PC with the weight gradient at the error's first arrival (Z-IL, equals BP; no inference loop)",
    ("pcgraph", "pc equilibrium, sync"): "PC, classic EM step: T = 8 synchronous SGD steps on the states, gradient at the settled states (the peers' algorithm)",
    ("pcgraph", "pc equilibrium, sweep"): "as above with pcgraph's default schedule (states updated layer by layer from the output back)",
    ("pcx", "pc"): "pcx: Vode model, T = 8 SGD steps, Adam step, one `pxf.jit` (its tutorial's train_on_batch)",
    ("pcx", "bp"): "plain jax + optax backprop on the same MLP, `jax.jit` (pcx has no BP step of its own)",
    ("fabricpc", "pc"): "FabricPC: the jitted per-batch step its `train` runs, algorithm `pc` (T = 8, InferenceSGD)",
    ("fabricpc", "bp"): "FabricPC: the jitted per-batch step its `train` runs, algorithm `backprop`",
}


def python_of(peer: str) -> Path:
    return VENVS / peer / "bin" / "python"


def ensure_venv(peer: str, log) -> Path:
    """The peer's environment, (re)built when its requirements file changed."""
    req = HERE / f"requirements-{peer}.txt"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    stamp = VENVS / peer / ".requirements.sha256"
    py = python_of(peer)
    if py.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return py
    log(f"creating {VENVS / peer} from {req.name} (a few minutes, once)")
    venv.EnvBuilder(with_pip=True, clear=True).create(VENVS / peer)
    p = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(req)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"installing {req.name} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    stamp.write_text(digest + "\n")
    return py


def child_env(threads: int) -> dict:
    """Environment of every timed child: the same thread count for torch and XLA."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env.update(JAX_PLATFORMS="cpu", XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def pin_cpus(threads: int):
    """A preexec_fn pinning the child to ``threads`` CPUs: XLA sizes its CPU thread
    pool to the schedulable CPUs, so this is what holds JAX to the thread count."""
    cpus = sorted(os.sched_getaffinity(0))[:threads] if hasattr(os, "sched_getaffinity") else []

    def pin():
        if cpus:
            os.sched_setaffinity(0, cpus)

    return pin


def run_child(cmd: list[str], threads: int, timeout: float = 900) -> dict:
    """Run one case, return the JSON object on its last output line."""
    p = subprocess.run(cmd, env=child_env(threads), preexec_fn=pin_cpus(threads), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    lines = [line for line in p.stdout.strip().splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(lines[-1])


def pcgraph_case(variant: str, steps: int, warmup: int, threads: int) -> list[dict]:
    """One ``pcgraph bench`` run: a BP row and a PC row (same process, same batch)."""
    cmd = [sys.executable, "-m", "pcgraph", "bench", str(SPEC), "--json", "--steps", str(steps), "--warmup", str(warmup), "--rounds", "1"]
    for o in PCGRAPH_VARIANTS[variant]:
        cmd += ["--set", o]
    r = run_child(cmd, threads)
    common = {"framework": "pcgraph", "threads": r["threads"], "versions": {"torch": r["torch"]}, "raw": r}
    pc = {"method": f"pc {variant}", "step_ms": r["pc_step_ms"], "first_call_s": r["compile_s"], "peak_mb": r.get("pc_peak_mb")}
    bp = {"method": "bp", "step_ms": r["bp_step_ms"], "first_call_s": r["bp_compile_s"], "peak_mb": r.get("bp_peak_mb")}
    return [common | pc] + ([common | bp] if variant == "arrival" else [])


def peer_case(peer: str, method: str, steps: int, warmup: int, threads: int) -> list[dict]:
    cmd = [str(python_of(peer)), str(HERE / "case.py"), "--framework", peer, "--method", method, "--steps", str(steps), "--warmup", str(warmup)]
    return [run_child(cmd, threads)]


def run_rounds(rounds: int, steps: int, warmup: int, threads: int, peers, log) -> list[dict]:
    """Every (framework, method) once per round; returns every measurement with its round."""
    cases = [("pcgraph", v) for v in PCGRAPH_VARIANTS] + [(p, m) for p in peers for m in ("pc", "bp")]
    out = []
    for r in range(rounds):
        for fw, what in cases:
            t0 = time.perf_counter()
            rows = pcgraph_case(what, steps, warmup, threads) if fw == "pcgraph" else peer_case(fw, what, steps, warmup, threads)
            for row in rows:
                out.append(row | {"round": r})
                log(f"round {r + 1}/{rounds} {fw:8s} {row['method']:22s} {row['step_ms']:9.2f} ms/step  (case took {time.perf_counter() - t0:.0f} s)")
    return out


def summarise(measurements: list[dict]) -> list[dict]:
    """Median over rounds per (framework, method); ratio to the fastest BP step."""
    order = {fw: k for k, fw in enumerate(("pcgraph",) + PEERS)}
    keys = sorted(dict.fromkeys((m["framework"], m["method"]) for m in measurements), key=lambda k: (order.get(k[0], len(order)), k[1] != "bp"))
    rows = []
    for fw, method in keys:
        ms = [m for m in measurements if (m["framework"], m["method"]) == (fw, method)]
        med = {k: statistics.median(m[k] for m in ms) for k in ("step_ms", "first_call_s", "peak_mb") if all(m.get(k) is not None for m in ms)}
        rows.append({"framework": fw, "method": method, "rounds": len(ms), **med, "meaning": MEANING.get((fw, method), "")})
    bps = [r["step_ms"] for r in rows if r["method"] == "bp"]
    fastest = min(bps) if bps else None
    for r in rows:
        r["ratio_to_fastest_bp"] = r["step_ms"] / fastest if fastest else None
    return rows


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def format_table(result: dict) -> str:
    """The markdown report of a run: header facts, the table, the equivalence lines."""
    m = result["machine"]
    lines = [f"**{result['note']}**", ""] if result.get("note") else []
    lines += [
        f"bench-mlp (MLP 784-512-512-512-10, tanh, categorical output, batch 256, T = 8), {result['mode']} mode, {result['date']}.",
        "",
        f"* CPU: {m['cpu']}, {m['cpus']} CPUs visible, every case pinned to {m['threads']} of them and {m['threads']} threads (OpenMP wait policy: {m.get('omp_wait_policy', 'default')}); load average {m['load_before']} before, {m['load_after']} after.",
        "* Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(result["versions"].items())) + ".",
        f"* Each figure: the median over {result['rounds']} interleaved rounds of one fresh process per case; a step time is the median of {result['steps']} steps after {result['warmup']} warm-up steps.",
        "",
        "| framework | method | ms / step | × fastest BP | first call (s) | peak extra MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['framework']} | {r['method']} | {_fmt(r.get('step_ms'), '.2f')} | {_fmt(r.get('ratio_to_fastest_bp'), '.2f')} "
            f"| {_fmt(r.get('first_call_s'), '.2f')} | {_fmt(r.get('peak_mb'), '.1f')} |"
        )
    lines += ["", "Rows:", ""] + [f"* {r['framework']} / {r['method']}: {r['meaning']}" for r in result["rows"] if r.get("meaning")]
    if result.get("equivalence"):
        lines += ["", "Same model (check_same_model.py, float64, tolerance 1e-4 relative):", "", "```"] + result["equivalence"] + ["```"]
    return "\n".join(lines) + "\n"


def check_equivalence(peers, out_dir: Path, threads: int, log) -> list[str]:
    """pcgraph's reference exported once, then each peer's PASS/FAIL lines."""
    npz = out_dir / "same_model.npz"
    subprocess.run([sys.executable, str(HERE / "check_same_model.py"), "--export", str(npz)], env=child_env(threads), check=True, cwd=REPO)
    lines = []
    for peer in peers:
        p = subprocess.run([str(python_of(peer)), str(HERE / "check_same_model.py"), "--peer", peer, "--npz", str(npz)], env=child_env(threads), capture_output=True, text=True, cwd=REPO)
        got = [line for line in p.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
        if not got:
            got = [f"FAIL {peer}: the check did not run ({p.returncode}): {p.stderr.strip().splitlines()[-1:] or ''}"]
        lines += got
        log("\n".join(got))
    npz.unlink(missing_ok=True)
    return lines


def parse_args(argv):
    ap = argparse.ArgumentParser(description="pcgraph against pcx and FabricPC on bench-mlp")
    ap.add_argument("--quick", action="store_true", help="5 timed steps after 2 warm-up steps (default: 30 after 5)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of pcx,fabricpc")
    ap.add_argument("--skip-check", action="store_true", help="skip the same-model check")
    ap.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE for every case (torch's OpenMP threads sleep at barriers instead of spinning; use on a shared, overloaded machine)")
    ap.add_argument("--note", default="", help="a line printed in bold above the table, e.g. 'provisional, loaded machine'")
    ap.add_argument("--from-json", metavar="RESULTS_JSON", help="only rewrite the table (results.md beside it) from a stored results.json")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "peers"), help="folder for results.json and results.md")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return rewrite_table(Path(args.from_json))
    if args.omp_passive:  # inherited by every child through child_env
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    steps, warmup = (5, 2) if args.quick else (30, 5)
    peers = [p for p in args.peers.split(",") if p]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    for peer in peers:
        ensure_venv(peer, log)
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    equivalence = [] if args.skip_check else check_equivalence(peers, out_dir, args.threads, log)
    measurements = run_rounds(args.rounds, steps, warmup, args.threads, peers, log)
    versions = {"pcgraph": "repository " + _git_head()} | collect_versions(measurements)
    result = {
        "note": args.note,
        "mode": "quick" if args.quick else "normal",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "threads": args.threads, "omp_wait_policy": "PASSIVE" if args.omp_passive else "default", "load_before": load_before, "load_after": ", ".join(f"{x:.1f}" for x in os.getloadavg())},
        "versions": versions,
        "rounds": args.rounds,
        "steps": steps,
        "warmup": warmup,
        "rows": summarise(measurements),
        "equivalence": equivalence,
        "measurements": measurements,
    }
    (out_dir / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    table = format_table(result)
    (out_dir / "results.md").write_text(table)
    print("\n" + table)
    return 1 if any(line.startswith("FAIL") for line in equivalence) else 0


def collect_versions(measurements: list[dict]) -> dict[str, str]:
    """{name: version}: torch from pcgraph's cases, each peer with its own jax."""
    out = {}
    for m in measurements:
        v = m.get("versions", {})
        if m["framework"] == "pcgraph":
            out.update(v)
        elif m["framework"] in v:
            out[m["framework"]] = f"{v[m['framework']]} (jax {v.get('jax', '?')}, jaxlib {v.get('jaxlib', '?')})"
    return out


def rewrite_table(path: Path) -> int:
    """Re-summarise a stored run and write its table again (results.md beside it)."""
    result = json.loads(path.read_text())
    result["rows"] = summarise(result["measurements"])
    result["versions"] = {k: v for k, v in result["versions"].items() if k in ("pcgraph",)} | collect_versions(result["measurements"])
    path.write_text(json.dumps(result, indent=1) + "\n")
    (path.parent / "results.md").write_text(format_table(result))
    print(format_table(result))
    return 0


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
