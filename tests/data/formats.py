"""Writers for the real file formats, independent of pcgraph's own code."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_CODES = {
    np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    a = np.asarray(array)
    big = a.dtype.newbyteorder(">") if a.dtype.itemsize > 1 else a.dtype
    code = IDX_CODES[np.dtype(big)]
    head = bytes([0, 0, code, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
    return head + a.astype(big).tobytes()


def write_idx_file(path: Path, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(array)
    path = Path(str(path) + (".gz" if gz else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(rng, n_train=50, n_test=20, rows=28, cols=28):
    """(train images, train labels, test images, test labels) as uint8 arrays."""
    return (
        rng.integers(0, 256, size=(n_train, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, size=n_train).astype(np.uint8),
        rng.integers(0, 256, size=(n_test, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, size=n_test).astype(np.uint8),
    )


def write_mnist_folder(folder: Path, arrays, gz: bool) -> dict:
    xtr, ytr, xte, yte = arrays
    return {
        "train-images-idx3-ubyte": write_idx_file(folder / "train-images-idx3-ubyte", xtr, gz),
        "train-labels-idx1-ubyte": write_idx_file(folder / "train-labels-idx1-ubyte", ytr, gz),
        "t10k-images-idx3-ubyte": write_idx_file(folder / "t10k-images-idx3-ubyte", xte, gz),
        "t10k-labels-idx1-ubyte": write_idx_file(folder / "t10k-labels-idx1-ubyte", yte, gz),
    }


def cifar_batch(rng, n: int, name: bytes = b"training batch 1 of 5") -> dict:
    """A dict shaped like the CIFAR-10 python batches."""
    return {
        b"batch_label": name,
        b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_cifar_folder(folder: Path, rng, n_per_batch=6) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = cifar_batch(rng, n_per_batch, name.encode())
        (folder / name).write_bytes(pickle.dumps(b, protocol=2))
        batches[name] = b
    return batches
