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


def _param_name(key: str) -> str:
    """``edge_modules.e0.weight`` -> ``edge 'e0' parameter 'weight'``."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] in ("edge_modules", "node_params"):
        return f"{'edge' if parts[0] == 'edge_modules' else 'node'} '{parts[1]}' parameter '{parts[2]}'"
    return f"parameter '{key}'"


def _shape(t) -> str:
    return "[" + ", ".join(str(int(d)) for d in t.shape) + "]"


def _init_error(message: str, where: Location | None) -> TrainError:
    return TrainError(Issue(("train", "init_from"), message, where))


def check_init_from(run_dir: str, where: Location | None) -> Path:
    """The run directory ``train.init_from`` names, if it holds a checkpoint."""
    path = Path(run_dir)
    if not path.is_dir():
        raise _init_error(f"no run directory {run_dir} to take the initial weights from", where)
    if not (path / NAME).exists():
        msg = f"{run_dir} holds no trained weights (no {NAME}): name a directory that pcgraph train wrote"
        raise _init_error(msg, where)
    return path


def init_weights(program, run_dir: str, where: Location | None) -> None:
    """Load the trained weights of the run in ``run_dir`` into ``program`` (only the
    weights: its optimiser and position are not read). A missing directory or
    checkpoint, or weights that do not fit the program's, is one TrainError."""
    path = check_init_from(run_dir, where)
    try:
        state = load(path / NAME)
    except TrainError as e:
        raise _init_error(f"{path / NAME}: {e.issues[0].message.split(';')[0]}", where) from None
    theirs, ours = state["model"], program.state_dict()
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    if missing or extra:
        if missing:
            what = f"this graph's {_param_name(missing[0])} is not there"
        else:
            what = f"its {_param_name(extra[0])} is not in this graph"
        raise _init_error(f"the weights in {path / NAME} do not fit this graph: {what}", where)
    for k, t in ours.items():
        if tuple(theirs[k].shape) != tuple(t.shape):
            msg = (
                f"the weights in {path / NAME} do not fit this graph: {_param_name(k)} is {_shape(theirs[k])} "
                f"there, {_shape(t)} here"
            )
            raise _init_error(msg, where)
    program.load_state_dict({k: theirs[k] for k in ours})
