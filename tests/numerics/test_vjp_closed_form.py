"""Every registered transform has its vector-Jacobian product in closed form, and in
float64 it equals autograd through the transform's forward: the input gradients,
the parameter gradients and the accumulating ``vjp_into``, for every option value.

A new transform fails here until it writes ``vjp`` and lists its VARIANTS."""

import typing

import pytest
import torch

from pcgraph.core import activations
from pcgraph.transforms import Transform, transforms
from tests.numerics.graphs import ATTEND, GATED, MIXED, TRANSFORMER, batch_for, program

D = torch.float64
B = 3

#: name -> [(options, input shapes, output shape)]; every bool / Literal option takes
#: each of its values in some variant (checked below)
VARIANTS = {
    "identity": [({}, [(4,)], (4,))],
    "flatten": [({}, [(2, 3, 2)], (12,))],
    "elementwise_mul": [({}, [(2, 4), (2, 4)], (2, 4))],
    "linear": [
        ({}, [(4,)], (3,)),
        ({"bias": False, "init": "xavier_uniform"}, [(2, 4)], (2, 5)),
        ({"init": "xavier_normal"}, [(4,), (2,)], (3,)),
        ({"init": "kaiming_uniform"}, [(4,)], (3,)),
    ],
    "mlp": [
        *[({"hidden": [5], "activation": a}, [(4,)], (3,)) for a in activations.ACTIVATION_NAMES],
        ({"hidden": [], "bias": False}, [(2, 4)], (2, 3)),
        ({"hidden": [6, 5]}, [(4,), (2,)], (3,)),
    ],
    "conv2d": [
        ({"kernel": 3, "padding": 1, "stride": 2}, [(2, 6, 6)], (3, 3, 3)),  # 6 + 2 - 3 is odd: a row left over
        ({"kernel": [2, 3], "stride": [1, 2], "bias": False}, [(2, 5, 6)], (4, 4, 2)),
        ({"kernel": 1}, [(3, 2, 2)], (2, 2, 2)),
    ],
    "avgpool2d": [
        ({"kernel": 2}, [(2, 5, 4)], (2, 2, 2)),
        ({"kernel": 3, "stride": 1}, [(1, 4, 5)], (1, 2, 3)),  # overlapping windows
        ({"kernel": [2, 1], "stride": [2, 1]}, [(2, 4, 3)], (2, 2, 3)),
    ],
    "maxpool2d": [
        ({"kernel": 2}, [(2, 5, 4)], (2, 2, 2)),
        ({"kernel": 3, "stride": 1}, [(1, 4, 5)], (1, 2, 3)),  # overlapping: one entry may win twice
        ({"kernel": [2, 1], "stride": [2, 1]}, [(2, 4, 3)], (2, 2, 3)),
    ],
    "layernorm": [
        ({}, [(2, 6)], (2, 6)),
        ({"affine": False, "eps": 0.1}, [(5,)], (5,)),
    ],
    "embedding": [
        ({"vocab": 7}, [(5,)], (5, 4)),
        ({"vocab": 7, "positional": "learned"}, [(5,)], (5, 4)),
        ({"vocab": 7, "positional": "sinusoidal"}, [(5,)], (5, 4)),
        ({"vocab": 3, "positional": "learned"}, [()], (4,)),  # one token per sample
    ],
    "attention_scores": [
        ({"causal": True}, [(4, 3), (4, 3)], (4, 4)),
        ({}, [(4, 3), (5, 3)], (4, 5)),
    ],
    "attention_apply": [({}, [(4, 5), (5, 3)], (4, 3))],
    "block": [
        (
            {"residual": True, "steps": ["layernorm", {"type": "mlp", "hidden": [5], "activation": "gelu"}]},
            [(2, 4)],
            (2, 4),
        ),
        (
            {
                "steps": [
                    {"type": "linear", "width": 6, "then": "tanh"},
                    {"type": "linear", "residual": True, "then": "gelu"}, {"type": "linear", "bias": False}
                ]
            },
            [(4,)],
            (3,),
        ),
        (
            {
                "steps": [
                    {"type": "conv2d", "kernel": 3, "padding": 1, "then": "relu"},
                    {"type": "maxpool2d", "kernel": 2, "shape": [2, 2, 2]}, "flatten"
                ]
            },
            [(2, 4, 4)],
            (8,),
        ),
        ({"steps": [{"type": "layernorm", "affine": False, "residual": True, "then": "sigmoid"}]}, [(5,)], (5,)),
    ],
}

CASES = [(name, *v) for name, vs in VARIANTS.items() for v in vs]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]
#: the cases whose inputs take a gradient (not token ids)
FLOAT_CASES = [(c, i) for c, i in zip(CASES, IDS) if transforms.get(c[0]).input_dtype == "float"]


def build(name, o, in_shapes, out_shape):
    torch.manual_seed(0)
    cls = transforms.get(name)
    m = cls(cls.Options(type=name, **o), in_shapes, out_shape, activations.get("tanh")).to(D)
    with torch.no_grad():  # away from the initial values (ones, zeros) that hide mistakes
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.7 + 0.1)
    return m


