"""The block transform in float64: the composition of its steps (built as separate
transforms with the same parameters), gradients against autograd of that composition
and finite differences, the same network written with nodes or with a block edge,
and specs that use it (PC and BP steps, located errors, exit code 2)."""

import pytest
import torch
from click.testing import CliRunner

from pcgraph.core import activations
from pcgraph.cli import main
from pcgraph.transforms import ShapeError, transforms
from tests.numerics.graphs import D, batch_for, program

B = 3
IDENTITY = activations.get("identity")


def block(options, in_shape, out_shape):
    torch.manual_seed(0)
    cls = transforms.get("block")
    m = cls(cls.Options(**options), [in_shape], out_shape, IDENTITY).to(D)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return m


def step(m, k, in_shape, out_shape):
    """Step k as a transform of its own, holding (the same tensors as) the block's s{k}_ parameters."""
    st = m.options.steps[k]
    cls = transforms.get(st.type)
    sub = cls(cls.Options(**st.model_dump(exclude={"width", "shape", "residual", "then"})), [in_shape], out_shape, IDENTITY).to(D)
    for name in list(sub._parameters):
        sub._parameters[name] = m._parameters[f"s{k}_{name}"]
    return sub


# pre-norm residual block: x + mlp(layernorm(x))
PRE = {"residual": True, "steps": ["layernorm", {"type": "mlp", "hidden": [7], "activation": "gelu"}]}
# post-norm, as in lm-transformer.yaml: layernorm(hn + mlp(hn)), hn = layernorm(x)
POST = {"steps": ["layernorm", {"type": "mlp", "hidden": [7], "residual": True}, {"type": "layernorm"}]}
# width changes between steps, activations after steps, a shape given whole
WIDTHS = {"steps": [{"type": "linear", "width": 6, "then": "tanh"}, {"type": "layernorm", "affine": False}, {"type": "mlp", "shape": [2, 5], "then": "sigmoid"}, "linear"]}


def by_hand(m, x, name):
    if name == "pre":
        ln, mlp = step(m, 0, (2, 4), (2, 4)), step(m, 1, (2, 4), (2, 4))
        return x + mlp(ln(x))
    if name == "post":
        ln0, mlp, ln2 = (step(m, k, (2, 4), (2, 4)) for k in range(3))
        hn = ln0(x)
        return ln2(hn + mlp(hn))
    lin0, ln1, mlp2, lin3 = step(m, 0, (2, 4), (2, 6)), step(m, 1, (2, 6), (2, 6)), step(m, 2, (2, 6), (2, 5)), step(m, 3, (2, 5), (2, 3))
    return lin3(torch.sigmoid(mlp2(ln1(torch.tanh(lin0(x))))))


CASES = {"pre": (PRE, (2, 4)), "post": (POST, (2, 4)), "widths": (WIDTHS, (2, 3))}


@pytest.mark.parametrize("name", list(CASES))
def test_forward_is_the_composition_of_its_steps(name):
    options, out = CASES[name]
    m = block(options, (2, 4), out)
    x = torch.randn(B, 2, 4, dtype=D)
    torch.testing.assert_close(m(x), by_hand(m, x, name))


@pytest.mark.parametrize("name", list(CASES))
def test_vjp_equals_autograd_of_the_composition_and_finite_differences(name):
    options, out = CASES[name]
    m = block(options, (2, 4), out)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, 2, 4, dtype=D, generator=gen)
    g = torch.randn((B,) + out, dtype=D, generator=gen)
    (gx,), gp = m.vjp([x], g, [True], True)
    names = [k for k, _ in m.named_parameters()]
    assert set(gp) == set(names) and names  # every step's parameters, by the block's names
    x_ = x.clone().requires_grad_(True)
    expected = torch.autograd.grad(by_hand(m, x_, name), [x_] + [m._parameters[k] for k in names], g)
    torch.testing.assert_close(gx, expected[0])
    for k, e in zip(names, expected[1:]):
        torch.testing.assert_close(gp[k], e)
    # parameter gradients against finite differences of the forward
    params = [m._parameters[k].detach().clone().requires_grad_(True) for k in names]

    def f(*ps):
        out = torch.func.functional_call(m.module, dict(zip(names, ps)), (x,))
        return (out * g).sum()

    assert torch.autograd.gradcheck(f, tuple(params))


