"""Fake source archives and a fake network for the fetch tests: nothing real is downloaded."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import tarfile

import numpy as np
import requests

from .formats import fake_mnist, idx_bytes

STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
DNS_FAILURE = (
    "HTTPSConnectionPool(host='{host}', port=443): Max retries exceeded with url: /x (Caused by "
    "NameResolutionError(\"<urllib3.connection.HTTPSConnection object at 0x7f00>: Failed to resolve '{host}' ([Errno "
    "-2] Name or service not known)\"))"
)


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def idx_payloads(seed=0, n_train=8, n_test=4):
    arrays = fake_mnist(np.random.default_rng(seed), n_train, n_test)
    return arrays, dict(zip(STEMS, (idx_bytes(a) for a in arrays)))


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


def fake_deb(files: dict) -> bytes:
    """A .deb whose data.tar.xz holds {installed path: bytes}."""
    data_tar = io.BytesIO()
    with tarfile.open(fileobj=data_tar, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return ar({"debian-binary": b"2.0\n", "control.tar.xz": lzma.compress(b""), "data.tar.xz": data_tar.getvalue()})


def npm_idx_tarball(payloads: dict) -> bytes:
    members = {f"package/data/{stem}": body for stem, body in payloads.items()}
    members["package/package.json"] = b"{}"
    return tgz(members)


def gz(b: bytes) -> bytes:
    return gzip.compress(b, mtime=0)


class Network:
    """pooch's HTTP downloader answers only the URLs in ``served``; every answer is logged."""

    def __init__(self):
        self.served: dict[str, bytes] = {}
        self.log: list[str] = []

    def __call__(self, downloader, url, output_file, pooch_obj, check_only=False):
        self.log.append(url)
        if url not in self.served:
            host = url.split("/")[2]
            raise requests.exceptions.ConnectionError(DNS_FAILURE.format(host=host))
        with open(output_file, "wb") as out:
            out.write(self.served[url])
