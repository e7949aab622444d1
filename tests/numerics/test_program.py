"""The compiled program in float64: energies against independent code, forward
initialisation, inference, PC ~ BP, causality, and fast path == plain autograd."""


import pytest
import torch
import torch.nn.functional as F

from tests.numerics.graphs import ATTEND, DAG, GATED, M3, MIXED, TRANSFORMER, VAE, D, batch_for, program


def gaussian_dag(variance=1.0):
    return DAG.replace("TARGET", f"{{type: gaussian, variance: {variance}}}")


def linear(prog, edge, *xs):
    m = prog.edge_modules[edge]
    return torch.cat(xs, -1) @ m.weight.T + (m.bias if getattr(m, "bias", None) is not None else 0)


# ------------------------------------------------------------ loss_bp vs raw torch
def test_loss_bp_is_the_plain_network_loss_m3():
    prog = program(M3)
    batch = batch_for(prog, B=6)
    x, y = batch["image"], batch["label"]
    h1 = torch.tanh(linear(prog, "e0", x))
    h2 = torch.softmax(linear(prog, "e1", h1), -1)
    h3 = torch.tanh(linear(prog, "e2", h2))
    expected = F.cross_entropy(linear(prog, "e3", h3), y)
    torch.testing.assert_close(prog.loss_bp(batch), expected)
    state = prog.init_state(batch)
    torch.testing.assert_close(prog.energy(state), expected)


def test_loss_bp_is_the_negative_elbo_for_the_vae():
    prog = program(VAE)
    batch = batch_for(prog, B=5)
    x = batch["image"]
    torch.manual_seed(11)
    loss = prog.loss_bp(batch)
    torch.manual_seed(11)
    eps = torch.randn(5, 3, dtype=D)
    enc = F.hardtanh(linear(prog, "e0", x))
    stats = linear(prog, "e1", enc)
    u, logvar = stats[:, :3], stats[:, 3:]
    z = u + eps * torch.exp(0.5 * logvar)
    recon = torch.sigmoid(linear(prog, "e3", F.hardtanh(linear(prog, "e2", z))))
    kl = 0.5 * (torch.exp(logvar) + u**2 - 1 - logvar).sum(-1)
    expected = (0.5 * ((x - recon) ** 2).sum(-1) + kl).mean()
    torch.testing.assert_close(loss, expected)
    torch.manual_seed(11)
    state = prog.init_state(batch)
    torch.testing.assert_close(prog.energy(state), expected)


@pytest.mark.parametrize(
    "text", [gaussian_dag(), M3, VAE, TRANSFORMER, MIXED], ids=["dag", "m3", "vae", "transformer", "mixed"]
)
def test_forward_init_zero_latent_energy_and_energy_equals_bp_loss(text):
    prog = program(text)
    batch = batch_for(prog)
    torch.manual_seed(3)
    state = prog.init_state(batch)
    terms = prog.node_energies(state)
    for n, e in terms.items():
        if prog.nodes[n].role == "latent" and prog.nodes[n].prior is None:
            assert torch.all(e.abs() < 1e-12), n
    torch.manual_seed(3)
    torch.testing.assert_close(prog.energy(state), prog.loss_bp(batch))
    assert set(terms) == set(prog.energy_nodes)
    # node_energies sum to energy
    torch.testing.assert_close(torch.stack(list(terms.values())).sum(0).mean(), prog.energy(state))


