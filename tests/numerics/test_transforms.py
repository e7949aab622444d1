"""Every registered transform, in float64: forward against raw torch code or a closed
form, vector-Jacobian products against autograd and finite differences, parameter
counts and initialisation scale. A new transform fails here until it has an EXAMPLE."""

import math

import pytest
import torch
import torch.nn.functional as F

from pcgraph.core import activations
from pcgraph.transforms import ShapeError, transforms
from pcgraph.transforms.attention import MASK

D = torch.float64
B = 3


def opts(name, **kw):
    return transforms.get(name).Options(type=name, **kw)


def build(name, o, in_shapes, out_shape, act="identity"):
    torch.manual_seed(0)
    return transforms.get(name)(opts(name, **o), in_shapes, out_shape, activations.get(act)).to(D)


def ref_linear(m, *xs):
    x = torch.cat(xs, -1)
    y = torch.einsum("...i,oi->...o", x, m.weight)
    return y + m.bias if getattr(m, "bias", None) is not None else y


def ref_mlp(m, *xs):
    h = torch.cat(xs, -1)
    n = len(m.options.hidden) + 1
    for i in range(n):
        h = torch.einsum("...i,oi->...o", h, getattr(m, f"weight{i}")) + getattr(m, f"bias{i}")
        if i < n - 1:
            h = torch.clamp(h, min=0)
    return h


def ref_layernorm(m, x):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + m.options.eps) * m.weight + m.bias


def ref_scores(m, q, k):
    s = torch.einsum("bid,bjd->bij", q, k) / math.sqrt(q.shape[-1])
    if m.options.causal:
        L = s.shape[-1]
        s = torch.where(torch.arange(L)[None, :] > torch.arange(L)[:, None], torch.full_like(s, MASK), s)
    return s


def ref_embedding(m, t):
    out = m.weight[t]
    if m.options.positional == "learned":
        out = out + m.position
    if m.options.positional == "sinusoidal":
        L, d = out.shape[-2:]
        pos = torch.arange(L, dtype=D)[:, None]
        i = torch.arange(d, dtype=D)[None, :]
        angle = pos / 10000 ** ((i - i % 2) / d)
        out = out + torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
    return out


def ref_block_ln_mlp(m, x):
    """x + mlp(layernorm(x)), the steps written out by hand."""
    mu = x.mean(-1, keepdim=True)
    h = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * m.s0_weight + m.s0_bias
    h = torch.clamp(torch.einsum("...i,oi->...o", h, m.s1_weight0) + m.s1_bias0, min=0)
    return x + torch.einsum("...i,oi->...o", h, m.s1_weight1) + m.s1_bias1


def ref_block_steps(m, x):
    """tanh(W0 x + b0) -> relu(h + W1 h + b1) -> W2 h."""
    h = torch.tanh(torch.einsum("...i,oi->...o", x, m.s0_weight) + m.s0_bias)
    h = torch.clamp(h + torch.einsum("...i,oi->...o", h, m.s1_weight) + m.s1_bias, min=0)
    return torch.einsum("...i,oi->...o", h, m.s2_weight)


