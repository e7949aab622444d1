"""load_dataset: renames, subsets, the data directory, option and fit checks."""

from pathlib import Path

import numpy as np
import pytest
import torch

import pcgraph
from pcgraph.data import datasets, load_dataset, resolve_data_dir
from pcgraph.core.errors import DataError

from .formats import fake_mnist, write_mnist_folder

SPEC = """\
name: t
data: {dataset: mnist, fields: {pixels: image, digit: label}, options: {subset: 7, test_subset: 3}}
nodes:
  x: {shape: [784], role: input, bind: pixels}
  y: {shape: [10], family: categorical, role: target, bind: digit}
edges:
  - {from: x, to: y}
"""


@pytest.fixture
def mnist_dir(tmp_path):
    arrays = fake_mnist(np.random.default_rng(0), 12, 6)
    write_mnist_folder(tmp_path / "mnist", arrays, gz=True)
    return tmp_path, arrays


def test_renames_and_subsets(mnist_dir):
    data_dir, (xtr, ytr, xte, yte) = mnist_dir
    g = pcgraph.build_graph(pcgraph.loads_spec(SPEC, "t.yaml"))
    d = load_dataset(g.spec.data, g, data_dir)
    assert {"pixels", "digit"} <= set(d["train"])
    assert tuple(d["train"]["pixels"].shape) == (7, 1, 28, 28) and tuple(d["test"]["digit"].shape) == (3,)
    assert d["train"]["digit"].tolist() == ytr[:7].tolist()
    assert d["test"]["digit"].tolist() == yte[:3].tolist()
    assert torch.equal(d["test"]["pixels"][:, 0], torch.tensor(xte[:3], dtype=torch.float32) / 255)


def test_fields_may_swap(mnist_dir):
    data_dir, _ = mnist_dir
    d = load_dataset({"dataset": "mnist", "fields": {"image": "label", "label": "image"}}, None, data_dir)
    assert d["train"]["image"].dtype == torch.int64 and d["train"]["label"].dim() == 4


def test_unknown_rename_target(mnist_dir):
    data_dir, _ = mnist_dir
    with pytest.raises(DataError, match="has no field 'lable'.*did you mean 'label'"):
        load_dataset({"dataset": "mnist", "fields": {"y": "lable"}}, None, data_dir)


def test_subset_larger_than_the_split_keeps_everything(mnist_dir):
    data_dir, _ = mnist_dir
    d = load_dataset({"dataset": "mnist", "options": {"subset": 1000}}, None, data_dir)
    assert d["train"]["image"].shape[0] == 12 and d["test"]["image"].shape[0] == 6


def test_bad_options_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="unknown option 'subsett'.*did you mean 'subset'"):
        load_dataset({"dataset": "digits", "options": {"subsett": 3}}, None, tmp_path)
    with pytest.raises(DataError, match="data.options.subset"):
        load_dataset({"dataset": "digits", "options": {"subset": -1}}, None, tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'mnits'.*did you mean 'mnist'"):
        load_dataset({"dataset": "mnits"}, None, tmp_path)


def test_every_dataset_has_options_fields_and_a_loader():
    for name, cls in datasets.items():
        assert cls.name == name and cls.description
        assert cls.Options.model_config.get("extra") == "forbid"
        assert cls.load is not pcgraph.data.Dataset.load


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("PCGRAPH_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "pcgraph"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "pcgraph"
    monkeypatch.setenv("PCGRAPH_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir("~/d") == Path.home() / "d"


def test_env_data_dir_is_used(mnist_dir, monkeypatch):
    data_dir, _ = mnist_dir
    monkeypatch.setenv("PCGRAPH_DATA", str(data_dir))
    assert load_dataset({"dataset": "mnist"})["train"]["image"].shape[0] == 12


def test_class_index_out_of_range_for_the_node(tmp_path):
    spec = """\
name: t
data: {dataset: digits}
nodes:
  x: {shape: [64], role: input, bind: image}
  y: {shape: [4], family: categorical, role: target, bind: label}
edges:
  - {from: x, to: y}
"""
    g = pcgraph.build_graph(pcgraph.loads_spec(spec, "t.yaml"))
    with pytest.raises(DataError) as e:
        load_dataset(g.spec.data, g, tmp_path)
    assert "class indices 0..9" in str(e.value) and "has 4 classes" in str(e.value)
    assert e.value.lines[0].startswith("t.yaml:5:")


def test_token_ids_beyond_the_embedding_vocab(tmp_path):
    spec = """\
name: lm
data: {dataset: synthetic_text, options: {vocab_size: 30, seq_len: 5, n_train: 20, n_test: 5}}
nodes:
  tok: {shape: [5], role: input, bind: tokens, dtype: long}
  e: {shape: [5, 4], family: gaussian}
  nxt: {shape: [5, 30], family: categorical, role: target, bind: next_tokens}
edges:
  - {from: tok, to: e, transform: {type: embedding, vocab: 10}}
  - {from: e, to: nxt}
"""
    g = pcgraph.build_graph(pcgraph.loads_spec(spec, "t.yaml"))
    with pytest.raises(DataError, match="embedding reading node 'tok' has vocab 10"):
        load_dataset(g.spec.data, g, tmp_path)
    ok = pcgraph.build_graph(pcgraph.loads_spec(spec.replace("vocab: 10", "vocab: 30"), "t.yaml"))
    assert load_dataset(ok.spec.data, ok, tmp_path)["train"]["tokens"].shape == (20, 5)


def test_data_spec_defaults_to_the_graphs(tmp_path):
    g = pcgraph.build_graph(pcgraph.load_spec(Path(__file__).resolve().parents[2] / "specs" / "digits-m2.yaml"))
    d = load_dataset(None, g, tmp_path)
    assert d["train"]["image"].shape[0] == 1437
