"""Optimisers for node states: plain elementwise updates on per-sample gradients.

A state's gradient is the gradient of its own sample's energy, so the batch size
never rescales the state learning rate. Buffers live for one ``infer`` call. The step
counter is shared by all nodes, so a node skipped while its gradient is known to be
zero ends up exactly where a zero-gradient update would have left it.
"""

from __future__ import annotations

import torch
from torch.autograd.graph import increment_version


class StateOptimizer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lr = float(cfg.lr)
        self.t = 0

    def begin_step(self) -> None:
        self.t += 1

    def update(self, name: str, x: torch.Tensor, d: torch.Tensor) -> None:
        """One step of node ``name``'s state ``x`` (in place) against its gradient ``d``."""
        raise NotImplementedError


class StateSGD(StateOptimizer):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.momentum = float(cfg.momentum)
        self.nesterov = cfg.nesterov
        self.wd = float(cfg.weight_decay)
        self.buf: dict[str, torch.Tensor] = {}

    def update(self, name, x, d):
        if self.wd:
            d = d + self.wd * x
        if self.momentum:
            b = self.buf.get(name)
            if b is None:
                b = self.buf[name] = d.clone()
            else:
                b.mul_(self.momentum).add_(d)
            if self.nesterov:
                x.sub_(d, alpha=self.lr).sub_(b, alpha=self.lr * self.momentum)
            else:
                x.sub_(b, alpha=self.lr)
            return
        x.sub_(d, alpha=self.lr)


class StateAdam(StateOptimizer):
    """Adam; its weight decay is an L2 term in the gradient, AdamW's (``type: adamw``)
    shrinks the state directly, apart from the moments (decoupled)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.decoupled = cfg.type == "adamw"
        self.b1, self.b2 = (float(b) for b in cfg.betas)
        self.eps = float(cfg.eps)
        self.wd = float(cfg.weight_decay)
        self.m: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}

    def update(self, name, x, d):
        if self.wd and self.decoupled:
            x.mul_(1 - self.lr * self.wd)
        elif self.wd:
            d = d + self.wd * x
        m = self.m.get(name)
        if m is None:
            m = self.m[name] = torch.zeros_like(x)
            self.v[name] = torch.zeros_like(x)
        v = self.v[name]
        m.mul_(self.b1).add_(d, alpha=1 - self.b1)
        v.mul_(self.b2).addcmul_(d, d, value=1 - self.b2)
        c1 = 1 - self.b1**self.t
        c2 = 1 - self.b2**self.t
        denom = (v / c2).sqrt_().add_(self.eps)
        x.addcdiv_(m, denom, value=-self.lr / c1)


def make_state_optimizer(cfg) -> StateOptimizer:
    kind = cfg.type
    if kind == "sgd":
        return StateSGD(cfg)
    if kind in ("adam", "adamw"):
        return StateAdam(cfg)
    raise ValueError(f"unknown state optimizer '{kind}'")


def make_weight_optimizer(params, cfg) -> torch.optim.Optimizer:
    """The weights' optimiser; the fused single-kernel form where torch has one for the
    parameters' device and dtype (same update, several times faster per step)."""
    params = list(params)
    if cfg.type == "sgd":
        cls, kw = (
            torch.optim.SGD,
            dict(
                lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                weight_decay=cfg.weight_decay
            ),
        )
    elif cfg.type in ("adam", "adamw"):
        cls = torch.optim.AdamW if cfg.type == "adamw" else torch.optim.Adam
        kw = dict(lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.type!r}")
    fusable = params and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if fusable:
        try:
            opt = cls(params, fused=True, **kw)
        except (RuntimeError, ValueError):  # no fused kernel for this build, device or dtype
            return cls(params, **kw)
        # the fused kernel leaves the tensors' version counters alone; what caches a
        # weight by its version (a prepacked GEMM weight) must see the change
        opt.register_step_post_hook(_mark_changed)
        return opt
    return cls(params, **kw)


def _mark_changed(opt, args, kwargs) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            increment_version(p)
