"""Checkpoints: plain tensors and numbers only (``torch.load(weights_only=True)``),
written atomically (temporary file, fsync, rename) so a crash or kill never leaves a
half-written checkpoint in place of the last good one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.errors import Issue, Location, TrainError

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


#: what every checkpoint holds (Trainer.state_dict)
KEYS = ("model", "optimizer", "epoch", "batch", "step", "acc", "rng", "method", "energy")


def load(path: Path, map_location="cpu") -> dict:
    """The checkpoint at ``path``; a missing, empty or unreadable one is a TrainError of
    one sentence: what is wrong and what to do."""
    path = Path(path)
    where = Location(str(path))
    fresh = f"train anew: pcgraph train {path.parent / 'spec.resolved.yaml'} --out NEW_DIR"
    if not path.exists():
        raise TrainError(Issue(None, f"no checkpoint: the run stopped before saving one; {fresh}", where))
    if path.stat().st_size == 0:
        raise TrainError(Issue(None, f"the checkpoint is empty (0 bytes); restore it from a copy, or {fresh}", where))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - any failure to read means the same to the user
        state = None
    if not isinstance(state, dict) or any(k not in state for k in KEYS):
        msg = f"the checkpoint is damaged or not pcgraph's; restore it from a copy, or {fresh}"
        raise TrainError(Issue(None, msg, where))
    return state
