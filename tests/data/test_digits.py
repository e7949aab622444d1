"""digits: scikit-learn's 8x8 digits with a fixed stratified split."""

import numpy as np
import torch
from sklearn.datasets import load_digits

from pcgraph.data import load_dataset


def test_digits_split_sizes_and_values(tmp_path):
    d = load_dataset({"dataset": "digits"}, None, tmp_path)
    tr, te = d["train"], d["test"]
    assert tuple(tr["image"].shape) == (1437, 1, 8, 8) and tuple(te["image"].shape) == (360, 1, 8, 8)
    assert tr["image"].dtype == torch.float32 and tr["label"].dtype == torch.int64
    assert float(tr["image"].min()) == 0.0 and float(tr["image"].max()) == 1.0
    # the two splits together are exactly the 1797 images / 16, each once
    raw = load_digits()
    want = sorted(map(tuple, np.round(raw.data / 16.0, 6).tolist()))
    got = sorted(
        map(
            tuple,
            np.round(torch.cat([tr["image"], te["image"]]).reshape(-1, 64).numpy().astype(np.float64), 6).tolist(),
        )
    )
    assert got == want
    # stratified: every class in the test split, in proportion (within one example)
    counts = np.bincount(raw.target, minlength=10)
    test_counts = np.bincount(te["label"].numpy(), minlength=10)
    assert (test_counts > 0).all()
    assert np.all(np.abs(test_counts - counts * 0.2) <= 1)


def test_digits_split_is_fixed(tmp_path):
    a = load_dataset({"dataset": "digits"}, None, tmp_path)
    b = load_dataset({"dataset": "digits"}, None, tmp_path)
    assert torch.equal(a["test"]["image"], b["test"]["image"])
    assert torch.equal(a["train"]["label"], b["train"]["label"])
