"""The state optimisers step exactly as torch's own optimisers do on the same
gradients (SGD with momentum, Nesterov and weight decay; Adam with L2 decay; AdamW
with decoupled decay), and AdamW's first step matches a hand computation."""

import pytest
import torch

from pcgraph.compile.optim import make_state_optimizer
from pcgraph.spec.models import StateOptimizerSpec

D = torch.float64

CASES = [
    {"type": "sgd", "lr": 0.1},
    {"type": "sgd", "lr": 0.1, "momentum": 0.7},
    {"type": "sgd", "lr": 0.1, "momentum": 0.7, "nesterov": True, "weight_decay": 0.3},
    {"type": "sgd", "lr": 0.1, "weight_decay": 0.3},
    {"type": "adam", "lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3},
    {"type": "adam", "lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3, "weight_decay": 0.3},
    {"type": "adamw", "lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3, "weight_decay": 0.3},
]
IDS = ["sgd", "momentum", "nesterov-wd", "sgd-wd", "adam", "adam-wd", "adamw"]


def torch_optimizer(cfg, param):
    kw = {k: v for k, v in cfg.items() if k != "type"}
    return {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg["type"]]([param], **kw)


@pytest.mark.parametrize("cfg", CASES, ids=IDS)
def test_state_optimizer_steps_like_torch(cfg):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, generator=gen, dtype=D)
    grads = [torch.randn(3, 4, generator=gen, dtype=D) for _ in range(5)]
    ours = make_state_optimizer(StateOptimizerSpec(**cfg))
    x = x0.clone()
    param = torch.nn.Parameter(x0.clone())
    ref = torch_optimizer(cfg, param)
    for g in grads:
        ours.begin_step()
        ours.update("node", x, g)
        param.grad = g.clone()
        ref.step()
        torch.testing.assert_close(x, param.detach(), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(x, x0)


def test_adamw_first_step_by_hand():
    """x1 = x0 (1 - lr wd) - lr g / (|g| + eps): decay decoupled from the moments."""
    lr, wd, eps = 0.05, 0.3, 1e-3
    x0 = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    g = torch.tensor([0.2, 0.4, -1.0], dtype=D)
    opt = make_state_optimizer(StateOptimizerSpec(type="adamw", lr=lr, weight_decay=wd, eps=eps))
    x = x0.clone()
    opt.begin_step()
    opt.update("n", x, g)
    torch.testing.assert_close(x, x0 * (1 - lr * wd) - lr * g / (g.abs() + eps), rtol=1e-12, atol=1e-12)


def test_optimizer_buffers_are_per_node():
    opt = make_state_optimizer(StateOptimizerSpec(type="sgd", lr=0.1, momentum=0.9))
    a, b = torch.zeros(2, dtype=D), torch.zeros(2, dtype=D)
    for _ in range(3):
        opt.begin_step()
        opt.update("a", a, torch.ones(2, dtype=D))
        opt.update("b", b, -torch.ones(2, dtype=D))
    # sum of the momentum buffers 1, 1.9, 2.71 times lr
    torch.testing.assert_close(a, torch.full((2,), -0.561, dtype=D))
    torch.testing.assert_close(b, -a)
