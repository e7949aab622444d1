"""End-to-end training on small synthetic data: every method learns, resume is exact,
run directories hold what they promise, and failures keep what the user had."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

import pcgraph
from pcgraph.cli import main
from pcgraph.core.errors import PcgraphError
from pcgraph.train.compare import METHODS as COMPARE_METHODS
from pcgraph.train.run import setup, train_run
from tests.tiny import TRAINED as SPEC, digits_loop


METHODS = {m: COMPARE_METHODS[m] for m in ("bp", "pc-kl", "pc-f")}


@pytest.fixture
def spec_file(write):
    return write(SPEC, "tiny.yaml")


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_learns(method, spec_file, tmp_path):
    out = tmp_path / "run"
    trainer, summary, _ = train_run(spec_file, METHODS[method], out=out, progress=False)
    r = rows(out)
    test = [x for x in r if x["split"] == "test"]
    train = [x for x in r if x["split"] == "train"]
    assert [x["epoch"] for x in test] == [1, 2, 3, 4]
    assert test[-1]["loss"] < test[0]["loss"]
    assert test[-1]["accuracy"] > 0.6  # 4 classes: chance is about 0.25
    for x in train:
        assert {"epoch", "split", "loss", "accuracy", "seconds"} <= set(x)
        assert ("energy" in x) == (method != "bp")
    assert summary["final"]["test"]["accuracy"] == test[-1]["accuracy"]
    assert json.loads((out / "summary.json").read_text())["method"] == ("bp" if method == "bp" else "pc")
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "spec.resolved.yaml").exists()
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 4


def test_resume_after_an_epoch_equals_an_uninterrupted_run(spec_file, tmp_path):
    full, _, _ = train_run(spec_file, ["train.epochs=3"], out=tmp_path / "full", progress=False)
    train_run(spec_file, ["train.epochs=1"], out=tmp_path / "part", progress=False)
    resumed, _, _ = train_run(resume=str(tmp_path / "part"), overrides=["train.epochs=3"], progress=False)
    for p, q in zip(full.program.parameters(), resumed.program.parameters()):
        assert torch.equal(p, q)

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]

    assert strip(rows(tmp_path / "full")) == strip(rows(tmp_path / "part"))


class StopAt(pcgraph.Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, trainer, epoch, batch, n_batches, value):
        if (epoch, batch) == self.at:
            trainer._stop = "SIGINT"


def test_resume_mid_epoch_after_a_signal_is_exact(spec_file, tmp_path):
    from pcgraph.train.trainer import Interrupted

    spec = pcgraph.load_spec(spec_file, ["train.epochs=2", "train.method=pc"])
    full = setup(spec, progress=False)
    full.fit()
    out = tmp_path / "run"
    out.mkdir()
    part = setup(spec, progress=False, out=out)
    part.callbacks.append(StopAt(2, 5))
    with pytest.raises(Interrupted):
        part.fit()
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["batch"]) == (1, 6)
    resumed = setup(spec, progress=False, out=out, resume=True)
    resumed.fit()
    for p, q in zip(full.program.parameters(), resumed.program.parameters()):
        assert torch.equal(p, q)
    assert [r["loss"] for r in full.history] == [r["loss"] for r in resumed.history]


def test_cli_train_and_eval(spec_file, tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(spec_file), "--set", "train.epochs=2", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "run directory" in r.output
    r = CliRunner().invoke(main, ["eval", str(out)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    last = [x for x in rows(out) if x["split"] == "test"][-1]
    assert math.isclose(result["accuracy"], last["accuracy"]) and math.isclose(result["loss"], last["loss"])
    assert json.loads((out / "eval-test.json").read_text())["loss"] == result["loss"]


def test_unknown_override_exits_2_naming_the_key(spec_file):
    r = CliRunner().invoke(main, ["train", str(spec_file), "--set", "train.inferense.steps=3"])
    assert r.exit_code == 2
    assert "inferense" in r.output and "did you mean 'inference'" in r.output


def test_wrong_type_override_is_a_clear_error(spec_file):
    r = CliRunner().invoke(main, ["train", str(spec_file), "--set", "train.epochs=many"])
    assert r.exit_code == 2
    assert "--set train.epochs=many: train.epochs: input should be a valid integer" in r.output


def test_data_that_does_not_fit_names_field_and_node(spec_file, tmp_path):
    spec = pcgraph.load_spec(spec_file)
    data = {s: {"x": torch.rand(10, 5), "y": torch.randint(0, 4, (10,))} for s in ("train", "test")}
    with pytest.raises(PcgraphError) as info:
        setup(spec, data=data, progress=False)
    assert "data field 'x' has per-sample shape [5], node 'x' has shape [8]" in str(info.value)


def test_missing_dataset_is_one_line_naming_the_fetch_command(write, tmp_path):
    p = write(
        SPEC.replace(
            "{dataset: synthetic, batch_size: 32, options: {n_train: 512, n_test: 256, seed: 3}}", "{dataset: mnist}"
        )
        .replace("bind: x", "bind: image")
        .replace("bind: y", "bind: label")
        .replace("[8]", "[784]")
    )
    r = CliRunner().invoke(
        main, ["train", str(p), "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]
    )
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pcgraph data fetch mnist" in lines[0]
    assert not (tmp_path / "run").exists()


def test_an_existing_run_directory_is_never_overwritten(spec_file, tmp_path):
    out = tmp_path / "run"
    train_run(spec_file, ["train.epochs=1"], out=out, progress=False)
    before = (out / "checkpoint.pt").read_bytes()
    r = CliRunner().invoke(main, ["train", str(spec_file), "--out", str(out)])
    assert r.exit_code == 2 and "--resume" in r.output
    assert (out / "checkpoint.pt").read_bytes() == before


def test_divergence_names_the_node_and_keeps_the_last_checkpoint(spec_file, tmp_path):
    out = tmp_path / "run"
    train_run(spec_file, ["train.epochs=1"], out=out, progress=False)
    before = (out / "checkpoint.pt").read_bytes()
    r = CliRunner().invoke(
        main,
        [
            "train", "--resume", str(out), "--set", "train.epochs=2", "--set",
            "train.inference.optimizer={type: sgd, lr: 1.0e+30}", "--set", "train.weights.gradient=equilibrium",
            "--quiet"
        ],
    )
    assert r.exit_code == 2, r.output
    assert "diverged" in r.output and ("node 'h'" in r.output or "node 'y'" in r.output)
    assert "checkpoint" in r.output
    assert (out / "checkpoint.pt").read_bytes() == before


def test_python_api_trainer_with_callbacks(spec_file):
    spec = pcgraph.load_spec(spec_file, ["train.epochs=2"])
    graph = pcgraph.build_graph(spec)
    torch.manual_seed(0)
    program = pcgraph.compile_graph(graph)
    data = pcgraph.load_data(spec.data, graph)
    seen = []

    class Log(pcgraph.Callback):
        def on_epoch_end(self, trainer, epoch, rows):
            seen.append((epoch, [r["split"] for r in rows]))

    trainer = pcgraph.Trainer(program, spec.train, data, callbacks=[Log()], progress=False)
    summary = trainer.fit()
    assert seen == [(1, ["train", "test"]), (2, ["train", "test"])]
    assert trainer.evaluate("test")["accuracy"] == summary["final"]["test"]["accuracy"]


def test_test_loss_is_cross_entropy_for_every_energy(spec_file):
    """Losses compare across methods: a categorical target is scored by its
    cross-entropy even for a model trained with the standard-PC energy."""
    spec = pcgraph.load_spec(spec_file, ["train.energy=gaussian", "train.epochs=1"])
    trainer = setup(spec, progress=False)
    trainer.fit()
    p = trainer.program
    data = trainer.data["test"]
    logits = p.evaluate_batch(data)[1]["y"]
    expected = torch.nn.functional.cross_entropy(logits, data["y"]).item()
    assert math.isclose(trainer.evaluate("test")["loss"], expected, rel_tol=1e-5)


def test_progress_turns_into_plain_lines_off_a_terminal():
    import io

    from pcgraph.train.progress import Progress

    stream = io.StringIO()
    p = Progress(stream=stream, every=0.0)
    p.start_epoch(1, 3, n_batches=4)
    for b in range(4):
        p.update(b, "energy", 0.5)
    p.end_epoch()
    p.message("epoch 1/3  test: accuracy 0.9")
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.strip().splitlines()
    assert lines[0].startswith("epoch 1/3 batch 1/4 energy 0.5") and "batch/s eta" in lines[0]
    assert lines[-1] == "epoch 1/3  test: accuracy 0.9"


CYCLIC = """\
name: cyc
data: {dataset: synthetic, batch_size: 32, options: {n_train: 384, n_test: 128, seed: 1}}
nodes:
  x: {shape: [6], role: input, bind: x}
  h1: {shape: [8], family: gaussian}
  h2: {shape: [8], family: gaussian}
  y: {shape: [3], family: categorical, role: target, bind: y}
