"""Stream runs end to end on small data: the same weights as epochs where they must be,
errors recomputed from the checkpoint by hand, exact resume mid-stream, init_from,
and the located errors of bad stream options."""

import json
import statistics

import pytest
import torch
from click.testing import CliRunner

import pcgraph
from pcgraph.cli import main
from pcgraph.train.run import setup, train_run
from tests.tiny import STREAM as DIGITS
from tests.tiny import TRAINED as SYNTHETIC


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def strip(rs):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]


def fit(path, overrides=()):
    """(trainer, summary) of an in-memory run (no run directory)."""
    trainer = setup(pcgraph.load_spec(path, list(overrides)), progress=False)
    return trainer, trainer.fit()


def evaluations(trainer):
    return [r for r in trainer.history if r["split"] == "test"]


def test_a_stream_without_drift_tasks_or_subset_trains_as_epochs_do(write):
    """Synthetic data, 128 examples in batches of 32: 4 iterations a pass. Two passes
    as a stream give the weights and test metrics of two epochs."""
    path = write(SYNTHETIC.replace("n_train: 512", "n_train: 128"))
    epochs, _ = fit(path, ["train.epochs=2"])
    stream, summary = fit(path, ["data.stream={iterations: 8, eval_every: 4}"])
    for p, q in zip(epochs.program.parameters(), stream.program.parameters()):
        assert torch.equal(p, q)
    a, b = evaluations(epochs), evaluations(stream)
    assert [r["iteration"] for r in b] == [4, 8]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [1 - r["accuracy"] for r in a] == [r["error"] for r in b]
    assert summary["iterations"] == 8 and summary["evaluations"] == 2


def _by_hand(program, plan, data, steps):
    """The test error after ``steps`` iterations, from the weights with plain torch:
    argmax of W2 sigmoid(W1 x) against the labels as the drift has mapped them."""
    w1, w2 = (m.weight.detach().double() for m in program.edge_modules.values())
    x = data["test"]["image"].reshape(-1, 64).double()
    pred = (torch.sigmoid(x @ w1.T) @ w2.T).argmax(-1)
    label = plan.table(steps - 1)[data["test"]["label"]]
    return (pred != label).double().mean().item()


def test_drift_errors_and_their_mean_recomputed_from_the_weights(write, tmp_path):
    trainer, summary, out = train_run(write(DIGITS), out=tmp_path / "run", progress=False)
    test = [r for r in rows(out) if r["split"] == "test"]
    assert [r["iteration"] for r in test] == [8, 16, 23]
    for r in test:
        assert r["error"] == pytest.approx(1 - r["accuracy"])
    assert summary["mean_error"] == pytest.approx(statistics.fmean(r["error"] for r in test))
    assert summary["final_error"] == test[-1]["error"]
    assert json.loads((out / "summary.json").read_text())["mean_error"] == summary["mean_error"]
    assert test[-1]["error"] == pytest.approx(_by_hand(trainer.program, trainer.plan, trainer.data, 23), abs=1e-12)
    assert not torch.equal(trainer.plan.table(22), torch.arange(10))  # the last period is permuted


class StopAtIteration(pcgraph.Callback):
    def __init__(self, iteration):
        self.at = iteration

    def on_batch_end(self, trainer, epoch, batch, n_batches, value):
        if trainer.step == self.at:
            trainer._stop = "SIGINT"


def test_resume_mid_stream_after_a_signal_is_exact(write, tmp_path):
    from pcgraph.train.trainer import Interrupted

    spec = pcgraph.load_spec(write(DIGITS))
    full = setup(spec, progress=False)
    full.fit()
    out = tmp_path / "run"
    out.mkdir()
    part = setup(spec, progress=False, out=out)
    part.callbacks.append(StopAtIteration(11))  # inside the second stretch and the third drift period
    with pytest.raises(Interrupted, match="iteration 11/23"):
        part.fit()
    resumed = setup(spec, progress=False, out=out, resume=True)
    assert resumed.step == 11
    resumed.fit()
    for p, q in zip(full.program.parameters(), resumed.program.parameters()):
        assert torch.equal(p, q)
    assert strip(full.history) == strip(resumed.history)


