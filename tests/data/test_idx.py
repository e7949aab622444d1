"""mnist / fashion_mnist: the IDX loader on files written here."""

import gzip

import numpy as np
import pytest
import torch

from pcgraph.data import load_dataset
from pcgraph.data.loaders.idx import IDXError, parse_idx, read_idx, write_idx
from pcgraph.core.errors import DataError

from .formats import fake_mnist, idx_bytes, write_idx_file, write_mnist_folder


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_dataset_loads_what_was_written(tmp_path, name, gz):
    rng = np.random.default_rng(1)
    xtr, ytr, xte, yte = arrays = fake_mnist(rng)
    write_mnist_folder(tmp_path / name, arrays, gz)
    d = load_dataset({"dataset": name}, None, tmp_path)
    assert set(d) == {"train", "test"}
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        img, lbl = d[split]["image"], d[split]["label"]
        assert img.dtype == torch.float32 and lbl.dtype == torch.int64
        assert tuple(img.shape) == (len(x), 1, 28, 28)
        assert tuple(lbl.shape) == (len(y),)
        assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
        assert torch.equal(lbl, torch.tensor(y.astype(np.int64)))
        assert torch.allclose(img[:, 0], torch.tensor(x, dtype=torch.float32) / 255.0)
        assert img.device.type == "cpu"


def test_gz_and_plain_give_the_same(tmp_path):
    arrays = fake_mnist(np.random.default_rng(2), 10, 5)
    write_mnist_folder(tmp_path / "a" / "mnist", arrays, gz=True)
    write_mnist_folder(tmp_path / "b" / "mnist", arrays, gz=False)
    a = load_dataset({"dataset": "mnist"}, None, tmp_path / "a")
    b = load_dataset({"dataset": "mnist"}, None, tmp_path / "b")
    for split in ("train", "test"):
        for f in ("image", "label"):
            assert torch.equal(a[split][f], b[split][f])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8", "<i4", "<f8"])
def test_parse_idx_every_type(dtype):
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(3, 4, 2)) * 50).astype(dtype)
    out = parse_idx(idx_bytes(a))
    assert out.shape == (3, 4, 2)
    assert np.array_equal(out, a)
    assert out.dtype.isnative or out.dtype.itemsize == 1


def test_parse_idx_header_by_hand():
    # magic 0x00000801 (uint8, 1 dim), 3 items
    data = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])
    assert parse_idx(data).tolist() == [7, 8, 9]
    # int16 big-endian, 2 dims [1, 2]: 0x0102 = 258, 0xFFFE = -2
    data = bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFE])
    assert parse_idx(data).tolist() == [[258, -2]]


@pytest.mark.parametrize(
    "data,why",
    [
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x05", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "size mismatch"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),
        (b"\x00", "too short"),
    ],
)
def test_parse_idx_rejects_bad_files(data, why):
    with pytest.raises(IDXError, match=why):
        parse_idx(data)


def test_write_idx_roundtrip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = write_idx(tmp_path / "x-idx3-ubyte.gz", a)
    assert gzip.decompress(p.read_bytes()) == idx_bytes(a)  # the independent writer agrees
    assert np.array_equal(read_idx(p), a)


def test_missing_dataset_is_one_line_naming_the_fetch_command(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "mnist"}, None, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "mnist") in msg
    assert "pcgraph data fetch mnist" in msg
    assert "train-images-idx3-ubyte[.gz]" in msg


def test_missing_default_dir_message_names_plain_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PCGRAPH_DATA", str(tmp_path))
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "fashion_mnist"})
    msg = str(e.value)
    assert msg.endswith("fetch them with: pcgraph data fetch fashion_mnist (or, if they are in another folder, give it with --data-dir)")


def test_missing_error_carries_the_spec_position(tmp_path):
    import pcgraph

    g = pcgraph.build_graph(
        pcgraph.loads_spec(
            "name: t\ndata: {dataset: mnist}\nnodes:\n  image: {shape: [784], role: input, bind: image}\n"
            "  label: {shape: [10], family: categorical, role: target, bind: label}\nedges:\n  - {from: image, to: label}\n",
            "t.yaml",
        )
    )
    with pytest.raises(DataError) as e:
        load_dataset(g.spec.data, g, tmp_path)
    (line,) = e.value.lines
    assert line.startswith("t.yaml:2:")
    assert "pcgraph data fetch mnist" in line


def test_partly_missing_names_the_missing_file(tmp_path):
    files = write_mnist_folder(tmp_path / "mnist", fake_mnist(np.random.default_rng(4), 5, 5), gz=True)
    files["t10k-labels-idx1-ubyte"].unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset({"dataset": "mnist"}, None, tmp_path)


def test_inconsistent_counts_are_reported(tmp_path):
    xtr, ytr, xte, yte = fake_mnist(np.random.default_rng(5), 6, 4)
    write_mnist_folder(tmp_path / "mnist", (xtr, ytr[:5], xte, yte), gz=False)
    with pytest.raises(DataError, match="expected 6 labels"):
        load_dataset({"dataset": "mnist"}, None, tmp_path)


def test_corrupt_file_is_a_data_error(tmp_path):
    files = write_mnist_folder(tmp_path / "mnist", fake_mnist(np.random.default_rng(6), 5, 5), gz=False)
    files["train-images-idx3-ubyte"].write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="not a readable IDX file"):
        load_dataset({"dataset": "mnist"}, None, tmp_path)


def test_test_writer_gzips_when_asked(tmp_path):
    p = write_idx_file(tmp_path / "f", np.zeros(3, np.uint8), gz=True)
    assert p.name == "f.gz" and p.read_bytes()[:2] == b"\x1f\x8b"
