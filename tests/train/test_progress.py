"""The progress bar on terminals that report a width and on ones that report none."""

import io
import os
import struct

import pytest

from pcgraph.train.progress import FALLBACK_COLUMNS, Progress

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")


def _drawn(columns: int) -> str:
    """What one epoch of 10 batches draws on a pseudo-terminal ``columns`` wide."""
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    stream = io.TextIOWrapper(os.fdopen(slave, "wb", buffering=0), write_through=True)
    try:
        p = Progress(stream=stream)
        p.start_epoch(1, 2, 10)
        for i in range(10):
            p.update(i, "energy", 1.5)
        p.bar.refresh()
        p.end_epoch()
        os.set_blocking(master, False)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode("utf-8", "replace")
    finally:
        stream.close()
        os.close(master)


def test_a_terminal_of_width_zero_still_gets_a_bar(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    text = _drawn(0)
    assert "epoch 1/2" in text and "10/10" in text and "energy 1.5" in text
    widest = max(len(line) for line in text.replace("\r", "\n").split("\n"))
    assert widest == FALLBACK_COLUMNS


def test_columns_sets_the_width_where_the_terminal_gives_none(monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    widest = max(len(line) for line in _drawn(0).replace("\r", "\n").split("\n"))
    assert widest == 70


def test_a_terminal_that_reports_its_width_is_followed(monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")  # the terminal's own width wins
    text = _drawn(60)
    assert "10/10" in text
    widest = max(len(line) for line in text.replace("\r", "\n").split("\n"))
    assert 50 <= widest <= 60  # tqdm may leave the last column free