# name -> list of (options, input shapes, output shape, input dtype, reference forward)
EXAMPLES = {
    "identity": [({}, [(4,)], (4,), "float", lambda m, x: x)],
    "linear": [
        ({}, [(4,)], (3,), "float", ref_linear),
        ({"bias": False}, [(2, 4)], (2, 5), "float", ref_linear),
        ({}, [(4,), (2,)], (3,), "float", ref_linear),  # multi-input: concatenated
    ],
    "mlp": [({"hidden": [6, 5]}, [(4,)], (3,), "float", ref_mlp)],
    "conv2d": [
        (
            {"kernel": 3, "padding": 1, "stride": 2},
            [(2, 5, 5)],
            (3, 3, 3),
            "float",
            lambda m, x: F.conv2d(x, m.weight, m.bias, stride=2, padding=1),
        )
    ],
    "avgpool2d": [
        ({"kernel": 2}, [(2, 4, 4)], (2, 2, 2), "float", lambda m, x: x.reshape(B, 2, 2, 2, 2, 2).mean((3, 5)))
    ],
    "maxpool2d": [
        ({"kernel": 2}, [(2, 4, 4)], (2, 2, 2), "float", lambda m, x: x.reshape(B, 2, 2, 2, 2, 2).amax((3, 5)))
    ],
    "flatten": [({}, [(2, 3, 2)], (12,), "float", lambda m, x: x.reshape(B, -1))],
    "embedding": [
        ({"vocab": 7, "positional": "learned"}, [(5,)], (5, 4), "long", ref_embedding),
        ({"vocab": 7, "positional": "sinusoidal"}, [(5,)], (5, 4), "long", ref_embedding),
        ({"vocab": 7}, [(5,)], (5, 4), "long", ref_embedding),
    ],
    "layernorm": [({}, [(2, 6)], (2, 6), "float", ref_layernorm)],
    "attention_scores": [
        ({"causal": True}, [(4, 3), (4, 3)], (4, 4), "float", ref_scores),
        ({}, [(4, 3), (5, 3)], (4, 5), "float", ref_scores),
    ],
    "attention_apply": [({}, [(4, 5), (5, 3)], (4, 3), "float", lambda m, p, v: torch.einsum("bij,bjd->bid", p, v))],
    "elementwise_mul": [({}, [(4,), (4,)], (4,), "float", lambda m, a, b: a * b)],
    "block": [
        (
            {"residual": True, "steps": ["layernorm", {"type": "mlp", "hidden": [5]}]},
            [(2, 4)],
            (2, 4),
            "float",
            ref_block_ln_mlp,
        ),
        (
            {
                "steps": [
                    {"type": "linear", "width": 6, "then": "tanh"},
                    {"type": "linear", "residual": True, "then": "relu"}, {"type": "linear", "bias": False}
                ]
            },
            [(4,)],
            (3,),
            "float",
            ref_block_steps,
        ),
    ],
}

