"""Compile-stage behaviour: errors that name the node or edge and its spec line, the
readable listing, device residency without host syncs, hoisting, torch.compile."""

import pytest
import torch
from click.testing import CliRunner

import pcgraph
from pcgraph.cli import main
from pcgraph.compile import compile_graph
from pcgraph.core.errors import CompileError, DataError
from tests.conftest import SPECS
from tests.numerics.graphs import DAG, M3, TRANSFORMER, VAE, D, batch_for, program


def test_meanvar_under_energy_f_is_a_compile_error_naming_the_node():
    spec = pcgraph.loads_spec(VAE, "vae.yaml")
    with pytest.raises(CompileError) as info:
        compile_graph(pcgraph.build_graph(spec), energy="gaussian")
    (line,) = info.value.lines
    assert line.startswith("vae.yaml:6:3: nodes.z.family:") and line.endswith("it needs the KL energy (energy kl)")


def test_token_outside_the_vocabulary_names_node_edge_and_vocab():
    prog = program(TRANSFORMER)
    vocab = 11  # the embedding edge of TRANSFORMER
    for bad in (vocab, -1):
        batch = batch_for(prog)
        batch["tokens"][0, 0] = bad
        with pytest.raises(DataError) as info:
            prog.init_state(batch)
        (line,) = info.value.lines
        where = prog.graph.where("tokens")
        assert line.startswith(f"{where}: nodes.tokens.bind:") and f"token id {bad} is outside the vocabulary" in line
        assert f"vocab {vocab}: ids 0 to {vocab - 1}" in line
    batch = batch_for(prog)
    batch["tokens"][0, 0] = vocab - 1  # the last id is in the vocabulary
    prog.init_state(batch)


def test_data_that_does_not_fit_names_field_and_node():
    prog = program(M3)
    batch = batch_for(prog)
    batch["image"] = torch.rand(4, 7, dtype=D)
    with pytest.raises(DataError) as info:
        prog.init_state(batch)
    assert "data field 'image' has per-sample shape [7], node 'image' has shape [12]" in info.value.lines[0]
    batch = batch_for(prog)
    batch["label"] = torch.rand(4, dtype=D)
    with pytest.raises(DataError) as info:
        prog.init_state(batch)
    assert "'label'" in info.value.lines[0] and "categorical" in info.value.lines[0]


