"""What a new user meets first with specs: edge names in --set, validate reporting every
problem, overrides located at the override, train.seed alike in the CLI and Python,
epochs 0, method and energy errors naming the option that fixes them (runs, resume and
checkpoints: test_rough_edges_runs.py)."""

import json

import pytest
from click.testing import CliRunner

from pcgraph.cli import main
from tests.tiny import QUICK as TINY
from tests.conftest import SPECS

DIGITS = SPECS / "digits-m2.yaml"


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


# ------------------------------------------------------------------ --set edges.e0


def test_set_addresses_an_edge_by_the_default_name_inspect_shows():
    shown = json.loads(run("inspect", DIGITS, "--format", "json").output)
    assert [e["name"] for e in shown["edges"]] == ["e0", "e1", "e2", "e3"]
    by_name = json.loads(run("inspect", DIGITS, "--format", "json", "--set", "edges.e2.activation=relu").output)
    by_index = json.loads(run("inspect", DIGITS, "--format", "json", "--set", "edges.2.activation=relu").output)
    assert [e["activation"] for e in by_name["edges"]] == ["tanh", "tanh", "relu", "identity"]
    assert by_name["edges"] == by_index["edges"]


def test_default_name_of_an_unnamed_edge_beside_given_names(write):
    p = write(
        "name: n\nnodes:\n  x: {shape: [2], role: input, bind: x}\n  h: {shape: [3], family: gaussian}\n"
        "  y: {shape: [2], family: gaussian, role: target, bind: y}\n"
        "edges:\n  - {from: x, to: h, name: enc}\n  - {from: h, to: y}\n"
    )
    r = run("inspect", p, "--format", "json", "--set", "edges.e1.activation=relu", "--set", "edges.enc.activation=tanh")
    assert r.exit_code == 0, r.output
    assert [(e["name"], e["activation"]) for e in json.loads(r.output)["edges"]] == [("enc", "tanh"), ("e1", "relu")]
    r = run("inspect", p, "--set", "edges.e0.activation=relu")  # edge 0 is called enc, not e0
    assert r.exit_code == 2
    assert "--set edges.e0.activation=relu: edges.e0: no item 'e0'" in r.output


# ------------------------------------------------------------------ --set located at the override


@pytest.mark.parametrize(
    "override, path",
    [
        ("train.epochs=abc", "train.epochs"),
        ("nodes.h1.shape=[0]", "nodes.h1.shape.0"),
        ("train.inference={steps: abc}", "train.inference.steps"),
        ("edges.e1.activation=tanhh", "edges.1.activation"),
    ],
)
def test_invalid_set_value_is_reported_at_the_override(override, path):
    r = run("inspect", DIGITS, "--set", override)
    assert r.exit_code == 2
    assert r.output.startswith(f"--set {override}: {path}: "), r.output
    assert "digits-m2.yaml" not in r.output


# ------------------------------------------------------------------ validate: every problem in one run

TWO_PROBLEMS = """\
name: bad
nodes:
  x: {shape: [4], role: input, bind: image}
  h: {shape: [3], family: gaussian}
  y: {shape: [2], family: gaussian, role: target, bind: label}
edges:
  - {from: x, to: h, transform: linaer}
  - {from: h2, to: y}
"""


def test_validate_reports_a_misspelt_transform_and_an_unknown_node_together(write):
    p = write(TWO_PROBLEMS)
    r = run("validate", p)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert lines == [
        f"{p}:7:33: edges.0.transform: unknown transform 'linaer' (did you mean 'linear'?); known: "
        + lines[0].split("known: ")[1],
        f"{p}:8:12: edges.1.from: unknown node 'h2' (did you mean 'h'?)",
    ]


MANY = """\
name: Bad_Name
nodes:
  x: {shape: [4], role: input, bind: image}
  h: {shape: [3, 0], family: gaussian}
  g: {shape: [3], family: gausian}
  k: {family: gaussian}
  y: {shape: [2], family: gaussian, role: target, bind: label}
  lonely: {shape: [3], family: gaussian}
edges:
  - {from: x, to: h}
  - {from: h, to: g}
  - {from: g, to: y, activation: tanhh}
  - {from: k, to: y}
  - {to: g}
  - {from: y, to: nowhere}
  - {from: x, to: x}
train: {epochs: -1}
"""


def test_validate_collects_schema_and_graph_problems_without_follow_on_noise(write):
    p = write(MANY)
    r = run("validate", p)
    assert r.exit_code == 2
    got = [line.split(": ", 2)[1] for line in r.output.strip().splitlines()]
    # schema problems, then the graph problems of the parts that validated, in file order
    assert got == [
        "name",
        "nodes.h.shape.1",
        "nodes.g.family",
        "nodes.k",
        "nodes.lonely",  # an orphan: a graph problem of a node that validated
        "edges.2.activation",
        "edges.4",  # no 'from'
        "edges.5.to",  # unknown node 'nowhere'
        "edges.6.to",  # x is an input: a graph problem of an edge that validated
        "train.epochs",
    ]
    assert "'nowhere' (nodes: x, h, g, k, y, lonely)" in r.output


def test_validate_does_not_blame_an_edge_for_sharing_with_one_left_out(write):
    p = write(
        "name: s\nnodes:\n  x: {shape: [4], role: input, bind: x}\n  y: {shape: [4], family: gaussian, role: target, "
        "bind: y}\n"
        "edges:\n  - {to: y, name: gone}\n  - {from: x, to: y, share: gone}\n  - {from: x, to: y, share: nothere}\n"
    )
    r = run("validate", p)
    assert r.exit_code == 2
    assert [line.split(": ", 2)[1] for line in r.output.strip().splitlines()] == ["edges.0", "edges.2.share"]