def inputs(m, seed=1):
    gen = torch.Generator().manual_seed(seed)
    if m.input_dtype == "long":
        return [torch.randint(0, m.options.vocab, (B,) + s, generator=gen) for s in m.in_shapes]
    return [torch.randn((B,) + s, generator=gen, dtype=D) for s in m.in_shapes]


def autograd_vjp(m, xs, g):
    """(input grads, {param: grad}) of <forward(xs), g> by autograd."""
    leaves = [x.clone().requires_grad_(True) if x.is_floating_point() else x for x in xs]
    params = dict(m.named_parameters())
    wrt = [x for x in leaves if x.requires_grad] + list(params.values())
    got = torch.autograd.grad(m(*leaves), wrt, g, allow_unused=True)
    it = iter(got)
    gin = [(next(it) if x.requires_grad else None) for x in leaves]
    gin = [torch.zeros_like(x) if (x.is_floating_point() and e is None) else e for x, e in zip(xs, gin)]
    gp = {k: torch.zeros_like(p) if e is None else e for (k, p), e in zip(params.items(), it)}
    return gin, gp


def out_grad(m, seed=2):
    return torch.randn((B,) + m.out_shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def test_every_registered_transform_has_variants():
    missing = set(transforms.names()) - set(VARIANTS)
    assert not missing, f"add variants for {sorted(missing)} to VARIANTS"


@pytest.mark.parametrize("name", sorted(transforms.names()))
def test_every_registered_transform_writes_its_vjp(name):
    cls = transforms.get(name)
    assert cls.vjp is not Transform.vjp, (
        f"transform '{name}' differentiates its forward with autograd: write its vjp in closed form"
    )


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_take_every_value_of_every_switch(name):
    cls = transforms.get(name)
    for field, info in cls.Options.model_fields.items():
        ann = info.annotation
        if field == "type":
            continue
        if ann is bool:
            values = {True, False}
        elif typing.get_origin(ann) is typing.Literal:
            values = set(typing.get_args(ann))
        else:
            continue
        seen = {getattr(cls.Options(type=name, **o), field) for o, _, _ in VARIANTS[name]}
        assert seen == values, (
            f"{name}.{field}: variants take {sorted(map(str, seen))}, not all of {sorted(map(str, values))}"
        )


@pytest.mark.parametrize("name,o,ins,out", CASES, ids=IDS)
def test_vjp_equals_autograd(name, o, ins, out):
    m = build(name, o, ins, out)
    xs = inputs(m)
    g = out_grad(m)
    want_in, want_p = autograd_vjp(m, xs, g)
    need = [x.is_floating_point() for x in xs]
    gin, gp = m.vjp(xs, g, need, True)
    assert len(gin) == len(xs)
    for x, got, want in zip(xs, gin, want_in):
        if x.is_floating_point():
            assert got.shape == x.shape
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        else:
            assert got is None  # token ids take no gradient
    assert set(gp) == set(want_p)
    for k, want in want_p.items():
        assert gp[k].shape == want.shape, k
        torch.testing.assert_close(gp[k], want, rtol=1e-10, atol=1e-12)
    if want_p:  # a non-trivial check: the parameters do get a gradient
        assert any(t.abs().max() > 1e-6 for t in want_p.values())


@pytest.mark.parametrize("name,o,ins,out", CASES, ids=IDS)
def test_vjp_computes_only_what_is_asked(name, o, ins, out):
    m = build(name, o, ins, out)
    xs = inputs(m)
    g = out_grad(m)
    want_in, _ = autograd_vjp(m, xs, g)
    for k, x in enumerate(xs):
        if not x.is_floating_point():
            continue
        need = [i == k for i in range(len(xs))]
        gin, _ = m.vjp(xs, g, need, False)
        for i, got in enumerate(gin):
            if i == k:
                torch.testing.assert_close(got, want_in[k], rtol=1e-10, atol=1e-12)
            else:
                assert got is None
    gin, gp = m.vjp(xs, g, [False] * len(xs), True)
    assert all(t is None for t in gin)
    assert set(gp or {}) == {k for k, _ in m.named_parameters()}


@pytest.mark.parametrize("start", ["none", "contiguous", "strided"])
@pytest.mark.parametrize("name,o,ins,out", [c for c, _ in FLOAT_CASES], ids=[i for _, i in FLOAT_CASES])
def test_vjp_into_adds_the_input_gradient(name, o, ins, out, start):
    """acc + (d out/d input_k)^T g, from nothing or onto a tensor (laid out in memory
    either way); the result is a new tensor, never the output gradient or an input."""
    m = build(name, o, ins, out)
    xs = inputs(m)
    g = out_grad(m)
    g_before, xs_before = g.clone(), [x.clone() for x in xs]
    want_in, _ = autograd_vjp(m, xs, g)
    for k in range(len(xs)):
        acc = None
        if start != "none":
            acc = torch.randn(xs[k].shape, dtype=D, generator=torch.Generator().manual_seed(9))
            if start == "strided":
                acc = acc.transpose(-1, -2).contiguous().transpose(-1, -2) if acc.dim() > 1 else acc[::1]
        before = None if acc is None else acc.clone()
        r = m.vjp_into(acc, xs, g, k)
        expected = want_in[k] if acc is None else before + want_in[k]
        torch.testing.assert_close(r, expected, rtol=1e-10, atol=1e-12)
        assert r is not g and all(r is not x for x in xs)
    assert torch.equal(g, g_before) and all(torch.equal(x, x0) for x, x0 in zip(xs, xs_before))


def test_masked_scores_pass_no_gradient():
    m = build("attention_scores", {"causal": True}, [(4, 3), (4, 3)], (4, 4))
    q, k = inputs(m)
    g = out_grad(m)
    g_future = g + torch.ones(4, 4, dtype=D).triu(1) * 100.0  # changes only the masked entries
    a, _ = m.vjp([q, k], g, [True, True], False)
    b, _ = m.vjp([q, k], g_future, [True, True], False)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert a[0].abs().max() > 1e-3


def test_maxpool_routes_the_gradient_to_each_window_winner():
    """A hand-made input whose window maxima are known: the gradient lands on them."""
    m = build("maxpool2d", {"kernel": 2}, [(1, 4, 4)], (1, 2, 2))
    x = torch.zeros(1, 1, 4, 4, dtype=D)
    winners = [(0, 1), (1, 2), (3, 0), (2, 3)]  # one per 2x2 window, in window order
    for r, c in winners:
        x[0, 0, r, c] = 1.0
    g = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=D)
    (gx,), _ = m.vjp([x], g, [True], False)
    expected = torch.zeros_like(x)
    for (r, c), v in zip(winners, [1.0, 2.0, 3.0, 4.0]):
        expected[0, 0, r, c] = v
    torch.testing.assert_close(gx, expected)


