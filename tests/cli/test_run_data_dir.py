"""Commands on a run directory read the data folder the run was trained with: a run
trained with --data-dir on a dataset the default folder lacks evaluates, queries,
resumes, diagnoses and is compared again without --data-dir; an explicit --data-dir
still wins, and a missing dataset says how to point at it."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from pcgraph.cli import main
from tests.data.formats import fake_mnist, write_idx_file

SPEC = """\
name: tiny-mnist
data: {dataset: mnist, batch_size: 16}
nodes:
  image: {shape: [784], role: input, bind: image}
  h: {shape: [8], family: gaussian}
  label: {shape: [10], family: categorical, role: target, bind: label}
edges:
  - {from: image, to: h, activation: tanh}
  - {from: h, to: label}
train: {epochs: 1, inference: {steps: 2}}
"""

IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture
def trained(tmp_path, write, monkeypatch):
    """(spec, run directory, data folder): a run trained with --data-dir, from another
    working folder, while the default data folder is empty."""
    monkeypatch.delenv("PCGRAPH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    data = tmp_path / "elsewhere"
    for name, array in zip(IDX, fake_mnist(np.random.default_rng(0), n_train=48, n_test=32)):
        write_idx_file(data / "mnist" / name, array, gz=False)
    spec = write(SPEC)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = run("train", spec, "--out", "run", "--data-dir", "../elsewhere", "--quiet")  # a relative folder
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path)  # the later commands run from another folder
    return spec, tmp_path / "work" / "run", data


def test_run_json_records_the_data_folder_absolute(trained):
    _, out, data = trained
    assert json.loads((out / "run.json").read_text())["data_dir"] == str(data.absolute())


def test_eval_query_diagnose_and_resume_use_the_recorded_folder(trained):
    _, out, _ = trained
    r = run("eval", out)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "eval-test.json").read_text())["epoch"] == 1
    r = run("query", out, "--clamp", "image=test[0:8]", "--infer", "label")
    assert r.exit_code == 0, r.output
    assert "8 example(s)" in r.output
    r = run("diagnose", out, "--json", "--batch-size", "4")
    assert r.exit_code == 0, r.output
    r = run("train", "--resume", out, "--set", "train.epochs=2", "--quiet")
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if row["split"] == "test"] == [1, 2]


def test_an_explicit_data_dir_wins_and_a_missing_dataset_names_the_option(trained, tmp_path):
    _, out, _ = trained
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    for args in (["eval", out], ["query", out, "--clamp", "image=test[0:4]"], ["diagnose", out]):
        r = run(*args, "--data-dir", empty)
        assert r.exit_code == 2, r.output
        (line,) = r.output.strip().splitlines()
        assert str(empty / "mnist") in line and "--data-dir" in line and "pcgraph data fetch mnist" in line


def test_without_a_recorded_folder_the_default_is_read_and_the_message_says_data_dir(trained, tmp_path):
    _, out, _ = trained
    info = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**info, "data_dir": None}))
    r = run("eval", out)
    assert r.exit_code == 2
    (line,) = r.output.strip().splitlines()
    assert str(tmp_path / "empty-cache" / "pcgraph" / "mnist") in line
    assert line.endswith("fetch them with: pcgraph data fetch mnist (or, if they are in another folder, give it with --data-dir)")


def test_compare_runs_record_the_folder_and_resume_without_it(trained, tmp_path):
    spec, _, data = trained
    out = tmp_path / "cmp"
    r = run("compare", spec, "--methods", "bp", "--out", out, "--data-dir", data, "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "bp-seed0" / "run.json").read_text())["data_dir"] == str(data)
    r = run("eval", out / "bp-seed0")
    assert r.exit_code == 0, r.output
    r = run("compare", spec, "--methods", "bp", "--out", out, "--quiet", "--set", "train.epochs=2")
    assert r.exit_code == 0, r.output
    assert not json.loads((out / "compare.json").read_text())["failures"]
    assert os.path.exists(out / "bp-seed0" / "checkpoint.pt")