def test_steps_are_initialised_by_their_own_rule():
    cls = transforms.get("block")
    torch.manual_seed(0)
    m = cls(cls.Options(steps=["layernorm", {"type": "linear", "width": 300, "then": "relu"}, "linear"]), [(200,)], (250,), activations.get("tanh"))
    assert (m.s0_weight == 1).all() and (m.s0_bias == 0).all()  # layernorm: scale 1, shift 0
    he = (2 / 200) ** 0.5  # followed by relu: He
    assert abs(m.s1_weight.std().item() / he - 1) < 0.05
    glorot_tanh = 5 / 3 * (2 / (300 + 250)) ** 0.5  # the last step is followed by the edge's tanh
    assert abs(m.s2_weight.std().item() / glorot_tanh - 1) < 0.05
    torch.manual_seed(0)
    m = cls(cls.Options(steps=[{"type": "linear", "then": "relu"}]), [(200,)], (250,), IDENTITY)
    assert abs(m.s0_weight.std().item() / he - 1) < 0.05  # the step's own activation comes first


@pytest.mark.parametrize(
    "options,ins,out,where",
    [
        ({"residual": True, "steps": ["linear"]}, (4,), (3,), ("residual",)),
        ({"steps": ["layernorm", "layernorm"]}, (4,), (3,), ("steps", 1)),
        ({"steps": [{"type": "linear", "width": 5, "residual": True}, "linear"]}, (4,), (3,), ("steps", 0)),
        ({"steps": [{"type": "linear", "width": 5, "shape": [5]}, "linear"]}, (4,), (3,), ("steps", 0)),
        ({"steps": ["linear", {"type": "linear", "width": 4}]}, (4,), (3,), ("steps", 1)),
    ],
)
def test_shape_errors_say_which_step(options, ins, out, where):
    cls = transforms.get("block")
    with pytest.raises(ShapeError) as info:
        cls.param_shapes(cls.Options(**options), [ins], out)
    assert info.value.path == where


# ------------------------------------------------------------------ in a network
LM = """
name: tlm
nodes:
  tokens: {shape: [6], role: input, bind: tokens, dtype: long}
  x:    {shape: [6, 8], family: gaussian}
  q:    {shape: [6, 8], family: gaussian}
  k:    {shape: [6, 8], family: gaussian}
  v:    {shape: [6, 8], family: gaussian}
  attn: {shape: [6, 6], family: categorical}
  ctx:  {shape: [6, 8], family: gaussian}
  h:    {shape: [6, 8], family: gaussian}
GLUE
  next: {shape: [6, 11], family: categorical, role: target, bind: next_tokens}
edges:
  - {from: tokens, to: x, transform: {type: embedding, vocab: 11, positional: learned}}
  - {from: x, to: q}
  - {from: x, to: k}
  - {from: x, to: v}
  - {from: [q, k], to: attn, transform: {type: attention_scores, causal: true}}
  - {from: [attn, v], to: ctx, transform: attention_apply}
  - {from: ctx, to: h}
  - {from: x, to: h, transform: identity}
EDGES
  - {from: yn, to: next}
"""
NODES_GLUE = ("  hn: {shape: [6, 8], family: gaussian}\n  ff: {shape: [6, 8], family: gaussian}\n"
              "  y: {shape: [6, 8], family: gaussian}\n  yn: {shape: [6, 8], family: gaussian}")
NODES_EDGES = """  - {from: h, to: hn, transform: layernorm}
  - {from: hn, to: ff, activation: relu}
  - {from: ff, to: y}
  - {from: hn, to: y, transform: identity}
  - {from: y, to: yn, transform: layernorm}"""
BLOCK_GLUE = "  yn: {shape: [6, 8], family: gaussian}"
BLOCK_EDGES = "  - {from: h, to: yn, transform: {type: block, steps: [layernorm, {type: mlp, hidden: [8], residual: true}, layernorm]}}"
WITH_NODES = LM.replace("GLUE", NODES_GLUE).replace("EDGES", NODES_EDGES)
WITH_BLOCK = LM.replace("GLUE", BLOCK_GLUE).replace("EDGES", BLOCK_EDGES)


