"""What a new user meets first: edge names in --set, validate reporting every problem,
overrides located at the override, resume and checkpoint messages, epochs 0, method and
energy errors naming the option that fixes them."""

import json

import pytest
from click.testing import CliRunner

from pcgraph.cli import main
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
    program = pcgraph.compile(graph)
    trainer = pcgraph.Trainer(program, spec.train, load_dataset(spec.data, graph), progress=False)
    trainer.fit()

    def numbers(rows):
        return [{k: v for k, v in r.items() if k not in ("seconds", "warmup_seconds")} for r in rows]

    assert numbers(trainer.history) == numbers(cli_rows)
    # and a different seed gives different numbers (the comparison can tell)
    spec2 = pcgraph.load_spec(p, [*over, "train.seed=4"])
    t2 = pcgraph.Trainer(pcgraph.compile(pcgraph.build_graph(spec2)), spec2.train, trainer.data, progress=False)
    t2.fit()
    assert numbers(t2.history) != numbers(cli_rows)


# ------------------------------------------------------------------ resume and checkpoints

TINY = """\
name: tiny
data: {dataset: synthetic, batch_size: 32, options: {n_train: 160, n_test: 64, seed: 1}}
nodes:
  x: {shape: [8], role: input, bind: x}
  h: {shape: [8], family: gaussian}
  y: {shape: [4], family: categorical, role: target, bind: y}
edges:
  - {from: x, to: h, activation: tanh}
  - {from: h, to: y}
train: {epochs: 1, inference: {steps: 4}}
"""


@pytest.fixture
def finished(write, tmp_path):
    """A run directory holding a finished one-epoch run."""
    p = write(TINY, "tiny.yaml")
    out = tmp_path / "run"
    r = run("train", p, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    return p, out


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_a_spec_is_refused_in_one_sentence_and_changes_nothing(finished):
    p, out = finished
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    r = run("train", p, "--resume", out, "--set", "train.epochs=2")
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"--resume {out}: a resumed run keeps the spec saved in {out / 'spec.resolved.yaml'}, so {p} would be ignored: drop it and change values with --set"
    ]
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_extending_a_finished_run_says_where_it_continues_and_trains_on(finished):
    p, out = finished
    r = run("train", "--resume", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert f"{out} has already trained its 1 epoch; to train further extend it: pcgraph train --resume {out} --set train.epochs=2" in r.output
    r = run("train", "--resume", out, "--set", "train.epochs=3", "--quiet")
    assert r.exit_code == 0, r.output
    assert f"resuming {out} at epoch 2/3, batch 1/5 (1 epoch done)" in r.output
    assert [(x["epoch"], x["split"]) for x in rows(out)] == [(e, s) for e in (1, 2, 3) for s in ("train", "test")]
    assert "epochs: 3" in (out / "spec.resolved.yaml").read_text()


def test_resume_mid_epoch_names_epoch_and_batch(write, tmp_path):
    import pcgraph
    from pcgraph.train.run import open_run
    from pcgraph.train.trainer import Interrupted

    class StopAfter(pcgraph.Callback):
        def on_batch_end(self, trainer, epoch, batch, n_batches, value):
            if (epoch, batch) == (2, 2):
                trainer._stop = "SIGTERM"

    p = write(TINY, "tiny.yaml")
    out = tmp_path / "run"
    out.mkdir()
    trainer = open_run(pcgraph.load_spec(p, ["train.epochs=2"]), out, resume=False, progress=False)
    trainer.callbacks.append(StopAfter())
    with pytest.raises(Interrupted):
        trainer.fit()
    r = run("train", "--resume", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert f"resuming {out} at epoch 2/2, batch 4/5 (1 epoch and 3 batches done)" in r.output


def test_resuming_with_fewer_epochs_than_trained_is_refused_before_writing(finished):
    p, out = finished
    r = run("train", "--resume", out, "--set", "train.epochs=2", "--quiet")
    assert r.exit_code == 0, r.output
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    r = run("train", "--resume", out, "--set", "train.epochs=1")
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"--set train.epochs=1: train.epochs: the run in {out} has already trained 2 epochs, more than 1; to extend it give more, e.g. --set train.epochs=3"
    )
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


@pytest.mark.parametrize("damage", ["empty", "truncated", "text", "missing"])
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_damaged_checkpoint_is_one_clear_sentence(finished, damage, command):
    p, out = finished
    ck = out / "checkpoint.pt"
    if damage == "empty":
        ck.write_bytes(b"")
    elif damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:300])
    elif damage == "text":
        ck.write_text("not a checkpoint\n")
    else:
        ck.unlink()
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    r = run(*(["eval", out] if command == "eval" else ["train", "--resume", out, "--set", "train.epochs=2"]))
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    line = lines[0]
    assert len(line.replace(str(out), "runs/x")) <= 160  # two lines of a terminal at most
    assert line.startswith(f"{ck}: ")
    assert "\\n" not in line and "resume:" not in line and "Traceback" not in r.output
    what = {"empty": "is empty", "truncated": "is damaged", "text": "is damaged", "missing": "no checkpoint"}[damage]
    assert what in line and f"pcgraph train {out / 'spec.resolved.yaml'} --out NEW_DIR" in line
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # nothing the user had is lost


