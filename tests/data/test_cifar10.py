"""cifar10: pickled batch files written here, and the restricted unpickler."""

import os
import pickle

import numpy as np
import pytest
import torch

from pcgraph.data import load_dataset
from pcgraph.data.loaders.cifar10 import UnsafePickle, restricted_load
from pcgraph.core.errors import DataError

from .formats import cifar_batch, write_cifar_folder

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


@pytest.mark.parametrize("sub", ["cifar10/cifar-10-batches-py", "cifar10"])
def test_cifar_loads_what_was_written(tmp_path, sub):
    batches = write_cifar_folder(tmp_path / sub, np.random.default_rng(0), n_per_batch=6)
    d = load_dataset({"dataset": "cifar10"}, None, tmp_path)
    x = d["train"]["image"]
    assert x.dtype == torch.float32 and tuple(x.shape) == (30, 3, 32, 32)
    assert d["train"]["label"].dtype == torch.int64 and tuple(d["train"]["label"].shape) == (30,)
    assert tuple(d["test"]["image"].shape) == (6, 3, 32, 32)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    want_labels = [v for name in TRAIN for v in batches[name][b"labels"]]
    assert d["train"]["label"].tolist() == want_labels
    assert d["test"]["label"].tolist() == batches["test_batch"][b"labels"]
    # row layout: 1024 red values, then green, then blue, each 32x32 row-major
    row = batches["data_batch_2"][b"data"][1]
    img = d["train"]["image"][6 + 1]
    assert torch.allclose(img[0, 0, :], torch.tensor(row[:32], dtype=torch.float32) / 255)
    assert torch.allclose(img[1, 0, 0], torch.tensor(row[1024] / 255, dtype=torch.float32))
    assert torch.allclose(img[2, 31, 31], torch.tensor(row[3071] / 255, dtype=torch.float32))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_load_reads_numpy_arrays(protocol):
    b = cifar_batch(np.random.default_rng(1), 3)
    out = restricted_load(pickle.dumps(b, protocol=protocol))
    assert np.array_equal(out[b"data"], b[b"data"]) and out[b"labels"] == b[b"labels"]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Custom:
    pass


@pytest.mark.parametrize("payload", [Evil(), Custom(), {b"data": Custom()}, eval])
def test_restricted_load_refuses_other_globals(payload):
    with pytest.raises(UnsafePickle, match="refusing"):
        restricted_load(pickle.dumps(payload, protocol=2))


def test_forbidden_class_in_a_batch_file_is_a_data_error(tmp_path):
    folder = tmp_path / "cifar10"
    write_cifar_folder(folder, np.random.default_rng(2), 2)
    bad = cifar_batch(np.random.default_rng(3), 2)
    bad[b"extra"] = Evil()
    (folder / "data_batch_3").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="data_batch_3: refusing to load global"):
        load_dataset({"dataset": "cifar10"}, None, tmp_path)


def test_wrong_shape_is_a_data_error(tmp_path):
    folder = tmp_path / "cifar10"
    write_cifar_folder(folder, np.random.default_rng(4), 2)
    b = cifar_batch(np.random.default_rng(5), 2)
    b[b"data"] = b[b"data"][:, :100]
    (folder / "test_batch").write_bytes(pickle.dumps(b, protocol=2))
    with pytest.raises(DataError, match=r"uint8 array \[N, 3072\]"):
        load_dataset({"dataset": "cifar10"}, None, tmp_path)


def test_missing_cifar_names_the_fetch_command(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "cifar10"}, None, tmp_path)
    assert "\n" not in str(e.value) and "pcgraph data fetch cifar10" in str(e.value)
    assert str(tmp_path / "cifar10") in str(e.value)


def test_batches_with_str_keys_load(tmp_path):
    # Python 2 wrote str keys, which come back as bytes; files written by Python 3
    # with str keys load as well
    folder = tmp_path / "cifar10"
    rng = np.random.default_rng(6)
    labels = []
    for name in TRAIN + ["test_batch"]:
        b = {k.decode(): v for k, v in cifar_batch(rng, 2).items()}
        labels.append(b["labels"])
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(pickle.dumps(b, protocol=4))
    d = load_dataset({"dataset": "cifar10"}, None, tmp_path)
    assert d["train"]["label"].tolist() == [v for ls in labels[:5] for v in ls]
    assert d["test"]["label"].tolist() == labels[5]
