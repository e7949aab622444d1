"""Fashion-MNIST from Debian: the package dataset-fashion-mnist holds the four
gzipped IDX files in ``/usr/share/datasets/fashion-mnist/``. When the package is
installed, its files are used; otherwise the .deb is fetched from the archive."""

from __future__ import annotations

import pathlib

from .base import Context, Remote, SourceFailed, retrieve, tempdir, write_source
from .idxfiles import check_idx, find_idx, install_idx
from .processors import DebData

FASHION_DEB = "dataset-fashion-mnist"
FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist"
#: the package version of Debian bookworm and its SHA-256 from the archive's index
DEB = Remote(
    "https://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    "sha256:39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
)
#: SHA-256 of the decompressed IDX files in that package version
IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def _installed() -> dict[str, pathlib.Path] | None:
    """The installed package's files, if they are all there."""
    folder = pathlib.Path("/") / FASHION_DEB_DIR
    try:
        return find_idx(folder) if folder.is_dir() else None
    except SourceFailed:
        return None


def run(ctx: Context) -> str:
    """Install the IDX files of the installed package, else of the fetched .deb
    (``--url``: another copy of it)."""
    folder = ctx.data_dir / "fashion_mnist"
    found = None if ctx.url else _installed()
    where = f"the installed Debian package {FASHION_DEB} ({pathlib.Path('/') / FASHION_DEB_DIR})"
    with tempdir(ctx, "fashion-deb") as tmp:
        if found is None:
            root = retrieve(DEB, ctx, "fashion_mnist", DebData(pathlib.Path(tmp) / "x"), url=ctx.url)
            found = find_idx(root)
            where = f"the Debian package {DEB.fname}"
        check_idx(found, IDX_SHA256, FASHION_DEB)
        install_idx(found, folder)
    write_source(folder, dataset="fashion_mnist", source="debian", package=FASHION_DEB)
    return f"from {where}"
