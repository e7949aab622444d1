"""``cifar10``: the python version's pickled batch files.

Each batch file is a pickled dict {b"data": uint8 array [N, 3072] (1024 red, then
1024 green, then 1024 blue values of a 32x32 image, row-major), b"labels": [N ints],
...}. The files are read with a restricted unpickler that can only rebuild dicts,
lists, strings, numbers and numpy arrays: a pickle naming any other class or
function is refused.
"""

from __future__ import annotations

import importlib
import io
import pathlib
import pickle


from ...core.lazy import np, torch
from ..dataset import IMAGE_FIELDS, TEN_CLASSES, Dataset, ImageOptions, data_error, fetch_hint, register

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
SUBDIR = "cifar-10-batches-py"


class UnsafePickle(pickle.UnpicklingError):
    pass


def _numpy_globals() -> dict:
    """The few numpy callables that rebuild an ndarray, under both module names
    numpy pickles them with (numpy.core before 2.0, numpy._core since)."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:  # pragma: no cover - numpy < 2
        multiarray = importlib.import_module("numpy.core.multiarray")
        numeric = importlib.import_module("numpy.core.numeric")
    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy._core", "numpy.core"):
        out[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            out[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


def _encode(text, encoding="latin1"):
    """What protocol-2 pickles written by Python 3 use for bytes objects."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickle(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed for numpy arrays."""

    _allowed: dict | None = None

    def find_class(self, module, name):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _numpy_globals()
            RestrictedUnpickler._allowed[("_codecs", "encode")] = _encode
        try:
            return RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise UnsafePickle(
                f"refusing to load global '{module}.{name}' (only plain data and numpy arrays are allowed)"
            ) from None


def restricted_load(data: bytes):
    """Unpickle ``data`` (bytes keys stay bytes, as for the Python 2 CIFAR files)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def read_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) from one batch file."""
    try:
        obj = restricted_load(path.read_bytes())
    except UnsafePickle as e:
        raise data_error(f"cifar10: {path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise data_error(f"cifar10: {path}: not a readable CIFAR-10 batch file: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise data_error(f"cifar10: {path}: expected a pickled dict, got {type(obj).__name__}")
    get = lambda key: obj[key] if key in obj else obj.get(key.decode())  # noqa: E731
    data, labels = get(b"data"), get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise data_error(f"cifar10: {path}: b'data' must be a uint8 array [N, 3072], got {desc}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        y = None
    if y is None or y.ndim != 1 or y.shape[0] != data.shape[0]:
        raise data_error(f"cifar10: {path}: b'labels' must list {data.shape[0]} integer labels")
    return data.reshape(-1, 3, 32, 32), y


def find_batches(data_dir: pathlib.Path) -> pathlib.Path | None:
    root = pathlib.Path(data_dir) / "cifar10"
    for folder in (root / SUBDIR, root):
        if all((folder / n).is_file() for n in TRAIN_BATCHES + TEST_BATCHES):
            return folder
    return None


@register
class CIFAR10(Dataset):
    name = "cifar10"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    index_fields = ("label",)
    classes = TEN_CLASSES
    folder = "cifar10"
    description = "CIFAR-10 32x32x3 (the python batch files)"

    def load(self, options, data_dir, graph):
        data_dir = pathlib.Path(data_dir)
        folder = find_batches(data_dir)
        if folder is None:
            root = data_dir / "cifar10"
            names = ", ".join(TRAIN_BATCHES + TEST_BATCHES)
            raise data_error(
                f"cifar10: no batch files in {root / SUBDIR} or {root} (looked for {names}); "
                f"{fetch_hint(self.name, data_dir)}"
            )
        out = {}
        for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
            parts = [read_batch(folder / n) for n in names]
            x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
            y = np.concatenate([p[1] for p in parts])
            out[split] = {"image": torch.from_numpy(x), "label": torch.from_numpy(y)}
        return out

    def present(self, data_dir):
        return find_batches(pathlib.Path(data_dir)) is not None
