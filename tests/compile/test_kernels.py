"""GEMM kernels of linear edges: every candidate against F.linear and autograd, the
timed choice and its fallbacks, train.kernels, re-packing after a weight update, and
BP's gradients through the kernels' autograd Function."""

import re

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import pcgraph
from pcgraph.cli import main
from pcgraph.compile import compile_graph as compile, kernels
from pcgraph.compile.kernels import KERNELS, ChosenGemm, Kernel, Packed, Timing
from pcgraph.core.errors import SpecError
from pcgraph.transforms.linear import TorchGemm
from tests.numerics.graphs import DAG, batch_for

F32 = torch.float32
F64 = torch.float64
ONEDNN = kernels.onednn_available(F32, torch.device("cpu"))
needs_onednn = pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN")
CANDIDATES = [(p, b) for p in kernels.PRODUCTS for b in kernels.BACKENDS]

MLP = """
name: mlp
data: {dataset: synthetic, batch_size: 8}
nodes:
  image: {shape: [12], role: input, bind: image}
  h1: {shape: [9], family: gaussian}
  label: {shape: [4], family: categorical, role: target, bind: label}
edges:
  - {from: image, to: h1, activation: tanh}
  - {from: h1, to: label}
train: {inference: {steps: 3}, weights: {optimizer: {type: adam, lr: 0.01}}}
"""


def build(text, dtype=F32, **sets):
    overrides = [f"train.{k}={v}" for k, v in sets.items()]
    return compile(pcgraph.build_graph(pcgraph.loads_spec(text, "test.yaml", overrides=overrides)), device="cpu", dtype=dtype)


def linears(prog):
    return [m for _, m in kernels.linear_edges(prog)]


