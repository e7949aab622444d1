"""Figures of trained MNIST VAEs: reconstructions, samples from the prior and a
latent interpolation, one PNG each per run.

    python experiments/vae_figures.py RUN_DIR [RUN_DIR ...] --data-dir DATA --out docs/results
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pcgraph.data import load_dataset
from pcgraph.train.run import load_run, method_tag


def latent_node(program):
    return next(n for n in program.order if n in program.families and program.families[n].samples)


def decode(program, z_mean, image_shape):
    """Images from latent means (no sampling noise)."""
    zname = latent_node(program)
    n = z_mean.shape[0]
    state = torch.cat([z_mean, torch.zeros_like(z_mean)], -1)  # (u, log-variance 0)
    dummy = {program.nodes[i].bind: torch.zeros((n,) + program.nodes[i].shape) for i in program.inputs}
    out = program.forward(dummy, fixed={zname: state}, noise={zname: torch.zeros_like(z_mean)})
    target = program.targets[0]
    return out[target].reshape(n, *image_shape)


def encode(program, images):
    zname = latent_node(program)
    bind = program.nodes[program.inputs[0]].bind
    out = program.forward({bind: images}, noise={zname: torch.zeros(images.shape[0], program.nodes[zname].shape[-1])})
    return out[zname][:, : program.nodes[zname].shape[-1]]


def grid(rows, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, c = len(rows), len(rows[0])
    fig, axes = plt.subplots(r, c, figsize=(c * 0.9, r * 0.95 + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            axes[i][j].imshow(img.squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
            axes[i][j].axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="docs/results")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for run in args.runs:
        spec, program = load_run(run)
        label = f"{spec.name} {method_tag(spec.train)}"
        tag = Path(run).name
        data = load_dataset(spec.data, program.graph, args.data_dir)["test"]
        images = data["image"][:10].reshape(10, -1)
        shape = (28, 28)
        zdim = program.nodes[latent_node(program)].shape[-1]
        with torch.no_grad():
            u = encode(program, images)
            recon = decode(program, u, shape)
            grid([list(images.reshape(10, *shape)), list(recon)], out / f"vae-{tag}-reconstructions.png", f"{label}: test images (top) and reconstructions")
            g = torch.Generator().manual_seed(0)
            samples = decode(program, torch.randn(30, zdim, generator=g), shape)
            grid([list(samples[i * 10 : (i + 1) * 10]) for i in range(3)], out / f"vae-{tag}-samples.png", f"{label}: samples from the prior N(0, I)")
            pairs = [(0, 1), (2, 3), (4, 5)]
            rows = []
            for a, b in pairs:
                ts = torch.linspace(0, 1, 10).unsqueeze(1)
                rows.append(list(decode(program, (1 - ts) * u[a] + ts * u[b], shape)))
            grid(rows, out / f"vae-{tag}-interpolation.png", f"{label}: decoding along the line between two encoded test images")
        print(f"{run}: figures in {out}")


if __name__ == "__main__":
    main()
