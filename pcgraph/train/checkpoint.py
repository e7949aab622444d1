"""Checkpoints: plain tensors and numbers only (``torch.load(weights_only=True)``),
written atomically (temporary file, fsync, rename) so a crash or kill never leaves a
half-written checkpoint in place of the last good one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = 1
NAME = "checkpoint.pt"


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename over it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def save(path: Path, payload: dict) -> None:
    payload = dict(payload, format=FORMAT)
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load(path: Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)
