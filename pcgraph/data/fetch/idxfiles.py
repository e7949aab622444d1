"""Finding, checking and installing the four standard IDX files (MNIST and Fashion-MNIST)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil

from ..loaders.idx import IDX_NAMES, gunzip_if_gzipped
from .base import SourceFailed

IDX_GZ = tuple(n + ".gz" for n in IDX_NAMES)


def _stem(name: str) -> str:
    """The standard IDX name a file name stands for (``.gz`` dropped, dots read as dashes)."""
    stem = name[:-3] if name.endswith(".gz") else name
    for a, b in (
        ("-idx3.", "-idx3-"), ("-idx1.", "-idx1-"), ("images.idx3", "images-idx3"), ("labels.idx1", "labels-idx1")
    ):
        stem = stem.replace(a, b)
    return stem


def find_idx(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """{stem: path} of the four standard IDX files anywhere under ``root``."""
    found = {}
    for p in sorted(root.rglob("*")):
        stem = _stem(p.name)
        if p.is_file() and stem in IDX_NAMES and stem not in found:
            found[stem] = p
    missing = [s for s in IDX_NAMES if s not in found]
    if missing:
        raise SourceFailed(f"the package lacks {', '.join(missing)}")
    return found


def check_idx(found: dict[str, pathlib.Path], sums: dict[str, str], what: str) -> None:
    """Each file's decompressed contents have the published SHA-256."""
    for stem, path in found.items():
        want = sums.get(stem)
        if want is not None and hashlib.sha256(gunzip_if_gzipped(path.read_bytes())).hexdigest() != want:
            raise SourceFailed(f"{what}: {path.name} does not have the expected contents (SHA-256 differs)")


def install_idx(found: dict[str, pathlib.Path], folder: pathlib.Path) -> None:
    """Copy the IDX files in under their standard names, removing other forms."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, src in found.items():
        name = stem + (".gz" if src.name.endswith(".gz") else "")
        other = folder / (stem if name.endswith(".gz") else stem + ".gz")
        tmp = folder / (name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, folder / name)
        other.unlink(missing_ok=True)