def same_weights(nodes, blk):
    """Copy the node network's weights into the block network (edges e0..e7 agree)."""
    src = dict(nodes.named_parameters())
    dst = dict(blk.named_parameters())
    pairs = {f"edge_modules.e{i}.{p}": f"edge_modules.e{i}.{p}" for i in range(8) for p in ("weight", "bias", "position")}
    pairs = {a: b for a, b in pairs.items() if a in src}
    pairs.update({
        "edge_modules.e8.weight": "edge_modules.e8.s0_weight", "edge_modules.e8.bias": "edge_modules.e8.s0_bias",
        "edge_modules.e9.weight": "edge_modules.e8.s1_weight0", "edge_modules.e9.bias": "edge_modules.e8.s1_bias0",
        "edge_modules.e10.weight": "edge_modules.e8.s1_weight1", "edge_modules.e10.bias": "edge_modules.e8.s1_bias1",
        "edge_modules.e12.weight": "edge_modules.e8.s2_weight", "edge_modules.e12.bias": "edge_modules.e8.s2_bias",
        "edge_modules.e13.weight": "edge_modules.e9.weight", "edge_modules.e13.bias": "edge_modules.e9.bias",
    })
    assert set(pairs.values()) == set(dst)
    with torch.no_grad():
        for a, b in pairs.items():
            dst[b].copy_(src[a] + 0.1 * torch.randn_like(src[a]))  # away from the init (layernorm 1/0)
            src[a].copy_(dst[b])
    return pairs


def test_glue_as_a_block_edge_is_the_same_network_as_glue_as_nodes():
    """Backprop's loss and weight gradients agree (the node network's forward pass
    puts every glue node at its prediction), with 3 fewer nodes and the same count."""
    nodes, blk = program(WITH_NODES), program(WITH_BLOCK)
    assert len(blk.nodes) == len(nodes.nodes) - 3
    assert sum(p.numel() for p in blk.parameters()) == sum(p.numel() for p in nodes.parameters())
    pairs = same_weights(nodes, blk)
    batch = batch_for(nodes, B=4)
    ln, lb = nodes.loss_bp(batch), blk.loss_bp(batch)
    torch.testing.assert_close(ln, lb)
    gn = dict(zip(dict(nodes.named_parameters()), torch.autograd.grad(ln, list(nodes.parameters()))))
    gb = dict(zip(dict(blk.named_parameters()), torch.autograd.grad(lb, list(blk.parameters()))))
    for a, b in pairs.items():
        torch.testing.assert_close(gn[a], gb[b])


def test_arrival_gradients_through_a_block_equal_backprop():
    """The inference engine differentiates the block edge by autograd (no closed form):
    PC's weight gradients at arrival equal backprop's, as on any edge."""
    prog = program(WITH_BLOCK)
    batch = batch_for(prog, B=3)
    state = prog.init_state(batch)
    prog.arrival_grads(state)
    pc = [p.grad.clone() for p in prog.parameters()]
    prog.zero_grad()
    prog.loss_bp(batch, noise=state.noise).backward()
    for a, b in zip(pc, prog.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-9, atol=1e-12)


def test_engine_weight_gradients_through_a_block_equal_autograd_of_the_energy():
    prog = program(WITH_BLOCK, overrides=["train.weights.gradient=equilibrium"])
    state = prog.infer(prog.init_state(batch_for(prog, B=3)), steps=3)
    prog.weight_grads(state, fast=True)
    fast = [p.grad.clone() for p in prog.parameters()]
    prog.weight_grads(state, fast=False)
    for a, p in zip(fast, prog.parameters()):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.parametrize("energy", ["kl", "gaussian"])
def test_a_spec_with_blocks_runs_a_pc_and_a_bp_step(energy):
    text = WITH_BLOCK + "  - {from: x, to: yn, name: skip, transform: {type: block, residual: true, steps: [{type: linear, then: tanh}, linear]}}\n"
    prog = program(text, energy=energy, overrides=["train.inference.steps=3"])
    batch = batch_for(prog, B=3)
    before = [p.detach().clone() for p in prog.parameters()]
    for terms in (prog.pc_step(batch), prog.bp_step(batch)):
        assert all(torch.isfinite(t).all() for t in terms.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, prog.parameters()) if a.numel() > 16)
    assert "μ_yn = layernorm(layernorm(v_h) + mlp(layernorm(v_h))) [e8]" in prog.listing()


def test_shared_block_parameters_stay_tied():
    text = WITH_BLOCK.replace("transform: {type: block", "name: glue, transform: {type: block") + (
        "  - {from: x, to: yn, share: glue, transform: {type: block, steps: [layernorm, {type: mlp, hidden: [8], residual: true}, layernorm]}}\n"
    )
    prog = program(text, overrides=["train.weights.optimizer={type: sgd, lr: 0.5}"])
    a, b = prog.edge_modules["glue"], prog.edge_modules["e10"]
    assert prog.graph.edge("e10").shared_names == tuple(dict(a.named_parameters()))
    prog.pc_step(batch_for(prog, B=3))
    x = torch.randn(2, 6, 8, dtype=D)
    torch.testing.assert_close(a(x), b(x))


