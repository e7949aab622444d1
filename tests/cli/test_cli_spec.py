"""The spec-stage commands: validate, inspect, schema."""

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from pcgraph.cli import main
from tests.conftest import SPECS

BAD = """\
name: bad
nodes:
  x: {shape: [4], role: input, bind: image}
  h: {shape: [3], family: gaussian}
edges:
  - {from: x, to: h, transform: linaer}
"""


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_validate_all_shipped():
    r = run("validate", *sorted(SPECS.glob("*.yaml")))
    assert r.exit_code == 0, r.output
    assert r.output.count(": ok") == len(list(SPECS.glob("*.yaml")))


def test_validate_invalid_exits_2_with_located_line(write):
    p = write(BAD)
    r = run("validate", p)
    assert r.exit_code == 2
    assert f"{p}:6:33: edges.0.transform: unknown transform 'linaer' (did you mean 'linear'?)" in r.output
    assert "Traceback" not in r.output


def test_validate_reports_every_file(write, tmp_path):
    bad = write(BAD, "bad.yaml")
    r = run("validate", SPECS / "digits-m2.yaml", bad, tmp_path / "missing.yaml")
    assert r.exit_code == 2
    assert "digits-m2.yaml: ok" in r.output
    assert "linaer" in r.output and "missing.yaml: <spec>: no such file" in r.output


def test_inspect_json_has_exact_parameter_total():
    r = run("inspect", SPECS / "mnist-m2.yaml", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["name"] == "mnist-m2"
    assert data["params_total"] == 784 * 512 + 512 + 2 * (512 * 512 + 512) + 512 * 10 + 10
    assert [n["name"] for n in data["nodes"]] == ["image", "h1", "h2", "h3", "label"]
    assert {"from", "to", "transform", "activation", "params"} <= set(data["edges"][0])


def test_inspect_table_lists_nodes_edges_totals():
    r = run("inspect", SPECS / "mnist-vae.yaml")
    assert r.exit_code == 0
    for text in ("gaussian_meanvar + prior standard_normal", "[16]", "[32]", "enc2 -> z", "hardtanh", "parameters:"):
        assert text in r.output


@pytest.mark.parametrize("fmt,head", [("dot", "digraph"), ("mermaid", "flowchart LR")])
def test_inspect_drawings_tell_families_apart(fmt, head):
    r = run("inspect", SPECS / "mnist-m3.yaml", "--format", fmt)
    assert r.exit_code == 0
    assert r.output.startswith(head)
    out = r.output
    if fmt == "dot":
        h1 = next(line for line in out.splitlines() if line.strip().startswith('"h1" ['))
        h2 = next(line for line in out.splitlines() if line.strip().startswith('"h2" ['))
        assert h1.split("fillcolor")[1] != h2.split("fillcolor")[1]
    else:
        assert "classDef categorical" in out and "classDef gaussian" in out


def test_inspect_with_override():
    r = run("inspect", SPECS / "digits-m2.yaml", "--format", "json", "--set", "nodes.h1.shape=[10]")
    data = json.loads(r.output)
    assert data["params_total"] == 64 * 10 + 10 + 10 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10


def test_inspect_unknown_override_exits_2():
    r = run("inspect", SPECS / "digits-m2.yaml", "--set", "train.inferense.steps=3")
    assert r.exit_code == 2
    assert "inferense" in r.output and "did you mean 'inference'" in r.output


def test_schema_validates_shipped_specs_and_rejects_unknown_keys():
    r = run("schema")
    assert r.exit_code == 0
    schema = json.loads(r.output)
    assert {"name", "nodes", "edges"} <= set(schema["properties"])
    for path in SPECS.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = yaml.safe_load((SPECS / "digits-m2.yaml").read_text())
    bad["nodes"]["h1"]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_console_script_exits_2_without_traceback(write):
    p = write(BAD)
    r = subprocess.run([sys.executable, "-m", "pcgraph", "validate", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert ":6:33: edges.0.transform:" in r.stderr


def test_python_tag_is_never_executed(write, tmp_path):
    marker = tmp_path / "pwned"
    p = write(f"name: !!python/object/apply:os.system ['touch {marker}']\nnodes: {{}}\nedges: []\n")
    r = run("validate", p)
    assert r.exit_code == 2
    assert "!!python/object/apply:os.system" in r.output
    assert not marker.exists()