CASES = [(name, *ex) for name, exs in EXAMPLES.items() for ex in exs]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def inputs(in_shapes, dtype, vocab=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if dtype == "long":
        return [torch.randint(0, vocab, (B,) + s, generator=gen) for s in in_shapes]
    return [torch.randn((B,) + s, generator=gen, dtype=D) for s in in_shapes]


def randomise(m):
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def test_every_registered_transform_has_an_example():
    assert set(transforms.names()) <= set(EXAMPLES)


@pytest.mark.parametrize("name,o,ins,out,dt,ref", CASES, ids=IDS)
def test_forward_matches_reference(name, o, ins, out, dt, ref):
    m = build(name, o, ins, out)
    randomise(m)
    xs = inputs(ins, dt)
    y = m(*xs)
    assert y.shape == (B,) + tuple(out)
    torch.testing.assert_close(y, ref(m, *xs))


#: parameter counts of the examples, counted by hand (a new example needs its count here)
HAND_COUNTS = {
    "identity-0": 0,
    "linear-1": 4 * 3 + 3,
    "linear-2": 4 * 5,
    "linear-3": (4 + 2) * 3 + 3,
    "mlp-4": (4 * 6 + 6) + (6 * 5 + 5) + (5 * 3 + 3),
    "conv2d-5": 3 * 2 * 3 * 3 + 3,
    "avgpool2d-6": 0,
    "maxpool2d-7": 0,
    "flatten-8": 0,
    "embedding-9": 7 * 4 + 5 * 4,  # token table + learned positions
    "embedding-10": 7 * 4,  # sinusoidal positions are not parameters
    "embedding-11": 7 * 4,
    "layernorm-12": 6 + 6,
    "attention_scores-13": 0,
    "attention_scores-14": 0,
    "attention_apply-15": 0,
    "elementwise_mul-16": 0,
    "block-17": (4 + 4) + (4 * 5 + 5) + (5 * 4 + 4),
    "block-18": (4 * 6 + 6) + (6 * 6 + 6) + 6 * 3,
}


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_param_count_matches_a_hand_count(case):
    name, o, ins, out, dt, ref = CASES[case]
    expected = HAND_COUNTS[IDS[case]]
    m = build(name, o, ins, out)
    assert sum(p.numel() for p in m.parameters()) == expected
    assert transforms.get(name).param_count(opts(name, **o), ins, out) == expected


@pytest.mark.parametrize("name,o,ins,out,dt,ref", CASES, ids=IDS)
def test_vjp_matches_autograd_and_finite_differences(name, o, ins, out, dt, ref):
    m = build(name, o, ins, out)
    randomise(m)
    xs = inputs(ins, dt, seed=1)
    g = torch.randn((B,) + tuple(out), dtype=D, generator=torch.Generator().manual_seed(2))
    need = [x.is_floating_point() for x in xs]
    gin, gp = m.vjp(xs, g, need, True)
    leaves = [x.clone().requires_grad_(True) if n else x for x, n in zip(xs, need)]
    params = list(m.named_parameters())
    wrt = [x for x, n in zip(leaves, need) if n] + [p for _, p in params]
    if not wrt:
        return
    expected = torch.autograd.grad(m(*leaves), wrt, g, allow_unused=True)
    it = iter(expected)
    assert len(gin) == len(xs)
    for x, n, got in zip(xs, need, gin):
        if n:
            e = next(it)
            torch.testing.assert_close(got, torch.zeros_like(x) if e is None else e)
    for (k, p), e in zip(params, it):
        torch.testing.assert_close(gp[k], torch.zeros_like(p) if e is None else e)
    # the forward itself against finite differences, for the float inputs
    if any(need) and name != "maxpool2d":  # maxpool is piecewise: FD is unreliable at ties
        fl = [i for i, n in enumerate(need) if n]

        def f(*zs):
            args = list(xs)
            for i, z in zip(fl, zs):
                args[i] = z
            return m(*args)

        assert torch.autograd.gradcheck(f, tuple(xs[i].clone().requires_grad_(True) for i in fl))


def test_causal_scores_leave_no_probability_on_future_positions():
    m = build("attention_scores", {"causal": True}, [(6, 4), (6, 4)], (6, 6))
    q, k = inputs([(6, 4), (6, 4)], "float")
    p = torch.softmax(m(q * 30, k * 30), -1)
    assert torch.isfinite(p).all()
    assert (p.triu(1) == 0).all()


@pytest.mark.parametrize(
    "act,expected_std",
    [
        ("tanh", 5 / 3 * math.sqrt(2 / (256 + 256))),  # Glorot with tanh gain
        ("identity", math.sqrt(2 / (256 + 256))),
        ("relu", math.sqrt(2 / 256)),  # He
    ],
)
def test_linear_init_scale_suits_the_activation(act, expected_std):
    m = build("linear", {}, [(256,)], (256,), act)
    assert abs(m.weight.std().item() / expected_std - 1) < 0.05
    assert (m.bias == 0).all()


@pytest.mark.parametrize(
    "name,o,ins,out",
    [
        ("linear", {}, [(4, 3)], (5,)),
        ("conv2d", {"kernel": 3}, [(1, 5, 5)], (2, 5, 5)),
        ("maxpool2d", {"kernel": 2}, [(2, 4, 4)], (3, 2, 2)),
        ("flatten", {}, [(2, 3)], (5,)),
        ("attention_scores", {}, [(4, 3), (4, 2)], (4, 4)),
        ("attention_apply", {}, [(4, 4), (5, 3)], (4, 3)),
        ("embedding", {"vocab": 3}, [(5,)], (4, 4)),
        ("identity", {}, [(3,)], (4,)),
        ("elementwise_mul", {}, [(3,), (4,)], (3,)),
        ("layernorm", {}, [(3,)], (4,)),
        ("block", {"residual": True, "steps": ["linear"]}, [(4,)], (3,)),
        ("block", {"steps": [{"type": "linear", "width": 5, "residual": True}, "linear"]}, [(4,)], (3,)),
        ("block", {"steps": ["layernorm", "layernorm"]}, [(4,)], (3,)),
        ("block", {"steps": [{"type": "linear", "width": 5}]}, [(4,)], (3,)),
    ],
)
def test_shape_rule_rejects_impossible_shapes(name, o, ins, out):
    with pytest.raises(ShapeError):
        transforms.get(name).param_shapes(opts(name, **o), ins, out)


@pytest.mark.parametrize("name", activations.ACTIVATION_NAMES)
def test_activation_derivatives_match_autograd(name):
    act = activations.get(name)
    a = torch.linspace(-3, 3, 101, dtype=D)[1:-1]  # avoid kinks exactly at grid points
    a = a + 0.0123
    a_ = a.clone().requires_grad_(True)
    y = act.fn(a_)
    expected = torch.autograd.grad(y.sum(), a_)[0]
    torch.testing.assert_close(act.derivative(a, act.fn(a)), expected)
