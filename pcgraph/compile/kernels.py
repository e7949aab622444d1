"""GEMM kernels for linear edges, chosen per shape when a program is compiled.

A linear edge needs three matrix products: the forward ``x W^T + b``, the input
gradient ``e W`` and the weight gradient ``e^T x``. Each backend below implements all
three:

* ``default``: plain torch (``F.linear``, ``@``): MKL on CPU, cuBLAS on CUDA;
* ``onednn``: oneDNN's linear primitive on the dense weight (CPU, float32/bfloat16);
* ``onednn-packed``: the same on a weight reordered into oneDNN's blocked layout,
  reordered again whenever the weight changes (once per weight version: the weights
  change after every batch, so the reorder is paid per update, not per call).

``train.kernels`` fixes one backend for every linear edge, or (``auto``) times each
backend on the edge's shapes and keeps the fastest per product (cached per process,
so every program a process builds from one spec runs the same kernels). Each is timed
in ``ROUNDS`` rounds (a round: the fastest of ``CALLS`` interleaved calls); another
backend replaces ``default`` only when its median beats default's by ``MARGIN`` and its
slowest round beats default's fastest, never on a difference the machine's noise made.
The BP step runs them through ``LinearGemm`` (``gemm.py``), an autograd Function
whose backward calls the chosen gradient kernels, the PC step through the edge's
closed-form VJPs, so the PC/BP ratio compares the methods, not two kernel libraries.
A backend this build, dtype or device cannot run, or one whose result disagrees with
``F.linear``, is left out: float64 and CUDA run ``default`` (cuBLAS; TF32 is not
offered, its rounding is coarser than float32's).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..transforms.linear import Linear, TorchGemm
from .gemm import ChosenGemm, Packed

PRODUCTS = ("forward", "input", "weight")
#: the backends ``train.kernels`` names besides ``auto`` (spec/models.py lists the same)
BACKENDS = ("default", "onednn", "onednn-packed")
#: auto keeps ``default`` unless another backend costs less than this fraction of it
#: (the timings are noisy, and staying with plain torch keeps runs reproducible)
MARGIN = 0.9
#: timing rounds per candidate (after one warm-up call), of so many calls each
ROUNDS, CALLS = 5, 3


def onednn_available(dtype: torch.dtype, device: torch.device) -> bool:
    """oneDNN's linear runs on CPU in float32 and bfloat16 (not float64)."""
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _always(dtype, device) -> bool:
    return True


def _dnn(x, w, b):
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


# the products' signatures: forward (x, w, b, pack), input (g, w, pack), weight (g2, x2)
_forward_default = TorchGemm.linear  # (its last argument, the source k, is ignored)
_input_default = TorchGemm.input
_weight_default = TorchGemm.weight


def _forward_onednn(x, w, b, pack):
    return _dnn(x, w, b)


def _forward_packed(x, w, b, pack):
    return _dnn(x, pack.get(w), b)


def _input_onednn(g, w, pack):
    return _dnn(g, w.t(), None)


def _input_packed(g, w, pack):
    return _dnn(g, pack.get(w), None)


def _weight_onednn(g2, x2):
    return _dnn(g2.t(), x2.t(), None)


@dataclass(frozen=True)
class Kernel:
    backend: str
    run: Callable
    available: Callable[[torch.dtype, torch.device], bool]
    packs: bool = False


#: product -> backend -> kernel. The weight gradient has nothing to pack (both of its
#: operands change with every call), so onednn-packed runs onednn's there.
KERNELS: dict[str, dict[str, Kernel]] = {
    "forward": {
        "default": Kernel("default", _forward_default, _always),
        "onednn": Kernel("onednn", _forward_onednn, onednn_available),
        "onednn-packed": Kernel("onednn-packed", _forward_packed, onednn_available, packs=True),
    },
    "input": {
        "default": Kernel("default", _input_default, _always),
        "onednn": Kernel("onednn", _input_onednn, onednn_available),
        "onednn-packed": Kernel("onednn-packed", _input_packed, onednn_available, packs=True),
    },
    "weight": {
        "default": Kernel("default", _weight_default, _always),
        "onednn": Kernel("onednn", _weight_onednn, onednn_available),
        "onednn-packed": Kernel("onednn-packed", _weight_onednn, onednn_available),
    },
}


