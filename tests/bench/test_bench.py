"""pcgraph bench reports what it promises (speed itself is measured, not tested)."""

import json

from click.testing import CliRunner

from pcgraph.cli import main

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


def test_bench_follows_overrides(write):
    path = write(TINY)
    r = CliRunner().invoke(main, ["bench", str(path), "--steps", "2", "--warmup", "0", "--no-memory", "--json", "--set", "train.inference.steps=2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["T"] == 2
