"""--log tensorboard: the run's metrics and per-node energies as TensorBoard scalars,
and one sentence naming the extra when the package is missing."""

import json
import math
import sys

import pytest
from click.testing import CliRunner

from pcgraph.cli import main
from tests.tiny import QUICK as TINY

SPEC = TINY.replace("epochs: 1", "epochs: 2")


def scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_train_writes_metrics_and_per_node_energies(write, tmp_path):
    pytest.importorskip("tensorboard")
    p = write(SPEC, "tiny.yaml")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(p), "--out", str(out), "--log", "tensorboard", "--quiet"])
    assert r.exit_code == 0, r.output
    got = scalars(out / "tensorboard")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for row in rows:  # every metric of metrics.jsonl, at its epoch
        for k, v in row.items():
            if k not in ("epoch", "split"):
                assert (row["epoch"], pytest.approx(v, rel=1e-6)) in got[f"{row['split']}/{k}"]
    assert [s for s, _ in got["batch/energy"]] == list(range(1, 11))  # 5 batches x 2 epochs, per step
    for epoch in (1, 2):
        row = next(r for r in rows if r["epoch"] == epoch and r["split"] == "train")
        nodes = {n: dict(got[f"energy/{n}"])[epoch] for n in ("h", "y")}
        # the mean over batches of the summed node energies is the epoch's train energy
        assert math.isclose(sum(nodes.values()), row["energy"], rel_tol=1e-5)
        steps = [v for s, v in got["batch/energy"] if (epoch - 1) * 5 < s <= epoch * 5]
        assert math.isclose(sum(steps) / 5, row["energy"], rel_tol=1e-5)
    assert "energy/x" not in got  # an input node carries no energy


def test_compare_writes_one_log_per_run(write, tmp_path):
    pytest.importorskip("tensorboard")
    p = write(SPEC.replace("epochs: 2", "epochs: 1"), "tiny.yaml")
    out = tmp_path / "cmp"
    r = CliRunner().invoke(
        main, ["compare", str(p), "--methods", "bp,pc-kl", "--out", str(out), "--log", "tensorboard", "--quiet"]
    )
    assert r.exit_code == 0, r.output
    bp, pc = scalars(out / "bp-seed0" / "tensorboard"), scalars(out / "pc-kl-seed0" / "tensorboard")
    assert "batch/loss" in bp and "train/train_loss" in bp and "loss/y" in bp and "test/accuracy" in bp
    assert "batch/energy" in pc and "train/energy" in pc and {"energy/h", "energy/y"} <= set(pc)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_missing_tensorboard_is_one_sentence_and_writes_nothing(write, tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    p = write(SPEC, "tiny.yaml")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, [command, str(p), "--out", str(out), "--log", "tensorboard", "--quiet"])
    assert r.exit_code == 2
    assert r.output.strip() == (
        '--log tensorboard: TensorBoard logging needs the tensorboard package, which is not installed: pip install '
        '"pcgraph[tensorboard]"'
    )
    assert not out.exists()
