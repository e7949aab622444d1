"""``mnist`` and ``fashion_mnist``: the IDX file format (gzipped or not).

IDX: two zero bytes, a type code, the number of dimensions n, then n big-endian
uint32 sizes, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct


from ...core.lazy import np, torch
from ..dataset import IMAGE_FIELDS, TEN_CLASSES, Dataset, ImageOptions, data_error, fetch_hint, register

#: type code -> numpy dtype name (big-endian)
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: split -> (images file, labels file), without the optional .gz
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_NAMES = tuple(n for pair in IDX_FILES.values() for n in pair)


class IDXError(ValueError):
    pass


def parse_idx(data: bytes) -> np.ndarray:
    """Decode one IDX file's bytes (already decompressed) to an array in native byte order."""
    if len(data) < 4:
        raise IDXError(f"too short for an IDX header ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IDXError(f"bad magic number 0x{data[:4].hex()} (an IDX file starts with two zero bytes)")
    if code not in IDX_TYPES:
        raise IDXError(f"unknown IDX type code 0x{code:02x}")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise IDXError(f"truncated header: {ndim} dimensions need {head} bytes, the file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    dtype = np.dtype(IDX_TYPES[code])
    count = int(np.prod(dims, dtype=np.int64)) if ndim else 1
    want = head + count * dtype.itemsize
    if len(data) != want:
        raise IDXError(
            f"size mismatch: dimensions {list(dims)} of {dtype.name} need {want} bytes, the file has {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=head).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def is_gzip(raw: bytes) -> bool:
    return raw[:2] == b"\x1f\x8b"


def gunzip_if_gzipped(raw: bytes) -> bytes:
    return gzip.decompress(raw) if is_gzip(raw) else raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or not (told by its content)."""
    return parse_idx(gunzip_if_gzipped(pathlib.Path(path).read_bytes()))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> pathlib.Path:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in .gz)."""
    path = pathlib.Path(path)
    arr = np.asarray(array)
    for code, name in IDX_TYPES.items():
        dt = np.dtype(name)
        if arr.dtype.kind == dt.kind and arr.dtype.itemsize == dt.itemsize:
            break
    else:
        raise IDXError(f"IDX cannot hold dtype {arr.dtype}")
    body = (
        struct.pack(">HBB", 0, code, arr.ndim)
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.astype(dt, copy=False).tobytes()
    )
    if compress or (compress is None and path.suffix == ".gz"):
        body = gzip.compress(body, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(body)
    os.replace(tmp, path)
    return path


def find_idx(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx_folder(dataset: str, folder: pathlib.Path, data_dir: pathlib.Path) -> dict:
    """{"train": {"image", "label"}, "test": {...}} from the four standard IDX files."""
    found = {n: find_idx(folder, n) for n in IDX_NAMES}
    missing = [n for n, p in found.items() if p is None]
    fetch = fetch_hint(dataset, data_dir)
    if len(missing) == len(IDX_NAMES):
        looked = ", ".join(f"{n}[.gz]" for n in IDX_NAMES)
        raise data_error(f"{dataset}: no IDX files in {folder} (looked for {looked}); {fetch}")
    if missing:
        raise data_error(f"{dataset}: missing {', '.join(f'{n}[.gz]' for n in missing)} in {folder}; {fetch}")
    out = {}
    for split, (img_name, lbl_name) in IDX_FILES.items():
        try:
            images = read_idx(found[img_name])
        except (IDXError, OSError, EOFError, gzip.BadGzipFile) as e:
            raise data_error(f"{dataset}: {found[img_name]}: not a readable IDX file: {e}") from None
        try:
            labels = read_idx(found[lbl_name])
        except (IDXError, OSError, EOFError, gzip.BadGzipFile) as e:
            raise data_error(f"{dataset}: {found[lbl_name]}: not a readable IDX file: {e}") from None
        if images.ndim != 3:
            raise data_error(
                f"{dataset}: {found[img_name]}: expected images [N, rows, cols], got dimensions {list(images.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise data_error(
                f"{dataset}: {found[lbl_name]}: expected {images.shape[0]} labels (one per image), got dimensions "
                f"{list(labels.shape)}"
            )
        if images.dtype == np.uint8:
            x = images.astype(np.float32) / 255.0
        else:
            x = images.astype(np.float32)
            if x.size and (x.min() < 0 or x.max() > 1):
                raise data_error(f"{dataset}: {found[img_name]}: {images.dtype} pixel values outside [0, 1]")
        out[split] = {
            "image": torch.from_numpy(x[:, None]),
            "label": torch.from_numpy(labels.astype(np.int64)),
        }
    return out


class _IDXDataset(Dataset):
    Options = ImageOptions
    fields = IMAGE_FIELDS
    index_fields = ("label",)
    classes = TEN_CLASSES

    def load(self, options, data_dir, graph):
        return load_idx_folder(self.name, pathlib.Path(data_dir) / self.folder, pathlib.Path(data_dir))

    def present(self, data_dir):
        folder = pathlib.Path(data_dir) / self.folder
        return all(find_idx(folder, n) is not None for n in IDX_NAMES)


@register
class MNIST(_IDXDataset):
    name = "mnist"
    folder = "mnist"
    description = "MNIST 28x28 digits (IDX files, gzipped or not)"


@register
class FashionMNIST(_IDXDataset):
    name = "fashion_mnist"
    folder = "fashion_mnist"
    description = "Fashion-MNIST 28x28 (IDX files, gzipped or not)"
