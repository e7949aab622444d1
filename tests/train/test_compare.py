"""pcgraph compare: every method x seed from the same initial weights and data order."""

import json

import torch
from click.testing import CliRunner

import pcgraph
from pcgraph.cli import main
from pcgraph.train.compare import METHODS
from pcgraph.train.run import setup
from tests.tiny import TRAINED as SPEC


def test_methods_share_initial_weights_and_data_order(write):
    path = write(SPEC)
    trainers = [
        setup(pcgraph.load_spec(path, METHODS[m] + ["train.seed=4"]), progress=False) for m in ("bp", "pc-kl", "pc-f")
    ]
    first = trainers[0]
    for t in trainers[1:]:
        for p, q in zip(first.program.parameters(), t.program.parameters()):
            assert torch.equal(p, q)
        assert torch.equal(first._order(0), t._order(0))
        assert torch.equal(first._order(1), t._order(1))
    assert not torch.equal(first._order(0), first._order(1))


def test_compare_writes_json_table_and_curves(write, tmp_path):
    path = write(SPEC)
    out = tmp_path / "cmp"
    args = [
        "compare", str(path), "--methods", "bp,pc-f,pc-kl", "--seeds", "2", "--set", "train.epochs=2", "--out",
        str(out), "--quiet"
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    data = json.loads((out / "compare.json").read_text())
    test = [row for row in data["rows"] if row["split"] == "test"]
    assert {(row["method"], row["seed"]) for row in test} == {(m, s) for m in ("bp", "pc-f", "pc-kl") for s in (0, 1)}
    assert all("accuracy" in row and row["epoch"] == 2 for row in test)
    md = (out / "compare.md").read_text()
    for m in ("bp", "pc-f", "pc-kl"):
        assert f"| {m} | 2 | 2 |" in md
    assert "±" in md
    assert (out / "compare.png").stat().st_size > 1000
    # a second call finds the runs finished and only rewrites the summary
    before = (out / "bp-seed0" / "checkpoint.pt").stat().st_mtime_ns
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0
    assert (out / "bp-seed0" / "checkpoint.pt").stat().st_mtime_ns == before


def test_unknown_method_names_the_nearest(write):
    path = write(SPEC)
    r = CliRunner().invoke(main, ["compare", str(path), "--methods", "bp,pc-k1"])
    assert r.exit_code == 2 and "pc-k1" in r.output and "did you mean" in r.output


def test_a_diverging_run_is_recorded_and_the_others_go_on(write, tmp_path):
    path = write(SPEC)
    out = tmp_path / "cmp"
    r = CliRunner().invoke(
        main,
        [
            "compare", str(path), "--methods", "bp,pc-kl", "--set", "train.epochs=1", "--set",
            "train.inference.optimizer={type: sgd, lr: 1.0e+30}", "--set", "train.weights.gradient=equilibrium",
            "--out", str(out), "--quiet"
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((out / "compare.json").read_text())
    assert [f["method"] for f in data["failures"]] == ["pc-kl"]
    assert "diverged" in data["failures"][0]["error"]
    assert {row["method"] for row in data["rows"]} == {"bp"}
    assert "Failed runs" in (out / "compare.md").read_text()


def test_default_methods_leave_out_the_ones_the_spec_cannot_train(write, tmp_path):
    """A mean/variance node has no standard-PC form: without --methods, compare runs bp
    and pc-kl and says it left pc-f out; naming pc-f is an error before any training."""
    meanvar = SPEC.replace(
        "h: {shape: [16], family: gaussian}", "h: {shape: [16], family: gaussian_meanvar, prior: standard_normal}"
    )
    path = write(meanvar)
    out = tmp_path / "cmp"
    r = CliRunner().invoke(main, ["compare", str(path), "--set", "train.epochs=1", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "leaving out pc-f" in r.output
    data = json.loads((out / "compare.json").read_text())
    assert {row["method"] for row in data["rows"]} == {"bp", "pc-kl"}
    r = CliRunner().invoke(
        main, ["compare", str(path), "--methods", "bp,pc-f", "--out", str(tmp_path / "other"), "--quiet"]
    )
    assert r.exit_code == 2 and "leave pc-f out of --methods" in r.output
    assert not (tmp_path / "other").exists()
