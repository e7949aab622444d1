"""pcgraph bench reports what it promises (speed itself is measured, not tested)."""

import json

from click.testing import CliRunner

from pcgraph.cli import main
from pcgraph.compile import Program
from pcgraph.compile.optim import StateOptimizer
from tests.tiny import BENCHED as TINY



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
    sets = [
        "train.inference.steps=3", "data.batch_size=5", "train.energy=gaussian", "train.weights.gradient=equilibrium"
    ]
    args = ["bench", str(path), "--steps", "2", "--warmup", "1", "--rounds", "1", "--no-memory", "--json"]
    r = CliRunner().invoke(main, args + [a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert (result["T"], result["batch"], result["steps"]) == (3, 5, 2)
    # a first (cold) step, one warm-up step, two timed steps per method
    assert seen["pc"] == [(5, "gaussian")] * 4 and seen["bp"] == [(5, "gaussian")] * 4
    assert seen["inference_steps"] == 4 * 3
