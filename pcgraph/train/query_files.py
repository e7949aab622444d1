"""The files ``pcgraph query --out DIR`` writes beside query.json: an image grid per
image-shaped node (NODE.png), top-k tokens per token node (NODE.txt), a table per
vector node (NODE.csv), and the energy per node before and after inference
(energy.csv)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..families.values import plain_table

#: examples drawn in a grid, and per row
GRID = 64
COLS = 8
#: token examples shown in NODE.txt
TEXT_EXAMPLES = 4


def image_geometry(program, node: str, data_shape=None, run_program=None):
    """(channels, height, width) when ``node`` holds images, else None: the shape of
    the image data it binds, else its own 2-D or 3-D shape, else a square vector bound
    to an image field."""
    info = program.nodes[node]
    fam = program.families.get(node)
    if (fam is not None and not fam.pictured) or info.dtype == "long":
        return None
    size = math.prod(info.shape)
    for shape in (tuple(data_shape) if data_shape else None, info.shape):
        if shape is None or math.prod(shape) != size:
            continue
        if len(shape) == 2:
            return (1,) + tuple(shape)
        if len(shape) == 3 and shape[0] in (1, 3):
            return tuple(shape)
    bind = (run_program or program).nodes[node].bind
    side = math.isqrt(size)
    if bind is not None and "image" in bind and side * side == size:
        return (1, side, side)
    return None


def image_grid(images: torch.Tensor, geo, scale: int | None = None) -> np.ndarray:
    """[N, ...] images -> an [H, W(, 3)] uint8 grid, values clipped to [0, 1]."""
    c, h, w = geo
    x = images[:GRID].detach().cpu().double().reshape(-1, c, h, w).nan_to_num(0.5).clamp(0.0, 1.0).numpy()
    n = x.shape[0]
    cols = min(COLS, n)
    rows = -(-n // cols)
    scale = scale or max(1, 32 // max(h, w))
    pad = 1
    grid = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 0.5)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = x[i]
    grid = grid.repeat(scale, 1).repeat(scale, 2)
    img = (grid * 255).round().astype(np.uint8)
    return img[0] if c == 1 else img.transpose(1, 2, 0)


def save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def _tok(i: int, decode) -> str:
    return repr(decode([i])) if decode is not None else str(i)


def _csv(values: torch.Tensor, header: list[str]) -> str:
    flat = values.detach().cpu().double().reshape(values.shape[0], -1).numpy()
    lines = [",".join(["example"] + header)]
    for i, row in enumerate(flat):
        lines.append(",".join([str(i)] + [f"{v:.6g}" for v in row]))
    return "\n".join(lines) + "\n"


def write_files(out: Path, report: dict, acc, program, run_program, field_shape: dict, decode=None) -> list[str]:
    """Write the per-node files and energy.csv; return their names. ``program`` is
    the one the query ran on, ``run_program`` the run's own (its binds)."""
    written = []
    for name in report["nodes"]:
        value = acc.kept[(name, "value")]
        fam = program.families.get(name)
        geo = image_geometry(program, name, field_shape.get(name), run_program)
        text = fam.text(value, decode) if fam is not None else None
        if geo is not None:
            written += _pictures(out, name, value, acc, geo)
        elif program.nodes[name].dtype == "long":
            rows = [
                " ".join(_tok(int(t), decode) for t in r)
                for r in value[:TEXT_EXAMPLES].reshape(min(TEXT_EXAMPLES, value.shape[0]), -1)
            ]
            (out / f"{name}.txt").write_text(f"# {name}: tokens\n" + "\n".join(rows) + "\n")
            written.append(f"{name}.txt")
        elif text is not None:
            (out / f"{name}.txt").write_text(f"# {name}: {text}")
            written.append(f"{name}.txt")
        else:
            header, table = fam.table(value) if fam is not None else plain_table(value)
            (out / f"{name}.csv").write_text(_csv(table, header))
            written.append(f"{name}.csv")
    lines = ["node,before,after"] + [f"{k},{v['before']:.6g},{v['after']:.6g}" for k, v in report["energy"].items()]
    (out / "energy.csv").write_text("\n".join(lines) + "\n")
    written.append("energy.csv")
    return written


def _pictures(out: Path, name: str, value, acc, geo) -> list[str]:
    """NODE.png, and the truth, the observed part and the prediction where the query has them."""
    save_png(image_grid(value, geo), out / f"{name}.png")
    written = [f"{name}.png"]
    if (name, "truth") in acc.kept:
        save_png(image_grid(acc.kept[(name, "truth")].to(value.dtype), geo), out / f"{name}.truth.png")
        written.append(f"{name}.truth.png")
    if (name, "mask") in acc.kept:  # the observed part: unobserved units grey
        shown = torch.where(acc.kept[(name, "mask")], value, torch.full_like(value, 0.5))
        save_png(image_grid(shown, geo), out / f"{name}.observed.png")
        written.append(f"{name}.observed.png")
    if (name, "prediction") in acc.kept:
        save_png(image_grid(acc.kept[(name, "prediction")], geo), out / f"{name}.prediction.png")
        written.append(f"{name}.prediction.png")
    return written
