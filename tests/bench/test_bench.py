"""pcgraph bench reports what it promises (speed itself is measured, not tested)."""

import json

import pytest

from click.testing import CliRunner

from pcgraph.cli import main
from pcgraph.compile import Program
from pcgraph.compile.optim import StateOptimizer

TINY = """\
name: tiny-bench
data: {dataset: synthetic, batch_size: 16}
nodes:
  x: {shape: [12], role: input, bind: x}
  h: {shape: [10], family: gaussian}
  y: {shape: [3], family: categorical, role: target, bind: y}
edges:
  - {from: x, to: h, activation: tanh}
  - {from: h, to: y}
train: {inference: {steps: 4}}
"""


def test_bench_json_has_the_promised_keys(write):
    path = write(TINY)
    r = CliRunner().invoke(main, ["bench", str(path), "--steps", "3", "--warmup", "1", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    for key in ("bp_step_ms", "pc_step_ms", "ratio", "bp_peak_mb", "pc_peak_mb", "compile_s"):
        assert key in result
    assert result["bp_step_ms"] > 0 and result["pc_step_ms"] > 0
    pc, bp = result["pc_step_ms"], result["bp_step_ms"]
    rounding = 5e-4 + pc / bp * (5e-4 / pc + 5e-4 / bp) * 1.01  # each figure is rounded to 3 decimals
    assert abs(result["ratio"] - pc / bp) <= rounding
    assert result["T"] == 4 and result["batch"] == 16


def test_bench_runs_what_the_overrides_say(write, monkeypatch):
    """The bench times steps of the overridden spec: the batch size, the energy and the
    number of inference steps it reports are the ones its PC and BP steps ran with."""
    seen = {"pc": [], "bp": [], "inference_steps": 0}
    pc_step, bp_step, begin = Program.pc_step, Program.bp_step, StateOptimizer.begin_step

    def pc(self, batch, **kw):
        seen["pc"].append((len(batch["x"]), self.energy_kind))
        return pc_step(self, batch, **kw)

    def bp(self, batch):
        seen["bp"].append((len(batch["x"]), self.energy_kind))
        return bp_step(self, batch)

    def count(self):
        seen["inference_steps"] += 1
        begin(self)

    monkeypatch.setattr(Program, "pc_step", pc)
    monkeypatch.setattr(Program, "bp_step", bp)
    monkeypatch.setattr(StateOptimizer, "begin_step", count)
    path = write(TINY)
    sets = ["train.inference.steps=3", "data.batch_size=5", "train.energy=gaussian", "train.weights.gradient=equilibrium"]
    args = ["bench", str(path), "--steps", "2", "--warmup", "1", "--rounds", "1", "--no-memory", "--json"]
    r = CliRunner().invoke(main, args + [a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert (result["T"], result["batch"], result["steps"]) == (3, 5, 2)
    # a first (cold) step, one warm-up step, two timed steps per method
    assert seen["pc"] == [(5, "gaussian")] * 4 and seen["bp"] == [(5, "gaussian")] * 4
    assert seen["inference_steps"] == 4 * 3


def test_bad_counts_are_refused_naming_the_option(write):
    path = write(TINY)
    for option, value in (("--steps", "0"), ("--rounds", "0"), ("--steps", "-1"), ("--warmup", "-1")):
        r = CliRunner().invoke(main, ["bench", str(path), option, value, "--no-memory"])
        assert r.exit_code == 2, (option, value, r.output)
        assert f"Invalid value for '{option}'" in r.output and "Traceback" not in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit)
    from pcgraph.core.errors import TrainError
    from pcgraph.train.bench import run_bench

    with pytest.raises(TrainError) as info:
        run_bench(path, steps=0, memory=False)
    assert info.value.lines == ["--steps: must be at least 1, got 0"]


def test_spread_is_the_range_of_the_round_medians_over_the_median():
    from pcgraph.train.bench import disagreement, spread_fields

    # seconds per step, two rounds of three steps: BP's rounds agree, PC's do not
    times = {"bp": [[0.010, 0.011, 0.012], [0.011, 0.012, 0.010]], "pc": [[0.020, 0.020, 0.021], [0.030, 0.031, 0.030]]}
    f = spread_fields(times)
    assert f["bp_rounds_ms"] == [11.0, 11.0] and f["bp_spread"] == 0.0
    # PC: round medians 20 and 30 ms, median of all six steps (21 + 30) / 2 = 25.5 ms
    assert f["pc_rounds_ms"] == [20.0, 30.0] and f["pc_spread"] == round(10 / 25.5, 3)
    assert f["ratio_rounds"] == [round(20 / 11, 3), round(30 / 11, 3)]
    warning = disagreement(f)
    assert warning is not None and "PC step medians 20.00 .. 30.00 ms" in warning and "39%" in warning
    calm = spread_fields({"bp": [[0.010], [0.0105]], "pc": [[0.020], [0.0209]]})  # 5 % and 4.4 %
    assert disagreement(calm) is None


def test_bench_prints_the_spread_and_warns_when_rounds_disagree(write, monkeypatch):
    from pcgraph.train import bench

    def noisy(dev, fns, batch, steps, warmup, rounds):
        # a machine that got busy in the second round: 7.6 ms, then 200 ms
        return {"bp": [[0.005] * steps, [0.005] * steps], "pc": [[0.0076] * steps, [0.2] * steps]}

    monkeypatch.setattr(bench, "_timed", noisy)
    path = write(TINY)
    r = CliRunner().invoke(main, ["bench", str(path), "--steps", "2", "--warmup", "0", "--rounds", "2", "--no-memory", "--json"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["pc_rounds_ms"] == [7.6, 200.0] and result["bp_spread"] == 0.0
    assert any(line.startswith("warning: the timing rounds disagree: PC step medians 7.60 .. 200.00 ms") for line in lines[:-1])
    assert "2 rounds 7.60 .. 200.00 ms" in r.output
    assert "warning" in result and "bp_peak_mb" not in result