def test_embedding_rows_sum_the_gradient_of_every_position_holding_the_token():
    m = build("embedding", {"vocab": 4}, [(3,)], (3, 2))
    tokens = torch.tensor([[1, 1, 3]])
    g = torch.tensor([[[1.0, 2.0], [10.0, 20.0], [5.0, 7.0]]], dtype=D)
    _, gp = m.vjp([tokens], g, [False], True)
    expected = torch.tensor([[0.0, 0.0], [11.0, 22.0], [0.0, 0.0], [5.0, 7.0]], dtype=D)
    torch.testing.assert_close(gp["weight"], expected)


def test_maxpool_reuses_the_forward_winners_only_for_the_same_unchanged_input():
    m = build("maxpool2d", {"kernel": 2}, [(2, 4, 4)], (2, 2, 2))
    x, y = (torch.randn(B, 2, 4, 4, dtype=D, generator=torch.Generator().manual_seed(s)) for s in (3, 4))
    g = out_grad(m)
    m(x)
    for z in (x, y):  # the forward's own input, then another tensor
        torch.testing.assert_close(m.vjp([z], g, [True], False)[0][0], autograd_vjp(m, [z], g)[0][0])
    m(x)
    x.neg_()  # changed in place after the forward: its winners move
    torch.testing.assert_close(m.vjp([x], g, [True], False)[0][0], autograd_vjp(m, [x], g)[0][0])


@pytest.mark.parametrize("text", [GATED, ATTEND, MIXED, TRANSFORMER], ids=["gated", "attend", "mixed", "transformer"])
def test_fast_engine_equals_autograd_through_every_transform(text):
    """One inference step of lr 1 from a random state moves each free state by its
    gradient: the engine (closed forms) and the plain path (autograd on the total
    energy) agree on it, then on every node's energy and every weight gradient."""
    prog = program(text)
    batch = batch_for(prog)
    torch.manual_seed(5)
    s0 = prog.init_state(batch, init="normal")
    a, b = s0.clone(), s0.clone()
    for st, fast in ((a, True), (b, False)):
        prog.infer(st, steps=1, optimizer={"type": "sgd", "lr": 1.0}, schedule="sync", fast=fast)
    for n in s0:
        if n not in s0.clamped and s0[n].is_floating_point():
            torch.testing.assert_close(a[n] - s0[n], b[n] - s0[n], rtol=1e-9, atol=1e-11)
            assert (a[n] - s0[n]).abs().max() > 1e-6, n
    e_fast = prog.weight_grads(a, fast=True)
    fast = {k: p.grad.clone() for k, p in prog.named_parameters()}
    e_plain = prog.weight_grads(b, fast=False)
    assert set(e_fast) == set(e_plain)
    for n, e in e_plain.items():
        torch.testing.assert_close(e_fast[n], e, rtol=1e-9, atol=1e-11)
    for k, p in prog.named_parameters():
        torch.testing.assert_close(fast[k], p.grad, rtol=1e-9, atol=1e-11)
        assert p.grad.abs().max() > 1e-8, k
