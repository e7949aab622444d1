"""What a linear edge runs once its kernels are chosen (``kernels.py`` chooses):
``ChosenGemm``, per source a forward and an input-gradient kernel and one
weight-gradient kernel, with the autograd Function the BP step differentiates through,
and the oneDNN-reordered weights of the packed kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..transforms.linear import TorchGemm


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

    def __init__(self, kernels: dict[str, list], rows: int, dtype: torch.dtype, device: torch.device):
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