BAD = """\
name: t
nodes:
  x: {shape: [4], role: input, bind: image}
  h: {shape: [4], family: gaussian}
  y: {shape: [2], family: categorical, role: target, bind: label}
edges:
  - {from: x, to: h, transform: {type: block, steps: [layernorm, {type: mlp, hidden: [0]}]}}
  - {from: h, to: y, transform: {type: block, residual: true, steps: [layernorm, linear]}}
"""


def test_validate_reports_block_errors_located_with_exit_2(write):
    p = write(BAD)
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    col = BAD.splitlines()[6].index("[0]") + 2  # 1-based column of the 0
    # validate reports every problem of the file: the bad option and the residual's shapes
    assert lines[0] == f"{p}:7:{col}: edges.0.transform.steps.1.hidden.0: must be > 0, got 0", lines
    assert len(lines) == 2 and lines[1].startswith(f"{p}:8:") and "edges.1.transform.residual" in lines[1], lines
    assert "Traceback" not in r.output
    p = write(BAD.replace("hidden: [0]", "hidden: [3]"))
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 2
    col = BAD.splitlines()[7].index("true") + 1  # the value of residual
    assert r.output.strip() == (
        f"{p}:8:{col}: edges.1.transform.residual: edge h -> y: a residual block adds its input to its output, so it needs equal shapes, got [4] -> [2]"
    )


# ------------------------------------------- steps whose input fixes their output
def test_a_flatten_step_needs_no_shape():
    """[4, 4] -> flatten -> linear -> [3]: flatten's output is [16] whatever is written."""
    for flat in ("flatten", {"type": "flatten"}, {"type": "flatten", "width": 16}, {"type": "flatten", "shape": [16]}):
        m = block({"steps": [flat, "linear"]}, (4, 4), (3,))
        assert dict((k, tuple(p.shape)) for k, p in m.named_parameters()) == {"s1_weight": (3, 16), "s1_bias": (3,)}
        x = torch.randn(B, 4, 4, dtype=D)
        expected = x.reshape(B, 16) @ m.s1_weight.T + m.s1_bias  # by hand
        torch.testing.assert_close(m(x), expected)
    cls = transforms.get("block")
    with pytest.raises(ShapeError) as info:
        cls.param_shapes(cls.Options(steps=[{"type": "flatten", "width": 17}, "linear"]), [(4, 4)], (3,))
    assert info.value.path == ("steps", 0) and str(info.value) == "step 0: flatten maps [4, 4] to [16], not [17]"


def test_a_pooling_step_needs_no_shape():
    """[2, 4, 4] -> avgpool 2 -> [2, 2, 2] -> flatten -> [8] -> linear -> [3], by hand."""
    m = block({"steps": [{"type": "avgpool2d", "kernel": 2}, "flatten", "linear"]}, (2, 4, 4), (3,))
    x = torch.randn(B, 2, 4, 4, dtype=D)
    pooled = x.reshape(B, 2, 2, 2, 2, 2).mean(dim=(3, 5))  # [B, C, H/2, 2, W/2, 2] -> window means
    torch.testing.assert_close(m(x), pooled.reshape(B, 8) @ m.s2_weight.T + m.s2_bias)
    m = block({"steps": [{"type": "maxpool2d", "kernel": 2, "stride": 1}, "flatten", "linear"]}, (1, 3, 3), (2,))
    assert tuple(m.s2_weight.shape) == (2, 4)  # [1, 3, 3] -> [1, 2, 2] -> [4]


FLAT = """
name: flat
nodes:
  x: {shape: [4, 4], role: input, bind: x}
  y: {shape: [3], family: categorical, role: target, bind: y}
edges:
  - {from: x, to: y, transform: {type: block, steps: [flatten, linear]}}
data: {dataset: synthetic, batch_size: 8, options: {n_train: 16, n_test: 8}}
train: {epochs: 1, inference: {steps: 2}}
"""


def test_a_spec_with_a_bare_flatten_step_validates_and_trains(write, tmp_path):
    p = write(FLAT)
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 0, r.output
    assert "51 parameters" in r.output  # 3 x 16 weight + 3 biases
    r = CliRunner().invoke(main, ["train", str(p), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