# ----------------------------------------------------------------------- timing
@dataclass(frozen=True)
class Timing:
    """One candidate on one shape: seconds per call and the reorder's per weight version
    (packed kernels), medians of ``rounds`` ((call, reorder) each), or why it was left out."""

    seconds: float | None = None
    pack: float = 0.0
    error: str | None = None
    rounds: tuple = ()

    def cost(self, uses: float) -> float:
        """Seconds per call with the reorder shared by ``uses`` calls per weight version."""
        return self.seconds + self.pack / max(uses, 1.0)

    def span(self, uses: float) -> tuple[float, float]:
        """(fastest, slowest) round's cost per call; the cost itself when not timed in rounds."""
        costs = [s + p / max(uses, 1.0) for s, p in self.rounds] or [self.cost(uses)]
        return min(costs), max(costs)


_TIMES: dict[tuple, dict[str, Timing]] = {}


def _operands(rows: int, n_in: int, n_out: int, dtype, device):
    gen = torch.Generator().manual_seed(0)  # the caller's random stream is left alone
    x, w, b, e = (torch.rand(s, generator=gen, dtype=torch.float64).sub_(0.5).to(device=device, dtype=dtype) for s in ((rows, n_in), (n_out, n_in), (n_out,), (rows, n_out)))
    return x, w, b, e


def _bind(product: str, kern: Kernel, ops, pack):
    x, w, b, e = ops
    if product == "forward":
        return lambda: kern.run(x, w, b, pack)
    if product == "input":
        return lambda: kern.run(e, w, pack)
    return lambda: kern.run(e, x)


def _agrees(product: str, y: torch.Tensor, ops) -> bool:
    """Does a candidate's result match the product computed with plain torch?"""
    x, w, b, e = ops
    ref = F.linear(x, w, b) if product == "forward" else e @ w if product == "input" else e.t() @ x
    tol = 100 * torch.finfo(ref.dtype).eps * (ref.abs().max().item() + 1.0)
    return y.shape == ref.shape and bool((y - ref).abs().max() <= tol)


def _fastest(fns: dict[str, Callable], reps: int, device: torch.device) -> dict[str, float]:
    """The fastest of ``reps`` calls of each function, the calls interleaved. Other work
    on the machine only ever adds time (on a shared machine a call may wait many times
    its own length for a core), so the minimum, not the median, estimates a kernel's cost."""
    times: dict[str, float] = {k: math.inf for k in fns}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(reps):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k] = min(times[k], time.perf_counter() - t0)
    return times


def time_product(product: str, rows: int, n_in: int, n_out: int, dtype: torch.dtype, device, rounds: int = ROUNDS) -> dict[str, Timing]:
    """Every backend's ``Timing`` for one product on one shape (cached per process)."""
    device = torch.device(device)
    key = (product, rows, n_in, n_out, dtype, str(device))
    if key in _TIMES:
        return _TIMES[key]
    ops = _operands(rows, n_in, n_out, dtype, device)
    out: dict[str, Timing] = {}
    fns: dict[str, Callable] = {}
    for name, kern in KERNELS[product].items():
        if not kern.available(dtype, device):
            out[name] = Timing(error=f"not for {str(dtype).replace('torch.', '')} on {device.type}")
            continue
        pack = Packed(rows, product == "input") if kern.packs else None
        fn = _bind(product, kern, ops, pack)
        try:
            ok = _agrees(product, fn(), ops)
        except Exception as exc:  # noqa: BLE001 - a backend this build cannot run is left out
            out[name] = Timing(error=f"fails: {type(exc).__name__}")
            continue
        if not ok:
            out[name] = Timing(error="disagrees with F.linear")
            continue
        fns[name] = fn
        if pack is not None:
            fns[name + "+pack"] = lambda pack=pack, w=ops[1]: pack.get(w, again=True)
    per = [_fastest(fns, CALLS, device) for _ in range(rounds)]  # their spread: the machine's noise
    for name in fns:
        if not name.endswith("+pack"):
            r = tuple((p[name], p.get(name + "+pack", 0.0)) for p in per)
            out[name] = Timing(statistics.median(t for t, _ in r), statistics.median(q for _, q in r), rounds=r)
    _TIMES[key] = {n: out[n] for n in KERNELS[product]}
    return _TIMES[key]


def pick(timings: dict[str, Timing], uses: float) -> str:
    """The fastest backend; ``default`` unless another one beats it by the margin, and
    by more than the spread of the rounds: its slowest round faster than default's fastest."""
    cost = {n: t.cost(uses) for n, t in timings.items() if t.seconds is not None}
    if not cost:
        return "default"
    best = min(cost, key=cost.get)
    if "default" in cost and (cost[best] > MARGIN * cost["default"] or timings[best].span(uses)[1] >= timings["default"].span(uses)[0]):
        return "default"
    return best


