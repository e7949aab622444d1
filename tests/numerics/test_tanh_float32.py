"""tanh on float32 CPU tensors is computed as 2 sigmoid(2a) - 1 (torch's CPU tanh
kernel is scalar); checked here against float64 tanh, and its derivatives against
tanh's own closed form 1 - tanh^2 in every mode torch differentiates in."""

import math

import torch

from pcgraph.core import activations

TANH = activations.get("tanh")
TOL = 2.0e-7  # 1.7 ulp of float32 at 1


def _wide_grid():
    return torch.cat(
        [
            torch.linspace(-20.0, 20.0, 400_001),
            torch.logspace(-30, 1.5, 20_000),
            -torch.logspace(-30, 1.5, 20_000),
            torch.tensor([0.0, -0.0, 1e-45, 88.0, -88.0, 1e30, -1e30]),
        ]
    )


def test_float32_values_are_within_two_tenths_of_a_micro_of_tanh():
    a = _wide_grid()
    exact = torch.tanh(a.double())
    for y in (TANH.fn(a), TANH.fn_(a.clone())):
        assert y.dtype == torch.float32
        assert (y.double() - exact).abs().max().item() <= TOL
        assert y.abs().max().item() <= 1.0  # never outside [-1, 1]


def test_limits_and_nan_are_kept():
    a = torch.tensor([math.inf, -math.inf, math.nan, 0.0])
    y = TANH.fn(a)
    assert y[0].item() == 1.0 and y[1].item() == -1.0
    assert math.isnan(y[2].item()) and y[3].item() == 0.0


def test_the_formula_is_odd_and_monotone():
    a = torch.linspace(-9.0, 9.0, 180_001)
    y = TANH.fn(a)
    assert (y.diff() >= 0).all()
    assert (y + TANH.fn(-a)).abs().max().item() <= TOL


def test_float64_is_torch_tanh_bit_for_bit():
    a = torch.randn(1000, dtype=torch.float64) * 3
    assert torch.equal(TANH.fn(a), torch.tanh(a))
    assert torch.equal(TANH.fn_(a.clone()), torch.tanh(a))


def test_backward_double_backward_and_forward_mode_are_tanhs():
    torch.manual_seed(0)
    a = (torch.randn(64, 33) * 2).requires_grad_(True)
    g = torch.randn(64, 33)
    y = TANH.fn(a)
    (ga,) = torch.autograd.grad(y, a, g, create_graph=True)
    t = y.detach()
    torch.testing.assert_close(ga, g * (1 - t * t), rtol=0, atol=1e-6)
    (h,) = torch.autograd.grad(ga.sum(), a)  # d/da [g (1 - tanh^2)] = -2 g tanh (1 - tanh^2)
    torch.testing.assert_close(h, -2 * g * t * (1 - t * t), rtol=0, atol=2e-6)

    v = torch.randn(64, 33)
    out, tangent = torch.func.jvp(TANH.fn, (a.detach(),), (v,))
    torch.testing.assert_close(tangent, v * (1 - t * t), rtol=0, atol=1e-6)
    per_row = torch.func.vmap(torch.func.grad(lambda r: TANH.fn(r).sum()))(a.detach())
    torch.testing.assert_close(per_row, 1 - t * t, rtol=0, atol=1e-6)


def test_the_input_is_left_alone_and_in_place_writes_in_place():
    a = torch.randn(10, 7)
    before = a.clone()
    TANH.fn(a)
    assert torch.equal(a, before)
    out = TANH.fn_(a)
    assert out.data_ptr() == a.data_ptr()
    assert (a.double() - torch.tanh(before.double())).abs().max().item() <= TOL
