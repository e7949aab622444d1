"""diagnose: energies over inference, the error front, energy rises, PC vs BP gradients."""

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from pcgraph.cli import main
from pcgraph.compile import compile_graph
from pcgraph.graph import build_graph
from pcgraph.spec import loads_spec
from pcgraph.train.diagnose import diagnose, inference_trace
from tests.conftest import SPECS


def chain_spec(
    depth=3, *, out_variance=1.0, out="gaussian", activation="tanh", steps=16, lr=0.1, momentum=0.0, dtype="float64"
):
    """x -> h1 -> ... -> h{depth} -> y, synchronous inference."""
    hidden = [f"h{k}" for k in range(1, depth + 1)]
    fam = f"{{type: gaussian, variance: {out_variance}}}" if out == "gaussian" else "categorical"
    nodes = "\n".join(f"  {h}: {{shape: [5], family: gaussian}}" for h in hidden)
    chain = ["x", *hidden, "y"]
    edges = "\n".join(
        f"  - {{from: {a}, to: {b}, activation: {activation if b != 'y' else 'identity'}}}"
        for a, b in zip(chain, chain[1:])
    )
    text = f"""name: chain
nodes:
  x: {{shape: [4], role: input, bind: x}}
{nodes}
  y: {{shape: [3], family: {fam}, role: target, bind: y}}
edges:
{edges}
train:
  dtype: {dtype}
  device: cpu
  inference: {{steps: {steps}, schedule: sync, init: forward, optimizer: {{type: sgd, lr: {lr}, momentum: {momentum}}}}}
  weights: {{gradient: equilibrium}}
"""
    return loads_spec(text, "chain.yaml")


def program(spec, seed=0):
    torch.manual_seed(seed)
    return compile_graph(build_graph(spec))


