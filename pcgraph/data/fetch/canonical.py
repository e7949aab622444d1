"""The publishers' servers: the four gzipped IDX files of MNIST and Fashion-MNIST
(MD5 sums as published), tried mirror by mirror."""

from __future__ import annotations

import pathlib
from typing import Callable

from .base import Context, Remote, SourceFailed, retrieve, write_source
from .idxfiles import IDX_GZ, install_idx

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def idx_canonical(dataset: str, mirrors: tuple[str, ...], md5: dict[str, str]) -> Callable[[Context], str]:
    """The source that fetches ``dataset``'s IDX files from the first mirror that has
    them all (``--url``: another mirror's base URL)."""

    def run(ctx: Context) -> str:
        reasons = []
        for base in [ctx.url] if ctx.url else list(mirrors):
            base = base if base.endswith("/") else base + "/"
            try:
                paths = {
                    n[:-3]: retrieve(Remote(base + n, f"md5:{md5[n]}" if n in md5 else None, n), ctx, dataset)
                    for n in IDX_GZ
                }
            except SourceFailed as e:
                reasons.append(str(e))
                continue
            folder = ctx.data_dir / dataset
            install_idx({stem: pathlib.Path(p) for stem, p in paths.items()}, folder)
            write_source(folder, dataset=dataset, source="canonical", url=base)
            return f"from {base}"
        raise SourceFailed("; ".join(reasons))

    return run
