"""The spec language's reference (docs/spec-language.md) shows forms that must validate:
its first full spec, with the reference's whole `train` block in place of its own."""

import re
from pathlib import Path

import yaml

from pcgraph.spec import load_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-language.md"


def _blocks():
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def test_the_reference_train_block_validates_on_the_reference_spec(tmp_path):
    blocks = _blocks()
    spec = next(b for b in blocks if isinstance(b, dict) and {"nodes", "edges"} <= set(b))
    train = next(b["train"] for b in blocks if isinstance(b, dict) and set(b) == {"train"})
    train.pop("init_from")  # names a run directory the reader would have
    spec["train"] = train
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    got = load_spec(path).train
    assert (got.inference.schedule, got.weights.gradient, got.weights.nudge) == ("carry", "equilibrium", 1e-4)
    assert got.inference.optimizer.lr == 0.1
