"""The parts of benchmarks/peers/ that run without the peers' environments: the table
writer, the summary over rounds, the error measure of the same-model check, and
pcgraph's export of weights, batch and reference numbers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"peers_{name}", PEERS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


run = _load("run")
check = _load("check_same_model")
side = _load("pcgraph_side")


def _m(fw, method, ms, first, mb, r):
    return {"framework": fw, "method": method, "step_ms": ms, "first_call_s": first, "peak_mb": mb, "round": r}


def test_summary_takes_medians_over_rounds_and_the_ratio_to_the_fastest_bp():
    ms = [
        _m("pcgraph", "bp", 10.0, 1.0, 100.0, 0), _m("pcgraph", "bp", 14.0, 3.0, 110.0, 1),
        _m("pcx", "bp", 8.0, 2.0, 50.0, 0), _m("pcx", "bp", 9.0, 2.0, 60.0, 1),
        _m("pcx", "pc", 34.0, 9.0, 70.0, 0), _m("pcx", "pc", 51.0, 11.0, 90.0, 1),
    ]
    rows = {(r["framework"], r["method"]): r for r in run.summarise(ms)}
    assert rows["pcgraph", "bp"]["step_ms"] == 12.0 and rows["pcgraph", "bp"]["first_call_s"] == 2.0
    assert rows["pcx", "bp"]["step_ms"] == 8.5  # the fastest BP step: ratio 1
    assert rows["pcx", "bp"]["ratio_to_fastest_bp"] == 1.0
    assert rows["pcx", "pc"]["ratio_to_fastest_bp"] == pytest.approx(42.5 / 8.5)
    assert rows["pcgraph", "bp"]["peak_mb"] == 105.0 and rows["pcx", "pc"]["rounds"] == 2
    ordered = [(r["framework"], r["method"]) for r in run.summarise(list(reversed(ms)))]
    assert ordered == [("pcgraph", "bp"), ("pcx", "bp"), ("pcx", "pc")]  # pcgraph first, BP before PC


def test_versions_keep_each_peer_with_its_own_jax():
    ms = [
        {"framework": "pcgraph", "versions": {"torch": "2.13.0"}},
        {"framework": "pcx", "versions": {"jax": "0.4.38", "jaxlib": "0.4.38", "pcx": "0.6.3"}},
        {"framework": "fabricpc", "versions": {"jax": "0.7.2", "jaxlib": "0.7.2", "fabricpc": "0.6.0"}},
    ]
    assert run.collect_versions(ms) == {
        "torch": "2.13.0", "pcx": "0.6.3 (jax 0.4.38, jaxlib 0.4.38)", "fabricpc": "0.6.0 (jax 0.7.2, jaxlib 0.7.2)"
    }


def test_table_writer_formats_every_row_and_the_facts_of_the_run():
    result = {
        "note": "provisional, loaded machine",
        "mode": "quick",
        "date": "2026-01-01 00:00 UTC",
        "machine": {"cpu": "Test CPU 9000", "cpus": 8, "threads": 2, "load_before": "1.0", "load_after": "2.0"},
        "versions": {"jax": "0.4.38", "torch": "2.13.0"},
        "rounds": 2,
        "steps": 5,
        "warmup": 2,
        "rows": [
            {
                "framework": "pcgraph", "method": "bp", "step_ms": 10.0, "ratio_to_fastest_bp": 1.0,
                "first_call_s": 1.234, "peak_mb": 100.04, "meaning": "backprop"
            },
            {
                "framework": "pcx", "method": "pc", "step_ms": 43.219, "ratio_to_fastest_bp": 4.3219,
                "first_call_s": 20.0, "peak_mb": None, "meaning": ""
            },
        ],
        "equivalence": ["PASS pcx energy_T8: relative error 1.00e-15"],
    }
    text = run.format_table(result)
    lines = text.splitlines()
    assert lines[0] == "**provisional, loaded machine**"
    assert "| pcgraph | bp | 10.00 | 1.00 | 1.23 | 100.0 |" in lines
    assert "| pcx | pc | 43.22 | 4.32 | 20.00 | – |" in lines  # a missing figure prints as a dash
    assert sum(line.startswith("|") for line in lines) == 2 + 2  # header, rule, two rows
    assert "Test CPU 9000" in text and "pinned to 2" in text and "jax 0.4.38, torch 2.13.0" in text
    assert "PASS pcx energy_T8: relative error 1.00e-15" in lines
    assert "* pcgraph / bp: backprop" in lines and not any(line.startswith("* pcx / pc") for line in lines)


def test_relative_error_and_verdicts():
    want = np.array([1.0, -4.0, 2.0])
    assert check.rel_err(want, want) == 0.0
    assert check.rel_err(want + np.array([0.0, 0.0, 0.02]), want) == pytest.approx(0.005)  # 0.02 / max|want| = 4
    v = dict((k, ok) for k, _, ok in check.verdicts({"a": want * (1 + 1e-6), "b": want * 1.01}, {"a": want, "b": want}))
    assert v == {"a": True, "b": False}
    with pytest.raises(ValueError):
        check.rel_err(np.zeros(2), np.zeros(3))


def test_weights_round_trip_through_npz_into_another_program(tmp_path):
    _, prog = side.build_program("float64")
    weights = side.weights_of(prog)
    assert [w.shape for w, _ in weights] == [(512, 784), (512, 512), (512, 512), (10, 512)]
    side.save_npz(tmp_path / "w.npz", weights, {})
    loaded = side.load_npz_weights(np.load(tmp_path / "w.npz"))
    _, other = side.build_program("float64")
    with torch.no_grad():
        for p in other.parameters():
            p.normal_()  # other weights than the first program's
    assert not np.allclose(side.weights_of(other)[0][0], weights[0][0])
    side.load_weights(other, loaded)
    for (w, b), (w2, b2) in zip(weights, side.weights_of(other)):
        assert np.array_equal(w, w2) and np.array_equal(b, b2)
    batch = {"image": torch.rand(4, 784, dtype=torch.float64), "label": torch.tensor([0, 3, 9, 1])}
    assert torch.equal(prog.energy(prog.init_state(batch)), other.energy(other.init_state(batch)))
    with pytest.raises(ValueError):
        side.load_weights(other, loaded[:3])


def test_exported_reference_agrees_with_a_numpy_forward_pass(tmp_path):
    """At the forward initialisation only the label carries error, so the exported
    energy equals the cross-entropy of a plain numpy forward pass with the exported
    weights and batch; the gradients have the weights' shapes."""
    side.export_reference(tmp_path / "ref.npz")
    d = np.load(tmp_path / "ref.npz")
    h = d["x"].astype(np.float64)
    for k in range(3):
        h = np.tanh(h @ d[f"W{k}"].T + d[f"b{k}"])
    logits = h @ d["W3"].T + d["b3"]
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    ce = -logp[np.arange(len(d["y"])), d["y"]].mean()
    assert float(d["energy0"]) == pytest.approx(ce, rel=1e-10)
    assert float(d["energy"]) < float(d["energy0"])  # T SGD steps on the states lower the energy
    for k in range(4):
        assert d[f"gW{k}"].shape == d[f"W{k}"].shape and d[f"gb{k}"].shape == d[f"b{k}"].shape