def test_tasks_log_the_error_of_every_task_begun(write):
    text = DIGITS.replace("drift: {every: 5, classes: [5, 6, 7, 8, 9]}", "tasks: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]")
    trainer, summary = fit(write(text))
    test = evaluations(trainer)
    assert trainer.plan.bounds == [0, 11, 23]
    assert "error.task0" in test[0] and "error.task1" not in test[0]  # after 8 steps: task 0 only
    assert "error.task0" in test[1] and "error.task1" in test[1]
    # the error over all classes is the two tasks' errors weighted by their test examples
    y = trainer.data["test"]["label"]
    n0, n1 = int((y < 5).sum()), int((y >= 5).sum())
    assert test[-1]["error"] == pytest.approx((n0 * test[-1]["error.task0"] + n1 * test[-1]["error.task1"]) / (n0 + n1))


def test_a_set_removes_the_drift(write, tmp_path):
    spec = pcgraph.load_spec(write(DIGITS), ["data.stream.drift=null"])
    assert spec.data.stream.drift is None and "drift" not in json.dumps(spec.to_data())
    assert setup(spec, progress=False).plan.table(22) is None


def test_init_from_starts_from_the_runs_weights_with_a_fresh_optimiser(write, tmp_path):
    path = write(DIGITS)
    train_run(path, ["data.stream.drift=null", "train.method=bp"], out=tmp_path / "pre", progress=False)
    saved = torch.load(tmp_path / "pre" / "checkpoint.pt", weights_only=True)["model"]
    overrides = [f"train.init_from={tmp_path / 'pre'}", "train.weights.optimizer={type: adam, lr: 0.01}"]
    spec = pcgraph.load_spec(path, overrides)
    trainer = setup(spec, progress=False)
    for k, v in trainer.program.state_dict().items():
        assert torch.equal(v, saved[k])
    assert not trainer.optimizer.state_dict()["state"]  # no moments carried over
    fresh = setup(pcgraph.load_spec(path), progress=False)
    assert not torch.equal(next(fresh.program.parameters()), next(trainer.program.parameters()))


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("train.init_from=nowhere", "no run directory nowhere"),
        ("train.init_from={tmp}", "holds no trained weights (no checkpoint.pt)"),
        ("train.init_from={tmp}/pre", "edge 'e0' parameter 'weight' is [12, 64] there, [7, 64] here"),
    ],
)
def test_init_from_problems_are_one_located_line(write, tmp_path, setting, expected):
    path = write(DIGITS)
    if "pre" in setting:
        train_run(path, ["data.stream.iterations=2"], out=tmp_path / "pre", progress=False)
    setting = setting.format(tmp=tmp_path)
    new = str(tmp_path / "new")
    args = ["train", str(path), "--set", setting, "--set", "nodes.h.shape=[7]", "--out", new, "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0].startswith(f"--set {setting}: train.init_from: ") and expected in lines[0], r.output
    assert not (tmp_path / "new").exists()


BAD = [
    (
        "drift: {every: 5, classes: [5, 6, 7, 8, 9]}",
        "drift: {every: 5, classes: [5, 6, 12]}",
        "9:39: data.stream.drift.classes.2: dataset 'digits' has no class 12 (its classes: 0-9)",
    ),
    ("drift: {every: 5,", "drift: {every: 0,", "9:20: data.stream.drift.every: must be > 0, got 0"),
    ("iterations: 23", "iterations: -23", "6:17: data.stream.iterations: must be > 0, got -23"),
    (
        "drift: {every: 5, classes: [5, 6, 7, 8, 9]}",
        "tasks: [[0, 1], [1, 2]]",
        "9:22: data.stream.tasks.1.0: class 1 is in task 0 and task 1: tasks must not share classes",
    ),
    (
        "    drift:",
        "    tasks: [[0], [1]]\n    drift:",
        "9:5: data.stream.tasks: a stream takes drift or tasks, not both",
    ),
    ("dataset: digits", "dataset: synthetic", "9:5: data.stream.drift: dataset 'synthetic' has no classes"),
]


@pytest.mark.parametrize(
    "old, new, expected", BAD, ids=["class", "every", "iterations", "overlap", "both", "unlabelled"]
)
def test_bad_stream_options_are_located_errors(write, old, new, expected):
    path = write(DIGITS.replace(old, new))
    r = CliRunner().invoke(main, ["validate", str(path)])
    assert r.exit_code == 2
    assert f"{path}:{expected}" in r.output, r.output
    assert "Traceback" not in r.output
