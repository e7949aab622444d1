"""compare --grid: every method at every point and seed, each method's best point by
the mean over seeds of the selection metric, and what the grid refuses."""

import json
import statistics

import pytest
from click.testing import CliRunner

from pcgraph.cli import main
from pcgraph.core.errors import TrainError
from pcgraph.train.grid import best_points, parse_grid, point_tags
from tests.tiny import STREAM as DIGITS


def test_parse_grid_reads_yaml_values_and_their_product():
    g = parse_grid(["train.weights.optimizer.lr=0.1,1.0e-2", "train.inference.schedule=sync,sweep"])
    assert g.values == [[0.1, 0.01], ["sync", "sweep"]]
    assert g.points() == [
        {"train.weights.optimizer.lr": 0.1, "train.inference.schedule": "sync"},
        {"train.weights.optimizer.lr": 0.1, "train.inference.schedule": "sweep"},
        {"train.weights.optimizer.lr": 0.01, "train.inference.schedule": "sync"},
        {"train.weights.optimizer.lr": 0.01, "train.inference.schedule": "sweep"},
    ]
    assert point_tags(g) == ["lr0.1-schedulesync", "lr0.1-schedulesweep", "lr0.01-schedulesync", "lr0.01-schedulesweep"]
    drift = parse_grid(["data.stream.drift=null,{every: 4, classes: [1, 2]}"])
    assert drift.values == [[None, {"every": 4, "classes": [1, 2]}]]


def test_tags_keep_keys_apart_that_end_alike():
    g = parse_grid(["train.weights.optimizer.lr=1", "train.inference.optimizer.lr=2"])
    assert point_tags(g) == ["weights.optimizer.lr1-inference.optimizer.lr2"]


@pytest.mark.parametrize(
    "texts, problem",
    [
        (["lr"], "KEY=V1,V2"),
        (["a.b="], "KEY=V1,V2"),
        (["a.b=1,1"], "given twice"),
        (["a.b=1", "a.b=2"], "another --grid"),
    ],
)
def test_bad_grids_are_refused(texts, problem):
    with pytest.raises(TrainError, match=problem):
        parse_grid(texts)


def row(method, seed, lr, value, metric="mean_error"):
    return {"method": method, "seed": seed, "grid": {"lr": lr}, "split": "test", metric: value}


def test_best_point_is_the_lowest_mean_over_seeds():
    points = [{"lr": 1}, {"lr": 2}, {"lr": 3}]
    rows = [
        row("pc", 0, 1, 0.5), row("pc", 1, 1, 0.3), row("pc", 0, 2, 0.41), row("pc", 1, 2, 0.41), row("pc", 0, 3, 0.1)
    ]
    failures = [{"method": "pc", "seed": 1, "grid": {"lr": 3}, "error": "diverged"}]  # lr 3 looks best on its one seed
    best = best_points(rows, failures, ["pc"], points, "mean_error", seeds=2)
    std = statistics.stdev([0.5, 0.3])
    assert best == {
        "pc": {"grid": {"lr": 1}, "mean_error": pytest.approx(0.4), "mean_error_std": pytest.approx(std), "seeds": 2}
    }
    acc = [row("pc", 0, 1, 0.8, "accuracy"), row("pc", 0, 2, 0.9, "accuracy")]
    # the highest for an accuracy
    assert best_points(acc, [], ["pc"], points[:2], "accuracy", seeds=1)["pc"]["grid"] == {"lr": 2}


def test_compare_on_a_grid_keeps_every_row_and_picks_each_methods_best(write, tmp_path):
    path = write(DIGITS.replace("iterations: 23", "iterations: 12").replace("eval_every: 8", "eval_every: 6"))
    out = tmp_path / "cmp"
    args = [
        "compare", str(path), "--methods", "bp,pc-kl", "--seeds", "2", "--grid", "train.weights.optimizer.lr=0.05,0.5",
        "--out", str(out), "--quiet",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    data = json.loads((out / "compare.json").read_text())
    assert data["select"] == "mean_error" and data["grid"] == {"train.weights.optimizer.lr": [0.05, 0.5]}
    test = [x for x in data["rows"] if x["split"] == "test"]
    assert len(test) == 8 and all({"grid", "mean_error", "final_error", "iteration"} <= set(x) for x in test)
    for m in ("bp", "pc-kl"):
        def at(lr):
            return [x["mean_error"] for x in test if x["method"] == m and x["grid"]["train.weights.optimizer.lr"] == lr]

        means = {lr: statistics.fmean(at(lr)) for lr in (0.05, 0.5)}
        lr = min(means, key=means.get)
        values = at(lr)
        assert data["best"][m] == {
            "grid": {"train.weights.optimizer.lr": lr}, "mean_error": pytest.approx(means[lr]),
            "mean_error_std": pytest.approx(statistics.stdev(values)), "seeds": 2,
        }
        # each row's mean_error is the mean of its run's evaluations
        run = out / f"{m}-lr{lr}-seed0"
        lines = (run / "metrics.jsonl").read_text().splitlines()
        evals = [json.loads(line)["error"] for line in lines if '"test"' in line]
        assert values[0] == pytest.approx(statistics.fmean(evals))
    md = (out / "compare.md").read_text()
    assert "best grid point" in md and "| bp | 0.5 | 2 |" in md and "**" in md
    assert (out / "compare.png").stat().st_size > 1000
    before = (out / "bp-lr0.5-seed1" / "checkpoint.pt").stat().st_mtime_ns
    r = CliRunner().invoke(main, args)  # a rerun finds every run finished
    assert r.exit_code == 0 and (out / "bp-lr0.5-seed1" / "checkpoint.pt").stat().st_mtime_ns == before


def test_a_bad_grid_value_is_named_at_the_grid_before_any_training(write, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", str(write(DIGITS)), "--grid", "train.weights.optimizer.lr=0.1,-1", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2
    assert "--grid train.weights.optimizer.lr=0.1,-1: train.weights.optimizer.lr: must be > 0.0, got -1" in r.output
    assert not out.exists()


def test_select_names_a_known_metric(write):
    r = CliRunner().invoke(main, ["compare", str(write(DIGITS)), "--select", "mean_eror"])
    assert r.exit_code == 2 and "did you mean 'mean_error'" in r.output
