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
so every program a process builds from one spec runs the same kernels). The timing is
repeated: ``ROUNDS`` rounds of ``CALLS`` interleaved calls, a round's figure the
fastest of its calls; a backend replaces ``default`` only when its median beats
default's by ``MARGIN`` and its slowest round is faster than default's fastest, so
a choice never rests on a difference the machine's noise could make. The BP step runs them through ``LinearGemm``, an autograd Function
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

PRODUCTS = ("forward", "input", "weight")
#: the backends ``train.kernels`` names besides ``auto`` (spec/models.py lists the same)
BACKENDS = ("default", "onednn", "onednn-packed")
#: auto keeps ``default`` unless another backend costs less than this fraction of it
#: (the timings are noisy, and staying with plain torch keeps runs reproducible)
MARGIN = 0.9
#: timing rounds per candidate (after one warm-up call), and calls per round
ROUNDS = 5
CALLS = 3


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


class Packed:
    """A weight (or its transpose) reordered into oneDNN's blocked layout, reordered
    again when the weight changes: its version counter moves with every in-place update
    (an optimiser step, a loaded checkpoint), its address when it is replaced."""

    __slots__ = ("rows", "transpose", "key", "value", "count")

    def __init__(self, rows: int, transpose: bool):
        self.rows, self.transpose = rows, transpose
        self.key = None
        self.value = None
        self.count = 0  # reorders done (tests and --explain read it)

    def get(self, w: torch.Tensor, again: bool = False) -> torch.Tensor:
        """The reordered weight; ``again``: reorder even if the weight did not change."""
        key = (w._version, w.data_ptr(), tuple(w.shape))
        if again or key != self.key:
            with torch.no_grad():
                src = w.detach().t() if self.transpose else w.detach()
                self.value = torch.ops.mkldnn._reorder_linear_weight(src.contiguous(), self.rows)
            self.key = key
            self.count += 1
        return self.value


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
    """One candidate on one shape: seconds per call and the reorder's seconds per weight
    version (packed kernels), the medians of ``rounds`` (per round: seconds per call,
    reorder seconds), or why it was left out."""

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


def _rounds(fns: dict[str, Callable], device: torch.device, rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, list[float]]:
    """Per function, per round the fastest of ``calls`` calls, the calls of all functions
    interleaved. Other work on the machine only ever adds time (on a shared machine a
    call may wait many times its own length for a core), so a round keeps its fastest
    call; the rounds' spread shows how much the machine still moved the figures."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(rounds):
        best = {k: math.inf for k in fns}
        for _ in range(calls):
            for k, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                best[k] = min(best[k], time.perf_counter() - t0)
        for k in fns:
            out[k].append(best[k])
    return out


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
    per = _rounds(fns, device, rounds)
    for name in fns:
        if not name.endswith("+pack"):
            packs = per.get(name + "+pack", [0.0] * len(per[name]))
            out[name] = Timing(statistics.median(per[name]), statistics.median(packs), rounds=tuple(zip(per[name], packs)))
    _TIMES[key] = {n: out[n] for n in KERNELS[product]}
    return _TIMES[key]


def pick(timings: dict[str, Timing], uses: float) -> str:
    """The fastest backend; ``default`` unless another one beats it by the margin, and
    by more than the spread of the rounds: its slowest round faster than default's fastest."""
    cost = {n: t.cost(uses) for n, t in timings.items() if t.seconds is not None}
    if not cost:
        return "default"
    best = min(cost, key=cost.get)
    if best == "default" or "default" not in cost:
        return best
    if cost[best] > MARGIN * cost["default"] or timings[best].span(uses)[1] >= timings["default"].span(uses)[0]:
        return "default"
    return best


# ----------------------------------------------------------------------- running
class LinearGemm(torch.autograd.Function):
    """``x W^T + b`` with an edge's chosen kernels, and a backward that runs its chosen
    input- and weight-gradient kernels (what the BP step differentiates)."""

    @staticmethod
    def forward(ctx, x, w, b, gemm, k):
        ctx.save_for_backward(x, w)
        ctx.gemm, ctx.k = gemm, k
        return gemm.forward_raw(x, w, b, k)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gemm, k = ctx.gemm, ctx.k
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gemm.inp[k].run(gy, w, gemm.inp_packs[k]) if need_x else None
        g2 = gy.reshape(-1, gy.shape[-1])
        gw = gemm.wgt.run(g2, x.reshape(-1, x.shape[-1])) if need_w else None
        gb = g2.sum(0) if need_b else None
        return gx, gw, gb, None, None


class ChosenGemm:
    """The kernels one linear edge runs: per source ``k`` a forward and an input-gradient
    kernel (each with its own reordered weight where it packs), one weight-gradient
    kernel. Tensors of another dtype or device than the ones chosen for, and code being
    traced by ``torch.compile`` (which picks its own kernels), get plain torch."""

    def __init__(self, kernels: dict[str, list[Kernel]], rows: int, dtype: torch.dtype, device: torch.device):
        self.fwd, self.inp, (self.wgt,) = kernels["forward"], kernels["input"], kernels["weight"]
        self.fwd_packs = [Packed(rows, False) if kern.packs else None for kern in self.fwd]
        self.inp_packs = [Packed(rows, True) if kern.packs else None for kern in self.inp]
        self.dtype, self.device = dtype, torch.device(device)

    def names(self) -> dict[str, list[str]]:
        return {"forward": [k.backend for k in self.fwd], "input": [k.backend for k in self.inp], "weight": [self.wgt.backend]}

    def _plain(self, t: torch.Tensor) -> bool:
        return t.dtype != self.dtype or t.device != self.device or torch.compiler.is_compiling()

    def linear(self, x, w, b, k):
        if self._plain(w):
            return F.linear(x, w, b)
        if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad)):
            return LinearGemm.apply(x, w, b, self, k)
        return self.forward_raw(x, w, b, k)

    def forward_raw(self, x, w, b, k):
        return self.fwd[k].run(x, w, b, self.fwd_packs[k])

    def input(self, g, w, k):
        if self._plain(w):
            return g @ w
        return self.inp[k].run(g, w, self.inp_packs[k])

    def input_add(self, a2, g2, w, k, alpha, inplace):
        if self.inp[k].backend == "default" or self._plain(w):
            return TorchGemm.input_add(a2, g2, w, k, alpha, inplace)
        g = self.inp[k].run(g2, w, self.inp_packs[k])
        return a2.add_(g, alpha=alpha) if inplace else torch.add(a2, g, alpha=alpha)

    def weight(self, g2, x2):
        if self._plain(x2):
            return g2.t() @ x2
        return self.wgt.run(g2, x2)


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
