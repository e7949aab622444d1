"""The sources ``pcgraph query`` clamps nodes to (``--clamp NODE=SOURCE``: a data
split, a file, a literal, ``prior``) and the masks that clamp a node in part
(``--mask NODE=MASK``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..compile.query import PRIOR
from ..core.errors import DataError, Issue
from .query_files import image_geometry

SPLIT = re.compile(r"^(?P<split>[A-Za-z_]\w*)(?:\[(?P<a>\d*)(?P<colon>:)?(?P<b>\d*)\])?$")
FILE_TYPES = (".npy", ".pt", ".png", ".txt")
MASKS = ("left-half", "right-half", "top-half", "bottom-half", "random-half")


def fail(option: str, msg: str) -> DataError:
    return DataError(Issue((option,), msg))


@dataclass
class Source:
    text: str
    kind: str  # split | prior | value
    split: str | None = None
    index: slice | None = None
    value: torch.Tensor | None = None


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    node, sep, source = text.partition("=")
    if not sep or not node or not source:
        raise fail(option, f"expects NODE=VALUE, got '{text}'")
    return node.strip(), source.strip()


def load_file(path: Path, option: str, node: str) -> torch.Tensor:
    if not path.exists():
        raise fail(option, f"{node}={path}: no such file")
    try:
        if path.suffix == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        if path.suffix == ".pt":
            t = torch.load(path, map_location="cpu", weights_only=True)
            if not torch.is_tensor(t):
                raise ValueError("it does not hold a tensor")
            return t
        if path.suffix == ".png":
            from PIL import Image

            return torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0)
        return torch.from_numpy(np.atleast_1d(np.loadtxt(path)))
    except Exception as e:  # noqa: BLE001 - reported as one line
        raise fail(option, f"{node}={path}: cannot read it: {e}") from None


def parse_source(node: str, text: str, splits) -> Source:
    if text == PRIOR:
        return Source(text, "prior")
    m = SPLIT.match(text)
    if m and m["split"] in splits:
        a, b = m["a"], m["b"]
        if m["colon"]:
            index = slice(int(a) if a else None, int(b) if b else None)
        elif a:
            index = slice(int(a), int(a) + 1)
        else:
            index = slice(None)
        return Source(text, "split", m["split"], index)
    if Path(text).suffix in FILE_TYPES:
        return Source(text, "value", value=load_file(Path(text), "--clamp", node))
    try:
        value = json.loads(text)
        t = torch.as_tensor(value)
    except (ValueError, TypeError, RuntimeError):
        have = f"a split ({', '.join(splits)}), " if splits else ""
        raise fail(
            "--clamp",
            f"{node}={text}: '{text}' is not {have}a file ({', '.join(FILE_TYPES)}), a number or JSON list, or 'prior'",
        ) from None
    return Source(text, "value", value=t)


def make_mask(program, node: str, text: str, n: int, data_shape, seed: int) -> torch.Tensor:
    """A boolean mask over the node's units (True = observed)."""
    shape = program.nodes[node].shape
    if text not in MASKS:
        t = load_file(Path(text), "--mask", node) if Path(text).suffix in FILE_TYPES else None
        if t is None:
            raise fail(
                "--mask",
                f"{node}={text}: '{text}' is not one of {', '.join(MASKS)} or a file ({', '.join(FILE_TYPES)})",
            )
        return t != 0
    if text == "random-half":
        g = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=g) < 0.5
    geo = image_geometry(program, node, data_shape)
    if geo is None:
        raise fail(
            "--mask",
            f"{node}={text}: node '{node}' (shape {list(shape)}) is not an image, so '{text}' has no meaning: use "
            f"random-half or a mask file",
        )
    c, h, w = geo
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    keep = {
        "left-half": cols < w // 2, "right-half": cols >= w // 2, "top-half": rows < h // 2,
        "bottom-half": rows >= h // 2
    }[text]
    return keep.expand(c, h, w).reshape(shape)
