"""What a new user meets first with runs: resume refusing a SPEC and saying where it
continues, extending a finished run, damaged checkpoints in one sentence, curves that
read after one epoch, epoch seconds without the warm-up."""

import json

import pytest
from click.testing import CliRunner

from pcgraph.cli import main
from tests.tiny import QUICK as TINY


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))




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
        f"--resume {out}: a resumed run keeps the spec saved in {out / 'spec.resolved.yaml'}, so {p} would be "
        f"ignored: drop it and change values with --set"
    ]
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_extending_a_finished_run_says_where_it_continues_and_trains_on(finished):
    p, out = finished
    r = run("train", "--resume", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert (
        f"{out} has already trained its 1 epoch; to train further extend it: pcgraph train --resume {out} --set "
        f"train.epochs=2"
        in r.output
    )
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
        f"--set train.epochs=1: train.epochs: the run in {out} has already trained 2 epochs, more than 1; to extend "
        f"it give more, e.g. --set train.epochs=3"
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
    assert (
        r.output.strip() == f"{tmp_path}: not a run directory: it has no spec.resolved.yaml (pcgraph train writes one)"
    )


def test_resume_with_another_method_names_the_set_that_changed_it(finished):
    p, out = finished
    r = run("train", "--resume", out, "--set", "train.method=bp")
    assert r.exit_code == 2
    assert r.output.startswith(
        f"--set train.method=bp: the run in {out} was trained with method pc, energy kl, which a resumed run keeps"
    )


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
            time.sleep(3.0)  # a one-time cost, as a first step's allocation and kernel selection
        calls.append(1)
        return step(batch)

    trainer.step_fn = slow_first
    summary = trainer.fit()
    train_rows = [r for r in trainer.history if r["split"] == "train"]
    assert summary["warmup_seconds"] >= 3.0
    assert all(r["seconds"] < 3.0 for r in train_rows), train_rows
    assert len(calls) == 10