def batch(n=16, out="gaussian", seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = (
        torch.randn(n, 3, generator=g, dtype=torch.float64)
        if out == "gaussian"
        else torch.randint(0, 3, (n,), generator=g)
    )
    return {"x": x, "y": y}


def test_pc_matches_bp_with_weak_output_precision_and_converged_inference():
    # Whittington & Bogacz (2017): at the equilibrium of inference, with small output
    # errors, PC's weight gradients equal backprop's
    # (the output variance 1000 makes its error small; 800 steps of lr 0.1 converge)
    prog = program(chain_spec(3, out_variance=1000.0, steps=800, lr=0.1))
    r = diagnose(prog, batch())
    assert len(r["edges"]) == 8  # 4 edges, weight and bias each
    for e in r["edges"]:
        assert e["cos"] > 0.99, e
        assert 0.97 < e["norm_ratio"] < 1.03, e
    assert r["energy_rises"] == 0


def test_unconverged_inference_leaves_the_first_weights_without_gradient():
    prog = program(chain_spec(3, out_variance=100.0, steps=2))
    r = diagnose(prog, batch())
    first = [e for e in r["edges"] if e["where"] == "x → h1"]
    # after 2 steps the error has reached h2 but not h1: no PC gradient for x -> h1
    assert first and all(e["pc_norm"] == 0.0 and e["cos"] is None and e["norm_ratio"] == 0.0 for e in first)
    assert [n["front_step"] for n in r["nodes"]] == [None, 2, 1, 0]


def test_error_front_moves_back_one_hop_per_synchronous_step():
    # By hand: the forward initialisation gives every hidden node zero error, so at
    # step 1 only the target's error is non-zero and only its parent h4 (1 hop) moves.
    # A node's gradient is non-zero only once it or a child has error, and a child
    # has error only after it moved; so the node k hops from the target first moves at
    # step k, and its energy (own error) is exactly zero before step k.
    depth = 4
    prog = program(chain_spec(depth, steps=6, lr=0.3))
    r = diagnose(prog, batch())
    front = {n["node"]: n["front_step"] for n in r["nodes"]}
    hops = {n["node"]: n["hops"] for n in r["nodes"]}
    assert front == {"h1": 4, "h2": 3, "h3": 2, "h4": 1, "y": 0}
    assert hops == front
    for k in range(1, depth + 1):
        e = r["energies"][f"h{k}"]
        assert all(v == 0.0 for v in e[: depth + 1 - k]) and e[depth + 1 - k] > 0


def test_a_prior_is_an_error_source_and_the_front_counts_moved_predictions():
    # x -> h1 -> z (prior) -> h2 -> h3 -> y, sync. By hand: y and z carry error at the
    # forward state (0). Step 1: h3 moves (y's error) and z moves (its prior), which
    # moves h2's prediction (1). z's own error is zero until z has moved, so its parent
    # h1 first moves at step 2.
    text = """name: prior
nodes:
  x: {shape: [4], role: input, bind: x}
  h1: {shape: [5], family: gaussian}
  z: {shape: [5], family: gaussian, prior: standard_normal}
  h2: {shape: [5], family: gaussian}
  h3: {shape: [5], family: gaussian}
  y: {shape: [3], family: gaussian, role: target, bind: y}
edges:
  - {from: x, to: h1, activation: tanh}
  - {from: h1, to: z, activation: tanh}
  - {from: z, to: h2, activation: tanh}
  - {from: h2, to: h3, activation: tanh}
  - {from: h3, to: y}
train:
  dtype: float64
  device: cpu
  inference: {steps: 4, schedule: sync, init: forward, optimizer: {type: sgd, lr: 0.1}}
"""
    r = diagnose(program(loads_spec(text, "prior.yaml")), batch())
    assert {n["node"]: n["front_step"] for n in r["nodes"]} == {"h1": 2, "z": 0, "h2": 1, "h3": 1, "y": 0}
    assert r["energies"]["h2"][0] == 0.0 and r["energies"]["h2"][1] > 0  # its error appears with the moved prediction
    assert any("cos_prior_part" in e for e in r["edges"])


def test_energies_after_zero_steps_are_the_forward_states():
    for out in ("gaussian", "categorical"):
        prog = program(chain_spec(2, out=out, out_variance=4.0, steps=0))
        b = batch(out=out)
        r = diagnose(prog, b)
        # independently: the forward pass by hand, hidden errors zero, the target's
        # energy 1/2 |y - mu|^2 / 4 or the cross-entropy of its logits
        with torch.no_grad():
            h = b["x"]
            for name in ("x->h1", "h1->h2"):
                m = prog.edge_modules[[e.name for e in prog.edges if f"{e.sources[0]}->{e.target}" == name][0]]
                h = torch.tanh(h @ m.weight.T + m.bias)
            m = prog.edge_modules[[e.name for e in prog.edges if e.target == "y"][0]]
            mu = h @ m.weight.T + m.bias
            want = 0.5 * ((b["y"] - mu) ** 2).sum(1).mean() / 4.0 if out == "gaussian" else F.cross_entropy(mu, b["y"])
        before = {n["node"]: n["energy_before"] for n in r["nodes"]}
        after = {n["node"]: n["energy_after"] for n in r["nodes"]}
        assert before == after
        assert before["h1"] == 0.0 and before["h2"] == 0.0
        assert before["y"] == pytest.approx(float(want), rel=1e-10)
        assert r["total"] == [pytest.approx(float(want), rel=1e-10)] and r["energy_rises"] == 0


def test_energy_rises_are_counted():
    # linear x -> h -> y: the energy is a quadratic in h with Hessian I + W'W/s2, whose
    # eigenvalues lie in [1, 1 + |W|^2], so steps of lr 5 multiply every component of
    # the distance to the minimum by |1 - 5 lambda| >= 4 and the energy rises at every
    # step, while lr 0.05 (< 2 / (1 + |W|^2) for these small weights) only lowers it
    up = diagnose(program(chain_spec(1, activation="identity", steps=5, lr=5.0)), batch())
    assert up["energy_rises"] == 5 and up["energy_rise_steps"] == [1, 2, 3, 4, 5]
    small = program(chain_spec(1, activation="identity", steps=5, lr=0.05))
    w = small.edge_modules[[e.name for e in small.edges if e.target == "y"][0]].weight.detach()
    assert 0.05 * (1 + float(torch.linalg.matrix_norm(w, 2)) ** 2) < 2
    down = diagnose(small, batch())
    assert down["energy_rises"] == 0 and down["total"][-1] < down["total"][0]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_trace_is_the_energy_after_t_steps_of_one_inference(momentum):
    # the definition: entry t is the energy after infer(steps=t) from the initial
    # state (with momentum, t single steps are not t steps of one inference)
    prog = program(chain_spec(2, steps=5, lr=0.2, momentum=momentum))
    b = batch()
    tr = inference_trace(prog, b)
    assert tr["replayed"] == (momentum > 0)
    for t in range(6):
        s = prog.init_state(b)
        prog.infer(s, steps=t)
        with torch.no_grad():
            got = {n: float(v.mean()) for n, v in prog.node_energies(s).items()}
        for n, v in got.items():
            assert tr["energies"][n][t] == pytest.approx(v, rel=1e-9, abs=1e-15)


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_cli_on_digits_writes_report_and_plot(tmp_path):
    out = tmp_path / "d"
    r = run(
        "diagnose", SPECS / "digits-m2.yaml", "--steps", "4", "--batch-size", "16", "--set", "train.device=cpu",
        "--out", out
    )
    assert r.exit_code == 0, r.output
    assert "cos(PC, BP)" in r.output and "| h1 | 3 |" in r.output
    data = json.loads((out / "diagnose.json").read_text())
    assert data["steps"] == 4 and data["batch_size"] == 16 and data["weights"] == "fresh"
    assert [n["node"] for n in data["nodes"]] == ["h1", "h2", "h3", "label"]
    assert all(len(v) == 5 for v in data["energies"].values())
    assert (out / "diagnose.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    j = run(
        "diagnose", SPECS / "digits-m2.yaml", "--steps", "0", "--batch-size", "8", "--json", "--set", "train.device=cpu"
    )
    assert j.exit_code == 0, j.output
    assert json.loads(j.output)["total_before"] == json.loads(j.output)["total_after"]


def test_cli_run_dir_uses_its_checkpoint_and_errors_are_one_line(tmp_path):
    from pcgraph.train.run import train_run

    overrides = ["train.epochs=1", "data.options.subset=64", "train.device=cpu"]
    train_run(SPECS / "digits-m2.yaml", overrides, out=tmp_path / "run", progress=False)
    r = run("diagnose", tmp_path / "run", "--steps", "2", "--batch-size", "8", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["weights"] == "checkpoint"
    bad = run("diagnose", tmp_path / "run", "--split", "valid")
    assert bad.exit_code == 2 and bad.output.strip() == "split: no split 'valid' (have: train, test)"
    (tmp_path / "run" / "checkpoint.pt").rename(tmp_path / "kept.pt")
    missing = run("diagnose", tmp_path / "run")
    assert missing.exit_code == 2 and "has no checkpoint.pt" in missing.output and "Traceback" not in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    not_run = run("diagnose", tmp_path)
    assert not_run.exit_code == 2 and f"run: {tmp_path} is not a run directory" in not_run.output
    assert (tmp_path / "kept.pt").exists() and (tmp_path / "run" / "metrics.jsonl").exists()  # nothing lost