edges:
  - {from: x, to: h1, activation: tanh}
  - {from: h2, to: h1, activation: tanh}
  - {from: h1, to: h2, activation: tanh}
  - {from: h2, to: y}
train:
  topology: cyclic
  epochs: 3
  inference: {steps: 10, init: zeros}
  weights: {optimizer: {type: adam, lr: 0.02}}
"""


def test_a_cyclic_graph_trains_by_inference(write, tmp_path):
    path = write(CYCLIC, "cyc.yaml")
    trainer, summary, out = train_run(path, out=tmp_path / "run", progress=False)
    test = [r for r in rows(out) if r["split"] == "test"]
    assert test[-1]["accuracy"] > 0.5  # 3 classes
    r = CliRunner().invoke(main, ["train", str(path), "--set", "train.method=bp"])
    assert r.exit_code == 2 and "train.method: backprop needs a forward pass" in r.output


DIGITS_LOOP = digits_loop(
    "train:\n  topology: cyclic\n  epochs: 3\n  inference: {steps: 8, init: zeros}\n"
    "  weights: {optimizer: {type: adam, lr: 0.003}}"
)


def test_the_default_rule_trains_a_cyclic_digits_classifier(write, tmp_path):
    # inference starts from zero, so the states are not relaxed after T steps; a small
    # nudge would divide what is left of the free errors by beta, and the classifier
    # learnt little (best test accuracy 0.26 in 3 epochs, seed 0; 0.38 with seed 1);
    # the default there is the energy as written, nudge 1 (0.59; 0.57)
    trainer, summary, out = train_run(write(DIGITS_LOOP, "loop.yaml"), out=tmp_path / "run", progress=False)
    assert trainer.program.train_cfg.weights.nudge == 1.0
    assert max(r["accuracy"] for r in rows(out) if r["split"] == "test") > 0.45  # chance: 0.1


def test_curves_are_drawn_first_and_last_not_every_epoch(spec_file, tmp_path, monkeypatch):
    """Drawing curves.png takes a good fraction of a second: a run of fast epochs
    draws it after the first epoch and at the end, not after each of its epochs."""
    import time

    from pcgraph.train import run as run_module

    drawn = []

    def slow_plot(series, path, title=""):
        time.sleep(0.3)
        drawn.append(len(next(iter(series.values()))))
        path.write_bytes(b"png")

    monkeypatch.setattr(run_module, "plot_curves", slow_plot)
    train_run(spec_file, ["train.method=bp", "train.epochs=6"], out=tmp_path / "run", progress=False)
    assert len(drawn) == 2, drawn
    assert drawn[-1] == max(drawn)  # the last drawing holds every epoch's rows