# ---------------------------------------------------------------------- choosing
def edge_rows(prog, mod: Linear) -> int:
    """Rows of the edge's products: the batch (the spec's, else 64) times the leading axes."""
    data = prog.graph.spec.data
    return (data.batch_size if data is not None else 64) * math.prod(mod.in_shapes[0][:-1])


def uses_per_version(train) -> int:
    """Calls of a product per weight version: a BP step runs each once; a PC step the
    forward pass and at most one recomputation per inference step."""
    return 1 if train.method == "bp" else train.inference.steps + 1


def _widths(mod: Linear, product: str) -> list[int]:
    return [sum(mod.splits)] if product == "weight" else list(mod.splits)


def decide(product: str, rows: int, n_in: int, n_out: int, choice: str, uses: float, dtype, device) -> str:
    """The backend one product runs: ``choice``, or ``default`` where it cannot run;
    ``auto``: the timed pick."""
    if choice == "auto":
        return pick(time_product(product, rows, n_in, n_out, dtype, device), uses)
    return choice if KERNELS[product][choice].available(dtype, torch.device(device)) else "default"


def plan_edge(mod: Linear, choice: str, rows: int, uses: float, dtype, device):
    """The gemm object for one linear edge: ``TorchGemm`` when every product runs
    ``default``, else a ``ChosenGemm``."""
    n_out = mod.out_shape[-1]
    names = {p: [decide(p, rows, n, n_out, choice, uses, dtype, device) for n in _widths(mod, p)] for p in PRODUCTS}
    if all(n == "default" for v in names.values() for n in v):
        return TorchGemm
    return ChosenGemm({p: [KERNELS[p][n] for n in v] for p, v in names.items()}, rows, dtype, device)


def linear_edges(prog):
    return [(e, prog.transforms[e.name]) for e in prog.edges if isinstance(prog.transforms[e.name], Linear)]


def assign_kernels(prog) -> None:
    """Give every linear edge of ``prog`` the kernels ``train.kernels`` asks for."""
    cfg = prog.train_cfg
    if cfg.kernels == "default":
        return
    for _, mod in linear_edges(prog):
        mod.gemm = plan_edge(mod, cfg.kernels, edge_rows(prog, mod), uses_per_version(cfg), prog.dtype, prog.device)


def running(mod: Linear) -> dict[str, list[str]]:
    """Per product (and source) the backend the edge runs."""
    if isinstance(mod.gemm, ChosenGemm):
        return mod.gemm.names()
    return {p: ["default"] * len(_widths(mod, p)) for p in PRODUCTS}


def _cell(name: str, t: Timing, uses: float, runs: bool) -> str:
    if t.seconds is None:
        return f"{name} ({t.error})"
    lo, hi = t.span(uses)
    reorder = f" (reorder {t.pack * 1e3:.2f}/{uses})" if t.pack else ""
    return f"{name} {t.cost(uses) * 1e3:.3f} [{lo * 1e3:.3f}..{hi * 1e3:.3f}]{reorder}" + ("*" if runs else "")


def explain(prog) -> str:
    """One line per linear edge: its shape, every candidate's time per product, and
    (starred) the one it runs. Times what was not timed yet."""
    cfg = prog.train_cfg
    uses = uses_per_version(cfg)
    dtype = str(prog.dtype).replace("torch.", "")
    lines = [f"GEMM kernels (train.kernels: {cfg.kernels}; {dtype} on {prog.device}; ms per call: median [fastest..slowest] of {ROUNDS} rounds, a reorder shared by {uses} calls; * runs)"]
    for e, mod in linear_edges(prog):
        rows, n_out, runs = edge_rows(prog, mod), mod.out_shape[-1], running(mod)
        parts = []
        for p in PRODUCTS:
            widths = _widths(mod, p)
            for k, n in enumerate(widths):
                times = time_product(p, rows, n, n_out, prog.dtype, prog.device)
                label = p if len(widths) == 1 else f"{p}[{k}]"
                parts.append(f"{label}: " + ", ".join(_cell(name, t, uses, name == runs[p][k]) for name, t in times.items()))
        lines.append(f"  {' + '.join(e.sources)} -> {e.target} [{rows} x {sum(mod.splits)}] -> {n_out}: " + "; ".join(parts))
    if len(lines) == 1:
        lines.append("  (no linear edges)")
    return "\n".join(lines)