# ------------------------------------------------------------ F_KL == F
def test_fkl_equals_f_on_all_gaussian_graphs():
    kl = program(gaussian_dag(), "kl")
    f = program(gaussian_dag(), "gaussian")
    f.load_state_dict(kl.state_dict())
    batch = batch_for(kl)
    s1, s2 = kl.init_state(batch, init="normal"), None
    s2 = s1.clone()
    # both equal the sum of squared prediction errors, written out for this DAG
    a, b = batch["a"], batch["b"]
    mu = {
        "h1": torch.tanh(linear(kl, "e0", a)),
        "h2": torch.tanh(linear(kl, "e1", b)),
        "h3": torch.tanh(linear(kl, "e2", s1["h1"], s1["h2"])) + linear(kl, "e3", a),
        "y1": linear(kl, "e4", s1["h3"]) + torch.tanh(linear(kl, "e5", s1["h1"])),
        "y2": torch.sigmoid(linear(kl, "e6", s1["h3"])),
    }
    expected = sum(0.5 * ((s1[n] - m) ** 2).sum(-1) for n, m in mu.items()).mean()
    torch.testing.assert_close(kl.energy(s1), expected)
    torch.testing.assert_close(f.energy(s2), expected)
    kl.infer(s1, steps=10)
    f.infer(s2, steps=10)
    for n in s1:
        torch.testing.assert_close(s1[n], s2[n])
    kl.weight_grads(s1)
    f.weight_grads(s2)
    for p, q in zip(kl.parameters(), f.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_categorical_energy_is_eq_10():
    prog = program(M3)
    batch = batch_for(prog)
    state = prog.init_state(batch, init="normal")
    mu = prog.mu(state)["h2"]
    p = torch.exp(state["h2"]) / torch.exp(state["h2"]).sum(-1, keepdim=True)
    q = torch.exp(mu) / torch.exp(mu).sum(-1, keepdim=True)
    torch.testing.assert_close(prog.node_energies(state)["h2"], (p * torch.log(p / q)).sum(-1))


def test_the_former_name_of_mu_warns_and_gives_the_same():
    prog = program(M3)
    state = prog.init_state(batch_for(prog), init="normal")
    with pytest.warns(DeprecationWarning, match="Program.mu"):
        old = prog.predictions(state)
    assert old.keys() == prog.mu(state).keys()
    for n, m in prog.mu(state).items():
        torch.testing.assert_close(old[n], m)


# ------------------------------------------------------------ inference
@pytest.mark.parametrize("schedule", ["sync", "sweep"])
@pytest.mark.parametrize(
    "text", [gaussian_dag(), M3, VAE, MIXED, TRANSFORMER], ids=["dag", "m3", "vae", "mixed", "transformer"]
)
def test_inference_lowers_the_energy_monotonically_and_keeps_clamps(text, schedule):
    prog = program(text)
    batch = batch_for(prog)
    state = prog.init_state(batch)
    clamped = {n: state[n].clone() for n in state.clamped}
    energies = [prog.energy(state).item()]
    for _ in range(15):
        prog.infer(state, steps=1, optimizer={"type": "sgd", "lr": 0.02}, schedule=schedule)
        energies.append(prog.energy(state).item())
    assert all(b <= a + 1e-12 for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] < energies[0]
    for n, v in clamped.items():
        assert torch.equal(state[n], v)


def test_pc_weight_gradients_match_bp_under_weak_output_precision():
    """Whittington & Bogacz (2017): at the inference equilibrium, with the output error
    small (target variance 1000), PC's weight gradients approximate backprop's."""
    prog = program(gaussian_dag(1000.0))
    batch = batch_for(prog, B=8)
    state = prog.init_state(batch)
    prog.infer(state, steps=400, optimizer={"type": "sgd", "lr": 0.2})
    prog.weight_grads(state)
    pc = [p.grad.clone() for p in prog.parameters()]
    prog.zero_grad()
    prog.loss_bp(batch).backward()
    bp = [p.grad.clone() for p in prog.parameters()]
    for a, b in zip(pc, bp):
        if b.norm() < 1e-14:
            continue
        cos = (a * b).sum() / (a.norm() * b.norm())
        assert cos > 0.999, cos
        assert abs(a.norm() / b.norm() - 1) < 0.02
    pcv = torch.cat([g.flatten() for g in pc])
    bpv = torch.cat([g.flatten() for g in bp])
    assert (pcv @ bpv) / (pcv.norm() * bpv.norm()) > 0.999


def test_transformer_stays_finite_and_causal():
    prog = program(TRANSFORMER)
    batch = batch_for(prog, B=3)
    state = prog.init_state(batch)
    prog.infer(state, steps=20, optimizer={"type": "sgd", "lr": 0.5})
    for n, v in state.items():
        assert torch.isfinite(v.double()).all(), n
    p = torch.softmax(state["attn"], -1)
    assert (p.triu(1) == 0).all()
    assert torch.isfinite(prog.energy(state))
    # the forward pass at position i ignores tokens after i
    pred = prog.predict(batch)["next"]
    changed = dict(batch)
    tokens = batch["tokens"].clone()
    tokens[:, 4:] = (tokens[:, 4:] + 1) % 11
    changed["tokens"] = tokens
    pred2 = prog.predict(changed)["next"]
    torch.testing.assert_close(pred[:, :4], pred2[:, :4])
    assert not torch.allclose(pred[:, 4:], pred2[:, 4:])


# ------------------------------------------------------------ fast path == plain path
# Adam divides by sqrt(v) + eps: where the plain path sees round-off (1e-17) instead of
# the exact zero the fast path knows structurally, a tiny eps would blow it up to lr.
OPTS = [
    {"type": "sgd", "lr": 0.05}, {"type": "sgd", "lr": 0.05, "momentum": 0.5}, {"type": "adam", "lr": 0.01, "eps": 1e-3}
]


@pytest.mark.parametrize(
    "text",
    [gaussian_dag(), M3, VAE, MIXED, TRANSFORMER, GATED, ATTEND],
    ids=["dag", "m3", "vae", "mixed", "transformer", "gated", "attend"],
)
@pytest.mark.parametrize("schedule", ["sync", "sweep"])
@pytest.mark.parametrize("opt", OPTS, ids=["sgd", "momentum", "adam"])
@pytest.mark.parametrize("init", ["forward", "normal"])
def test_fast_inference_equals_plain_autograd(text, schedule, opt, init):
    prog = program(text)
    batch = batch_for(prog)
    torch.manual_seed(5)
    a = prog.init_state(batch, init=init)
    b = a.clone()
    prog.infer(a, steps=6, optimizer=opt, schedule=schedule, fast=True)
    prog.infer(b, steps=6, optimizer=opt, schedule=schedule, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-9, atol=1e-10)
    e_fast = prog.weight_grads(a, fast=True)
    fast = [p.grad.clone() for p in prog.parameters()]
    e_plain = prog.weight_grads(b, fast=False)
    for g, p in zip(fast, prog.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-9, atol=1e-10)
    assert set(e_fast) == set(e_plain)
    for n in e_fast:
        torch.testing.assert_close(e_fast[n], e_plain[n], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("text", [gaussian_dag(), M3, MIXED], ids=["dag", "m3", "mixed"])
def test_fast_path_under_energy_f_equals_plain(text):
    if "gaussian_meanvar" in text:
        text = text.replace(
            "gaussian_meanvar, prior: {type: gaussian, mean: 0.5, variance: 2.0}", "gaussian, prior: standard_normal"
        )
    prog = program(text, energy="gaussian")
    batch = batch_for(prog)
    a = prog.init_state(batch)
    b = a.clone()
    prog.infer(a, steps=5, optimizer={"type": "sgd", "lr": 0.05}, fast=True)
    prog.infer(b, steps=5, optimizer={"type": "sgd", "lr": 0.05}, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("text", [gaussian_dag(), M3, MIXED], ids=["dag", "m3", "mixed"])
def test_incremental_schedule_fast_equals_plain(text):
    sgd = ["train.weights.optimizer={type: sgd, lr: 0.05}"]  # Adam would amplify round-off
    fast = program(text, overrides=sgd)
    plain = program(text, overrides=sgd)
    plain.load_state_dict(fast.state_dict())
    batch = batch_for(fast)
    a = fast.init_state(batch)
    b = plain.init_state(batch, noise=a.noise)
    fast.infer(a, steps=4, optimizer={"type": "sgd", "lr": 0.05}, schedule="incremental", fast=True)
    plain.infer(b, steps=4, optimizer={"type": "sgd", "lr": 0.05}, schedule="incremental", fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-8, atol=1e-10)
    for p, q in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


def test_fast_path_sees_states_changed_from_outside():
    prog = program(gaussian_dag())
    batch = batch_for(prog)
    a = prog.init_state(batch)
    a["h1"] = a["h1"] + 0.3  # assignment
    a["h2"].add_(0.2)  # in-place edit
    b = a.clone()
    prog.infer(a, steps=3, fast=True)
    prog.infer(b, steps=3, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n])


def test_state_learning_rate_does_not_depend_on_batch_size():
    prog = program(M3)
    big = batch_for(prog, B=8)
    s_big = prog.init_state(big)
    prog.infer(s_big, steps=5)
    small = {k: v[:2] for k, v in big.items()}
    s_small = prog.init_state(small)
    prog.infer(s_small, steps=5)
    for n in s_small:
        torch.testing.assert_close(s_small[n], s_big[n][:2])


def test_predict_gives_probabilities_for_categorical_targets():
    prog = program(M3)
    batch = batch_for(prog)
    out = prog.predict({"image": batch["image"]})
    assert set(out) == {"label"}
    torch.testing.assert_close(out["label"].sum(-1), torch.ones(4, dtype=D))


def test_tied_parameters_are_one_tensor_and_get_both_gradients():
    prog = program(TRANSFORMER)
    assert prog.edge_modules["embed"].weight is prog.edge_modules["e9"].weight
    names = [n for n, _ in prog.named_parameters()]
    assert sum("weight" in n and ("embed" in n or "e9" in n) for n in names) == 1
    # the same network untied, both edges holding a copy of the tied weight
    untied = program(TRANSFORMER.replace(", share: embed", ""))
    sd = prog.state_dict()
    sd["edge_modules.e9.weight"] = sd["edge_modules.embed.weight"].clone()
    untied.load_state_dict(sd)
    batch = batch_for(prog)
    s1 = prog.init_state(batch)
    prog.infer(s1, steps=5)
    s2 = untied.init_state(batch)
    untied.infer(s2, steps=5)
    prog.weight_grads(s1)
    untied.weight_grads(s2)
    expected = untied.edge_modules["embed"].weight.grad + untied.edge_modules["e9"].weight.grad
    torch.testing.assert_close(prog.edge_modules["embed"].weight.grad, expected)


def test_forward_with_a_fixed_latent_decodes_it():
    prog = program(VAE)
    batch = batch_for(prog, B=3)
    z = torch.randn(3, 6, dtype=D)
    eps = {"z": torch.zeros(3, 3, dtype=D)}
    state = prog.forward({"image": batch["image"]}, fixed={"z": z}, noise=eps)
    assert torch.equal(state["z"], z)
    dec = F.hardtanh(linear(prog, "e2", z[:, :3]))
    torch.testing.assert_close(state["recon"], torch.sigmoid(linear(prog, "e3", dec)))


CYCLIC = """
name: cyc
nodes:
  x: {shape: [5], role: input, bind: x}
  h1: {shape: [4], family: gaussian}
  h2: {shape: [4], family: categorical}
  y: {shape: [3], family: gaussian, role: target, bind: y}
edges:
  - {from: x, to: h1, activation: tanh}
  - {from: h2, to: h1}
  - {from: h1, to: h2}
  - {from: h2, to: y}
train: {topology: cyclic, inference: {init: normal}}
"""


@pytest.mark.parametrize("schedule", ["sync", "sweep"])
def test_cyclic_graph_fast_equals_plain_and_lowers_the_energy(schedule):
    prog = program(CYCLIC)
    batch = {"x": torch.rand(3, 5, dtype=D), "y": torch.rand(3, 3, dtype=D)}
    torch.manual_seed(2)
    a = prog.init_state(batch, init="normal")
    b = a.clone()
    e0 = prog.energy(a).item()
    prog.infer(a, steps=5, optimizer={"type": "sgd", "lr": 0.05}, schedule=schedule, fast=True)
    prog.infer(b, steps=5, optimizer={"type": "sgd", "lr": 0.05}, schedule=schedule, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n])
    assert prog.energy(a).item() < e0
    from pcgraph.core.errors import CompileError

    with pytest.raises(CompileError):
        prog.init_state(batch)  # no forward pass on a cycle


def test_an_activation_after_a_view_leaves_the_source_state_alone():
    """flatten returns a view of its input: a tanh after it must not be applied in
    place, or the fast path would overwrite the source node's state."""
    text = """
name: view
nodes:
  x: {shape: [2, 3], role: input, bind: x}
  a: {shape: [2, 3], family: gaussian}
  b: {shape: [6], family: gaussian}
  y: {shape: [2], family: gaussian, role: target, bind: y}
edges:
  - {from: x, to: a}
  - {from: a, to: b, transform: flatten, activation: tanh}
  - {from: b, to: y}
train: {inference: {steps: 3, optimizer: {type: sgd, lr: 0.1}}}
"""
    fast, plain = program(text), program(text)
    batch = batch_for(fast)
    s1, s2 = fast.init_state(batch), plain.init_state(batch)
    fast.infer(s1)
    plain.infer(s2, fast=False)
    for n in s1:
        torch.testing.assert_close(s1[n], s2[n])
