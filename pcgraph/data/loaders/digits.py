"""``digits``: scikit-learn's 8x8 handwritten digits (they ship with scikit-learn)."""

from __future__ import annotations


from ...core.lazy import np, torch
from ..dataset import IMAGE_FIELDS, TEN_CLASSES, Dataset, ImageOptions, register

#: the fixed split: stratified, 20% test, random_state 0 -> 1437 train / 360 test
TEST_SIZE = 0.2
SPLIT_SEED = 0


@register
class Digits(Dataset):
    name = "digits"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    index_fields = ("label",)
    classes = TEN_CLASSES
    description = "scikit-learn's 8x8 handwritten digits (1797 images), fixed stratified 80/20 split"

    def load(self, options, data_dir, graph):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = (np.asarray(d.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
        y = np.asarray(d.target, dtype=np.int64)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
        return {
            "train": {"image": torch.from_numpy(np.ascontiguousarray(xtr)), "label": torch.from_numpy(ytr)},
            "test": {"image": torch.from_numpy(np.ascontiguousarray(xte)), "label": torch.from_numpy(yte)},
        }