def test_listing_shows_predictions_and_energies():
    out = CliRunner().invoke(main, ["compile", str(SPECS / "mnist-m3.yaml"), "--print"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "μ_h2 = W·v_h1 + b [e1]" in text
    assert "KL[softmax(x_h2) ‖ softmax(μ_h2)]" in text
    assert "−Σ p·log_softmax(μ_label)" in text
    assert "½·‖x_h1 − μ_h1‖²" in text
    out = CliRunner().invoke(main, ["compile", str(SPECS / "mnist-m3.yaml"), "--energy", "gaussian", "--print"])
    assert "½·‖x_h2 − softmax(μ_h2)‖²" in out.output
    out = CliRunner().invoke(main, ["compile", str(SPECS / "mnist-vae.yaml"), "--energy", "gaussian"])
    assert out.exit_code == 2 and "nodes.z.family" in out.output


class NoSync(Exception):
    pass


def test_inference_loop_never_syncs_with_the_host(monkeypatch):
    """Where the guard may not ask the host (an accelerator, compiled code), nothing in
    the inference loop or the weight gradient does."""
    from pcgraph.compile import guard

    prog = program(M3)
    batch = batch_for(prog)
    state = prog.init_state(batch)
    monkeypatch.setattr(guard, "may_sync", lambda t: False)

    def forbid(*a, **k):
        raise NoSync("host synchronisation inside the step")

    for name in ("item", "__bool__", "tolist", "numpy", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, forbid)
    prog.infer(state, steps=5)
    prog.weight_grads(state)
    for schedule in ("sweep", "carry", "sync"):
        prog.infer(state, steps=2, schedule=schedule)


def test_the_guard_asks_the_host_at_most_once_per_step_on_the_cpu(monkeypatch):
    prog = program(M3)
    state = prog.init_state(batch_for(prog))
    asked = []
    real = torch.Tensor.__bool__
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: asked.append(1) or real(t))
    prog.infer(state, steps=4)
    assert prog.train_cfg.inference.optimizer.guard and 1 <= len(asked) <= 4


def test_parameters_and_states_share_the_programs_device():
    prog = program(DAG.replace("TARGET", "gaussian"))
    state = prog.init_state(batch_for(prog))
    devices = {p.device for p in prog.parameters()} | {v.device for v in state.values()}
    assert devices == {prog.device}


def test_edges_from_clamped_nodes_are_computed_once_per_batch():
    prog = program(M3)
    calls = {"e0": 0, "e1": 0}
    for name in calls:
        t, forward = prog.transforms[name], prog.transforms[name].forward

        def counted(*xs, name=name, forward=forward):
            calls[name] += 1
            return forward(*xs)

        t.forward = counted
    state = prog.init_state(batch_for(prog))
    prog.infer(state, steps=10)
    prog.weight_grads(state)
    assert calls["e0"] == 1  # image -> h1: hoisted
    assert calls["e1"] > 1  # h1 -> h2: recomputed as h1 moves


def test_whole_step_under_torch_compile_gives_the_same_numbers():
    import torch._dynamo

    torch._dynamo.reset()
    text = M3 + "train: {inference: {steps: 4}, weights: {optimizer: {type: sgd, lr: 0.1}}}\n"
    eager, compiled = program(text), program(text)
    compiled.load_state_dict(eager.state_dict())
    step = compiled.step_fn("pc", compile=True, backend="aot_eager")
    for seed in range(3):
        batch = batch_for(eager, seed=seed)
        e1 = eager.pc_step(batch)
        e2 = step(batch)
        for n in e1:
            torch.testing.assert_close(e1[n], e2[n])
    for p, q in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.slow
def test_whole_step_under_inductor_gives_the_same_numbers():
    import torch._dynamo

    torch._dynamo.reset()
    text = M3 + "train: {inference: {steps: 4}, weights: {optimizer: {type: sgd, lr: 0.1}}}\n"
    eager, compiled = program(text), program(text)
    compiled.load_state_dict(eager.state_dict())
    step = compiled.step_fn("pc", compile=True)
    for seed in range(2):
        batch = batch_for(eager, seed=seed)
        eager.pc_step(batch)
        step(batch)
    for p, q in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(p, q)


def test_both_nonlinearity_forms_start_from_the_same_network():
    """mu = tanh(W x) on edges and mu = W tanh(x) on node values are the same forward
    function; with the init following the nonlinearity, they start equal."""
    from tests.conftest import SPECS

    progs = []
    for name in ("mnist-m2", "mnist-m2-wb"):
        torch.manual_seed(0)
        progs.append(compile_graph(pcgraph.build_graph(pcgraph.load_spec(SPECS / f"{name}.yaml")), device="cpu"))
    for p, q in zip(progs[0].parameters(), progs[1].parameters()):
        assert torch.equal(p, q)
    batch = {"image": torch.rand(5, 784), "label": torch.tensor([0, 1, 2, 3, 4])}
    torch.testing.assert_close(progs[0].loss_bp(batch), progs[1].loss_bp(batch))


SHIPPED = (
    sorted(SPECS.glob("*.yaml"))
    + sorted((SPECS.parent / "benchmarks").glob("*.yaml"))
    + sorted((SPECS.parent / "experiments").glob("*.yaml"))
)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_spec_runs_a_pc_and_a_bp_step(path):
    from pcgraph.train.bench import random_batch

    spec = pcgraph.load_spec(path, ["train.inference.steps=2"])
    energies = ["kl"] + ([] if "gaussian_meanvar" in path.read_text() else ["gaussian"])
    for energy in energies:
        torch.manual_seed(0)
        prog = compile_graph(pcgraph.build_graph(spec), energy=energy, device="cpu")
        batch = random_batch(prog, 2)
        terms = prog.pc_step(batch)
        assert all(torch.isfinite(t).all() for t in terms.values())
        terms = prog.bp_step(batch)
        assert all(torch.isfinite(t).all() for t in terms.values())


def test_to_float64_gives_the_float64_programs_numbers():
    """A program cast with .to(torch.float64) computes what the same weights compiled
    in float64 compute: states, energies and weight gradients."""
    graph = pcgraph.build_graph(pcgraph.loads_spec(M3, "<m3>"))
    a, b = compile_graph(graph, dtype="float32"), compile_graph(graph, dtype="float64")
    assert a.dtype == torch.float32
    b.load_state_dict({k: v.double() for k, v in a.state_dict().items()})
    a.to(torch.float64)
    assert a.dtype == torch.float64 and all(p.dtype == torch.float64 for p in a.parameters())
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch_for(a).items()}
    sa, sb = a.init_state(batch), b.init_state(batch)
    a.infer(sa, steps=3)
    b.infer(sb, steps=3)
    assert all(sa[n].dtype == torch.float64 for n in sa if sa[n].is_floating_point())
    for n in sa:
        torch.testing.assert_close(sa[n], sb[n], rtol=1e-12, atol=1e-12)
    ea, eb = a.weight_grads(sa), b.weight_grads(sb)
    for n in ea:
        torch.testing.assert_close(ea[n], eb[n], rtol=1e-12, atol=1e-12)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-12)