def test_eval_of_an_unknown_split_names_the_option(finished):
    p, out = finished
    r = run("eval", out, "--split", "valid")
    assert r.exit_code == 2
    assert r.output.strip() == "--split valid: the data has no split 'valid' (it has: train, test)"


def test_eval_of_a_folder_that_is_no_run(tmp_path):
    r = run("eval", tmp_path)
    assert r.exit_code == 2
    assert r.output.strip() == f"{tmp_path}: not a run directory: it has no spec.resolved.yaml (pcgraph train writes one)"


def test_resume_with_another_method_names_the_set_that_changed_it(finished):
    p, out = finished
    r = run("train", "--resume", out, "--set", "train.method=bp")
    assert r.exit_code == 2
    assert r.output.startswith(f"--set train.method=bp: the run in {out} was trained with method pc, energy kl, which a resumed run keeps")


# ------------------------------------------------------------------ epochs 0


def test_zero_epochs_is_rejected_by_validation(write):
    p = write(TINY.replace("epochs: 1", "epochs: 0"), "tiny.yaml")
    r = run("validate", p)
    assert r.exit_code == 2
    assert r.output.strip() == f"{p}:10:17: train.epochs: must be > 0, got 0"
    r = run("train", p, "--set", "train.epochs=0")
    assert r.exit_code == 2 and r.output.strip() == "--set train.epochs=0: train.epochs: must be > 0, got 0"


# ------------------------------------------------------------------ method / energy errors name the option

MEANVAR = TINY.replace("h: {shape: [8], family: gaussian}", "h: {shape: [8], family: gaussian_meanvar, prior: standard_normal}")


def test_energy_errors_name_the_option_that_fixes_them(write, tmp_path):
    p = write(MEANVAR, "vae.yaml")
    r = run("train", p, "--set", "train.energy=gaussian", "--out", tmp_path / "run")
    assert r.exit_code == 2
    assert r.output.strip().endswith("no standard-PC form: it needs train.energy kl, not gaussian (--set train.energy=kl)")
    r = run("compile", p, "--energy", "gaussian")
    assert r.exit_code == 2
    assert r.output.strip() == "--energy gaussian: nodes.h.family: family 'gaussian_meanvar' on node 'h' has no standard-PC form: use --energy kl"
    r = run("compare", p, "--methods", "bp,pc-f", "--out", tmp_path / "cmp")
    assert r.exit_code == 2
    assert r.output.strip() == (
        "--methods bp,pc-f: pc-f trains with the standard energy F, which family 'gaussian_meanvar' on node 'h' does not have; leave pc-f out of --methods"
    )
    assert not (tmp_path / "cmp").exists() and not (tmp_path / "run").exists()


def test_method_errors_on_a_cyclic_graph_name_the_set(write):
    cyclic = TINY.replace("  - {from: h, to: y}", "  - {from: h, to: y}\n  - {from: y, to: h}").replace(
        "train: {epochs: 1,", "train: {epochs: 1, topology: cyclic, method: bp,"
    )
    p = write(cyclic, "cyc.yaml")
    r = run("validate", p)
    assert r.exit_code == 2
    assert "train.method: backprop needs a forward pass, which a cyclic graph has not: use method pc (--set train.method=pc)" in r.output
    assert "(--set train.inference.init=zeros)" in r.output


# ------------------------------------------------------------------ compare.png after one epoch, warm-up apart


def test_curves_after_one_epoch_show_distinct_markers_on_whole_epochs(tmp_path):
    from pcgraph.train.plots import draw_curves, plot_curves

    one = [{"epoch": 1, "split": "train", "loss": 0.5, "energy": 0.3}, {"epoch": 1, "split": "test", "loss": 0.6}]
    fig = draw_curves({"bp": one, "pc-kl": [dict(r, loss=r["loss"] + 0.1) for r in one]})
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 6  # loss: 2 methods x 2 splits; energy: 2 methods, train only
    for line in lines:
        assert len(line.get_xdata()) == 1
        assert line.get_marker() not in (None, "", "None", " ") and line.get_markersize() >= 5
    markers = {(line.get_marker(), line.get_markerfacecolor() == "none") for line in lines}
    assert len(markers) == 2  # train and test tell apart with one point each
    loss_ax = next(ax for ax in fig.axes if ax.get_title() == "loss")
    assert list(loss_ax.get_xticks()) == [1]
    lo, hi = loss_ax.get_xlim()
    assert lo < 1 < hi and hi - lo <= 2
    plot_curves({"bp": one}, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_epoch_seconds_leave_out_the_one_time_warm_up(write):
    import time

    import pcgraph
    from pcgraph.train.run import setup

    p = write(TINY.replace("method: pc", ""), "tiny.yaml")
    trainer = setup(pcgraph.load_spec(p, ["train.method=bp", "train.epochs=2"]), progress=False)
    step, calls = trainer.step_fn, []

    def slow_first(batch):
        if not calls:
            time.sleep(0.5)  # a one-time cost, as a first step's allocation and kernel selection
        calls.append(1)
        return step(batch)

    trainer.step_fn = slow_first
    summary = trainer.fit()
    train_rows = [r for r in trainer.history if r["split"] == "train"]
    assert summary["warmup_seconds"] >= 0.5
    assert all(r["seconds"] < 0.5 for r in train_rows), train_rows
    assert len(calls) == 10