def operands(dtype, lead=(7,), n_in=13, n_out=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(s, generator=g, dtype=F64).to(dtype)  # noqa: E731
    return r(*lead, n_in), r(n_out, n_in), r(n_out), r(*lead, n_out)


def run(product, backend, x, w, b, e):
    kern = KERNELS[product][backend]
    pack = Packed(x.shape[0], product == "input") if kern.packs else None
    if product == "forward":
        return kern.run(x, w, b, pack)
    if product == "input":
        return kern.run(e, w, pack)
    return kern.run(e.reshape(-1, e.shape[-1]), x.reshape(-1, x.shape[-1]))


def autograd_products(x, w, b, e):
    """(F.linear, d<e, F.linear>/dx, d<e, F.linear>/dW) by autograd."""
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = F.linear(x, w, b)
    gx, gw = torch.autograd.grad(y, (x, w), e)
    return {"forward": y.detach(), "input": gx, "weight": gw}


@pytest.mark.parametrize("product,backend", CANDIDATES)
@pytest.mark.parametrize("lead", [(7,), (3, 5)])
def test_every_candidate_equals_f_linear_and_its_autograd(product, backend, lead):
    if not KERNELS[product][backend].available(F32, torch.device("cpu")):
        pytest.skip(f"{backend} does not run here")
    ops = operands(F32, lead)
    want = autograd_products(*(t.double() for t in ops))[product]
    got = run(product, backend, *ops)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_float64_runs_plain_torch_whatever_the_choice():
    for choice in ("auto", "onednn", "onednn-packed"):
        prog = build(MLP, F64, kernels=choice)
        assert all(m.gemm is TorchGemm for m in linears(prog))  # F.linear and @: exact
    times = kernels.time_product("forward", 8, 12, 9, F64, "cpu")
    assert times["default"].seconds is not None
    assert times["onednn"].seconds is None and "float64" in times["onednn"].error


def test_pick_weighs_the_reorder_by_the_calls_that_share_it():
    t = {"default": Timing(1.0), "onednn": Timing(0.95), "onednn-packed": Timing(0.5, pack=5.0)}
    assert kernels.pick(t, uses=1) == "default"  # 5.5 packed, 0.95 not enough below 1.0
    assert kernels.pick(t, uses=100) == "onednn-packed"  # 0.55
    t["onednn-packed"] = Timing(error="fails: RuntimeError")
    t["onednn"] = Timing(0.5)
    assert kernels.pick(t, uses=100) == "onednn"


def test_pick_takes_another_backend_only_beyond_the_spread_of_the_rounds():
    """A busy machine: default's rounds run 1.0..3.0 ms, onednn's 0.4..1.2 ms. onednn's
    median (0.5) beats default's (1.0) by far more than the margin, but its slowest round
    is slower than default's fastest: the difference may be the machine's, so default."""
    default = Timing(1.0, rounds=((1.0, 0.0), (1.0, 0.0), (3.0, 0.0), (1.1, 0.0), (0.99, 0.0)))
    noisy = Timing(0.5, rounds=((0.4, 0.0), (0.5, 0.0), (0.5, 0.0), (1.2, 0.0), (0.45, 0.0)))
    assert kernels.pick({"default": default, "onednn": noisy}, uses=1) == "default"
    steady = Timing(0.5, rounds=((0.4, 0.0), (0.5, 0.0), (0.5, 0.0), (0.6, 0.0), (0.45, 0.0)))
    assert kernels.pick({"default": default, "onednn": steady}, uses=1) == "onednn"
    # the reorder counts in each round: 0.5 + 4.0 / 8 = 1.0 in a round, not faster than default's 0.99
    packed = Timing(0.4, 0.1, rounds=((0.4, 0.1), (0.4, 0.1), (0.5, 4.0), (0.4, 0.1), (0.4, 0.1)))
    assert kernels.pick({"default": default, "onednn-packed": packed}, uses=8) == "default"
    assert kernels.pick({"default": default, "onednn-packed": packed}, uses=400) == "onednn-packed"


def test_each_candidate_is_timed_in_rounds_and_reports_their_median(monkeypatch):
    monkeypatch.setattr(kernels, "_TIMES", {})
    times = kernels.time_product("forward", 8, 12, 9, F32, "cpu")
    for name, t in times.items():
        if t.seconds is None:
            continue
        per_call = sorted(r[0] for r in t.rounds)
        assert len(per_call) == kernels.ROUNDS and t.seconds == per_call[kernels.ROUNDS // 2]
        assert t.span(1)[0] <= t.cost(1) <= t.span(1)[1]


def _raises(*args):
    raise RuntimeError("this backend broke")


def _wrong(x, w, b, pack):
    return F.linear(x, w, b) + 1.0


def test_chooser_leaves_out_a_candidate_that_raises_or_disagrees(monkeypatch):
    monkeypatch.setattr(kernels, "_TIMES", {})
    forward = dict(KERNELS["forward"])
    forward["onednn"] = Kernel("onednn", _raises, kernels._always)
    forward["onednn-packed"] = Kernel("onednn-packed", _wrong, kernels._always)
    monkeypatch.setitem(KERNELS, "forward", forward)
    times = kernels.time_product("forward", 8, 12, 9, F32, "cpu")
    assert times["onednn"].seconds is None and times["onednn"].error == "fails: RuntimeError"
    assert times["onednn-packed"].seconds is None and times["onednn-packed"].error == "disagrees with F.linear"
    assert kernels.pick(times, uses=4) == "default"
    prog = build(MLP, kernels="auto")
    state = prog.init_state(batch_for(prog, B=8))  # runs: nothing raises
    assert all(kernels.running(m)["forward"] == ["default"] for m in linears(prog))
    assert torch.isfinite(prog.energy(state))


@needs_onednn
@pytest.mark.parametrize("choice", ["default", "onednn", "onednn-packed"])
def test_train_kernels_is_honoured_and_the_kernels_run(choice, monkeypatch):
    prog = build(MLP, kernels=choice)
    for m in linears(prog):
        names = kernels.running(m)
        assert names == {p: [choice] for p in kernels.PRODUCTS}
    calls = []
    real = kernels._dnn
    monkeypatch.setattr(kernels, "_dnn", lambda *a: calls.append(1) or real(*a))
    batch = batch_for(prog, B=8)
    prog.pc_step(batch)
    prog.bp_step(batch)
    assert (len(calls) > 0) == (choice != "default")


def test_an_unknown_kernel_name_is_a_spec_error_naming_the_choices(write):
    with pytest.raises(SpecError) as info:
        pcgraph.loads_spec(MLP, "test.yaml", overrides=["train.kernels=mkl"])
    (line,) = info.value.lines
    assert "train.kernels" in line and "default, auto, onednn, onednn-packed" in line
    res = CliRunner().invoke(main, ["compile", str(write(MLP.replace("steps: 3}", "steps: 3}, kernels: onedn"))), "--explain"])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert "train.kernels: 'onedn' is not one of" in line and "did you mean 'onednn'" in line


def test_the_spec_names_exactly_the_registered_backends():
    field = pcgraph.spec.models.TrainSpec.model_fields["kernels"]
    assert set(field.annotation.__args__) == set(kernels.BACKENDS) | {"auto"}


@needs_onednn
def test_packed_weights_follow_every_update():
    prog = build(MLP, kernels="onednn-packed")
    mod = linears(prog)[0]
    w, b = mod.weight, mod.bias
    x, e = torch.randn(8, 12), torch.randn(8, 9)
    with torch.no_grad():
        y0 = mod(x)
        torch.testing.assert_close(mod(x), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
        assert mod.gemm.fwd_packs[0].count == 1  # two calls, one weight version: one reorder
    prog.bp_step(batch_for(prog, B=8))  # an Adam step changes the weights in place
    with torch.no_grad():
        assert not torch.allclose(mod(x), y0)
        torch.testing.assert_close(mod(x), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mod.vjp([x], e, [True], False)[0][0], e @ w, rtol=1e-5, atol=1e-5)
        new = {k: torch.randn_like(v) for k, v in mod.module.state_dict().items()}
        mod.module.load_state_dict(new)  # copied in place: same tensors, new version
        torch.testing.assert_close(mod(x), F.linear(x, new["weight"], new["bias"]), rtol=1e-5, atol=1e-5)
        x3 = torch.randn(3, 12)  # fewer rows than the reorder was made for
        torch.testing.assert_close(mod(x3), F.linear(x3, new["weight"], new["bias"]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mod.vjp([x], e, [True], False)[0][0], e @ new["weight"], rtol=1e-5, atol=1e-5)


def test_bp_gradients_through_the_function_equal_autograd_in_float64():
    spec = DAG.replace("TARGET", "gaussian")
    prog = build(spec, F64)
    ref = build(spec, F64)
    for m in linears(prog):  # the Function with float64-capable kernels on every edge
        plain = {p: [KERNELS[p]["default"]] * len(kernels._widths(m, p)) for p in kernels.PRODUCTS}
        m.gemm = ChosenGemm(plain, 4, F64, torch.device("cpu"))
    batch = batch_for(prog, B=4)
    for p in (prog, ref):
        torch.stack(list(p.loss_terms(batch)[0].values())).sum(0).mean().backward()
    for (name, p), q in zip(prog.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-12, msg=name)
    gemm = linears(prog)[0].gemm
    x, w, b, _ = (t.requires_grad_() for t in operands(F64, (3, 4)))
    assert torch.autograd.gradcheck(lambda x, w, b: gemm.linear(x, w, b, 0), (x, w, b))


@needs_onednn
@pytest.mark.parametrize("choice", ["onednn", "onednn-packed"])
def test_bp_and_pc_gradients_with_onednn_equal_the_default_kernels(choice):
    spec = DAG.replace("TARGET", "gaussian")
    progs = [build(spec, kernels=c) for c in ("default", choice)]
    batch = batch_for(progs[0], B=4)
    batch = {k: v.float() if v.is_floating_point() else v for k, v in batch.items()}
    grads = []
    for p in progs:
        torch.stack(list(p.loss_terms(batch)[0].values())).sum(0).mean().backward()
        bp = [q.grad.clone() for q in p.parameters()]
        state = p.init_state(batch)
        p.infer(state, steps=3)
        p.weight_grads(state)
        grads.append((bp, [q.grad.clone() for q in p.parameters()]))
    for a, b in zip(grads[0][0] + grads[0][1], grads[1][0] + grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_explain_shows_each_linear_edge_its_candidates_and_the_winner(write):
    res = CliRunner().invoke(main, ["compile", str(write(MLP)), "--explain", "--set", "train.kernels=auto"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("  ")]
    assert [ln.split(":")[0] for ln in lines] == ["  image -> h1 [8 x 12] -> 9", "  h1 -> label [8 x 9] -> 4"]
    for ln in lines:
        assert ln.count("*") == 3  # one winner per product
        assert all(f"{p}: default" in ln for p in kernels.PRODUCTS)
        assert re.search(r"default \d+\.\d{3} \[\d+\.\d{3}\.\.\d+\.\d{3}\]", ln)  # median [fastest..slowest]
