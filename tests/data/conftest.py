"""Data tests never reach the internet: pooch's HTTP downloader answers only 127.0.0.1."""

import urllib.parse

import pooch
import pytest
import requests

from .fetchfakes import Network


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    real = pooch.HTTPDownloader.__call__

    def guarded(self, url, *args, **kwargs):
        if urllib.parse.urlparse(url).hostname != "127.0.0.1":
            raise requests.exceptions.ConnectionError(
                f"{url}: the tests do not reach the internet ([Errno -3] blocked by the test suite)"
            )
        return real(self, url, *args, **kwargs)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", guarded)


@pytest.fixture
def network(monkeypatch):
    """pooch's HTTP downloader answers only the URLs put in ``network.served``."""
    net = Network()
    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", lambda self, *a, **k: net(self, *a, **k))
    return net