def test_validate_still_reports_a_clean_file_as_ok_beside_a_bad_one(write):
    p = write(TWO_PROBLEMS)
    r = run("validate", DIGITS, p)
    assert r.exit_code == 2
    assert f"{DIGITS}: ok (digits-m2: 5 nodes, 4 edges" in r.output
    assert r.output.count("edges.") == 2


def test_validate_yaml_error_alone(write):
    p = write("name: x\nnodes: {a: [\n")
    r = run("validate", p)
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1


# ------------------------------------------------------------------ train.seed: CLI and Python alike

SAMPLING = """\
name: seeded
data: {dataset: digits, batch_size: 32}
nodes:
  image: {shape: [64], role: input, bind: image}
  z: {shape: [8], family: gaussian_meanvar, prior: standard_normal}
  label: {shape: [10], family: categorical, role: target, bind: label}
edges:
  - {from: image, to: z, activation: tanh}
  - {from: z, to: label}
train:
  seed: 3
  epochs: 1
  max_batches: 4
  inference: {steps: 4}
"""


@pytest.mark.parametrize("method", ["pc"])
def test_python_api_honours_train_seed_exactly_as_the_cli(write, tmp_path, method):
    import torch

    import pcgraph
    from pcgraph.data import load_dataset

    p = write(SAMPLING)
    over = [f"train.method={method}"]
    r = run("train", p, "--set", over[0], "--out", tmp_path / "cli", "--quiet")
    assert r.exit_code == 0, r.output
    cli_rows = [json.loads(line) for line in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]

    torch.manual_seed(12345)  # whatever the caller's generator holds must not matter
    torch.rand(7)
    spec = pcgraph.load_spec(p, over)
    graph = pcgraph.build_graph(spec)
    program = pcgraph.compile_graph(graph)
    trainer = pcgraph.Trainer(program, spec.train, load_dataset(spec.data, graph), progress=False)
    trainer.fit()

    def numbers(rows):
        return [{k: v for k, v in r.items() if k not in ("seconds", "warmup_seconds")} for r in rows]

    assert numbers(trainer.history) == numbers(cli_rows)
    r = run("eval", tmp_path / "cli")  # and evaluation after training agrees too (sampling nodes included)
    assert r.exit_code == 0, r.output
    assert {k: v for k, v in json.loads(r.output).items() if k not in ("run", "split", "epoch")} == trainer.evaluate(
        "test"
    )
    # and a different seed gives different numbers (the comparison can tell)
    spec2 = pcgraph.load_spec(p, [*over, "train.seed=4"])
    t2 = pcgraph.Trainer(pcgraph.compile_graph(pcgraph.build_graph(spec2)), spec2.train, trainer.data, progress=False)
    t2.fit()
    assert numbers(t2.history) != numbers(cli_rows)


# ------------------------------------------------------------------ epochs 0


def test_zero_epochs_is_rejected_by_validation(write):
    p = write(TINY.replace("epochs: 1", "epochs: 0"), "tiny.yaml")
    r = run("validate", p)
    assert r.exit_code == 2
    assert r.output.strip() == f"{p}:10:17: train.epochs: must be > 0, got 0"
    r = run("train", p, "--set", "train.epochs=0")
    assert r.exit_code == 2 and r.output.strip() == "--set train.epochs=0: train.epochs: must be > 0, got 0"


# ------------------------------------------------------------------ method / energy errors name the option

MEANVAR = TINY.replace(
    "h: {shape: [8], family: gaussian}", "h: {shape: [8], family: gaussian_meanvar, prior: standard_normal}"
)


def test_energy_errors_name_the_option_that_fixes_them(write, tmp_path):
    p = write(MEANVAR, "vae.yaml")
    r = run("train", p, "--set", "train.energy=gaussian", "--out", tmp_path / "run")
    assert r.exit_code == 2
    assert r.output.strip().endswith(
        "no standard-PC form: it needs train.energy kl, not gaussian (--set train.energy=kl)"
    )
    r = run("compile", p, "--energy", "gaussian")
    assert r.exit_code == 2
    assert (
        r.output.strip()
        ==
            "--energy gaussian: nodes.h.family: family 'gaussian_meanvar' on node 'h' has no standard-PC form: use "
            "--energy kl"
    )
    r = run("compare", p, "--methods", "bp,pc-f", "--out", tmp_path / "cmp")
    assert r.exit_code == 2
    assert r.output.strip() == (
        "--methods bp,pc-f: pc-f trains with the standard energy F, which family 'gaussian_meanvar' on node 'h' does "
        "not have; leave pc-f out of --methods"
    )
    assert not (tmp_path / "cmp").exists() and not (tmp_path / "run").exists()


def test_method_errors_on_a_cyclic_graph_name_the_set(write):
    cyclic = TINY.replace("  - {from: h, to: y}", "  - {from: h, to: y}\n  - {from: y, to: h}").replace(
        "train: {epochs: 1,", "train: {epochs: 1, topology: cyclic, method: bp,"
    )
    p = write(cyclic, "cyc.yaml")
    r = run("validate", p)
    assert r.exit_code == 2
    assert (
        "train.method: backprop needs a forward pass, which a cyclic graph has not: use method pc (--set "
        "train.method=pc)"
        in r.output
    )
    assert "(--set train.inference.init=zeros)" in r.output
