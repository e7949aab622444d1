"""CIFAR-10's python tarball from its publisher (MD5 as published)."""

from __future__ import annotations

import pathlib
import shutil

from .base import Context, Remote, SourceFailed, retrieve, tempdir, write_source
from .processors import SafeUntar

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


def run(ctx: Context) -> str:
    """Fetch the tarball (``--url``: another copy of it) and move its batch folder in."""
    url = ctx.url or CIFAR10_URL
    folder = ctx.data_dir / "cifar10"
    remote = Remote(CIFAR10_URL, f"md5:{CIFAR10_MD5}", "cifar-10-python.tar.gz")
    with tempdir(ctx, "cifar10") as tmp:
        root = retrieve(remote, ctx, "cifar10", SafeUntar(pathlib.Path(tmp) / "x"), url=url)
        batches = sorted(root.rglob("data_batch_1"))
        if not batches:
            raise SourceFailed(f"{url}: the archive holds no data_batch_1")
        dest = folder / "cifar-10-batches-py"
        if dest.exists():
            shutil.rmtree(dest)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(batches[0].parent), str(dest))
    write_source(folder, dataset="cifar10", source="canonical", url=url)
    return f"from {url}"
