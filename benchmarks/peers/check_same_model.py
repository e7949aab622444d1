"""Do pcgraph and a peer compute the same model? Energy and weight gradients after T
inference steps on identical weights and data, compared to 1e-4 relative, in float64.

Two halves, because the peers' environments hold jax and not torch:

    # with the project's Python (imports pcgraph from the repository):
    PYTHONPATH=. python benchmarks/peers/check_same_model.py --export ref.npz
    # inside a peer's environment (imports the peer, never pcgraph):
    benchmarks/peers/.venvs/pcx/bin/python benchmarks/peers/check_same_model.py --peer pcx --npz ref.npz

``run.sh`` runs both. The export holds pcgraph's initial weights, the bench batch and
pcgraph's numbers (``gradient: equilibrium``, ``schedule: sync``, SGD lr 0.1 on the
states). Conventions mapped here, explicitly:

* energy: pcgraph reports the batch mean of the per-sample total energy
  (sum over nodes of 1/2 |h - mu|^2 for the tanh layers, cross-entropy for the
  clamped categorical label, which is its KL energy for a one-hot target). pcx's
  energy function and FabricPC's ``graph_energy`` return the batch sum of the same
  per-sample terms (both have the 1/2 on the squared errors), so they are divided by
  the batch size.
* weight gradients: all three give the gradient of the batch mean (pcx via its
  documented ``scale_by=1/batch``, applied here; FabricPC's ``pc_weight_gradients``
  divides by the prediction count, which is the batch for one label per sample).
  Layouts: pcgraph and pcx store W as [out, in], FabricPC as [in, out] with a
  [1, out] bias; FabricPC's are transposed back.
* inference: all three start from a forward pass and take T plain SGD steps on each
  sample's own energy, all nodes at once (pcgraph ``schedule: sync``).
* FabricPC's cross-entropy clips the softmax at 1e-7 before the log; no probability
  of this batch comes near it, so the clip is inactive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOL = 1e-4


def rel_err(got, want) -> float:
    """max |got - want| / max |want| (a scale-free error for a whole array)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"shape {got.shape} against {want.shape}")
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(got - want))) / scale


def verdicts(peer: dict, ref: dict, tol: float = TOL) -> list[tuple[str, float, bool]]:
    """(quantity, relative error, passed) for every quantity the peer produced."""
    return [(k, e, e <= tol) for k, e in ((k, rel_err(peer[k], ref[k])) for k in sorted(peer))]


def peer_numbers(peer: str, data) -> dict:
    """The peer's energy (batch mean) after the forward init and after T steps, and its weight gradients."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import peer_models as pm

    weights = [(w.astype(np.float64), b.astype(np.float64)) for w, b in _weights(data)]
    x, y, T = data["x"].astype(np.float64), data["y"], int(data["T"])
    if float(data["state_lr"]) != pm.STATE_LR:
        raise ValueError(f"the reference used state lr {float(data['state_lr'])}, the peer models {pm.STATE_LR}")
    B = x.shape[0]
    if peer == "pcx":
        e0, _ = _pcx(pm, weights, x, y, 0)
        e, grads = _pcx(pm, weights, x, y, T)
        grads = [(gw / B, gb / B) for gw, gb in grads]
    elif peer == "fabricpc":
        structure, names = pm.fabricpc_structure(T=T)
        e0, e, grads = pm.fabricpc_infer(structure, names, weights, x, y, np.float64)
    else:
        raise ValueError(f"unknown peer {peer!r}")
    out = {"energy_init": e0 / B, f"energy_T{T}": e / B}
    for k, (gw, gb) in enumerate(grads):
        out[f"grad_W{k}"], out[f"grad_b{k}"] = gw, gb
    return out


def _pcx(pm, weights, x, y, T):
    import jax
    import jax.numpy as jnp
    import optax
    import pcx.utils as pxu

    model = pm.pcx_model(weights)
    infer, _ = pm.pcx_functions()
    optim_h = pxu.Optim(lambda: optax.sgd(pm.STATE_LR))
    e, g = infer(T, jnp.asarray(x), jax.nn.one_hot(jnp.asarray(y), weights[-1][0].shape[0], dtype=jnp.float64), model=model, optim_h=optim_h)
    return float(e), pm.pcx_grads_as_list(g, len(weights))


def _weights(data):
    n = len([k for k in data.files if k.startswith("W")])
    return [(data[f"W{k}"], data[f"b{k}"]) for k in range(n)]


def reference_numbers(data) -> dict:
    T = int(data["T"])
    out = {"energy_init": data["energy0"], f"energy_T{T}": data["energy"]}
    n = len([k for k in data.files if k.startswith("gW")])
    for k in range(n):
        out[f"grad_W{k}"], out[f"grad_b{k}"] = data[f"gW{k}"], data[f"gb{k}"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--export", metavar="NPZ", help="write pcgraph's weights, batch and reference numbers (project Python)")
    ap.add_argument("--peer", choices=("pcx", "fabricpc"), help="check this peer against --npz (inside its environment)")
    ap.add_argument("--npz", help="the file --export wrote")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.export:
        import pcgraph_side

        ref = pcgraph_side.export_reference(args.export)
        print(f"pcgraph reference written to {args.export}: energy {float(ref['energy0']):.6f} -> {float(ref['energy']):.6f} after T = {int(ref['T'])}")
        return 0
    if not (args.peer and args.npz):
        ap.error("give --export NPZ, or --peer and --npz")
    data = np.load(args.npz)
    ref = reference_numbers(data)
    ok = True
    for name, err, passed in verdicts(peer_numbers(args.peer, data), ref):
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {args.peer} {name}: relative error {err:.2e} (tolerance {TOL:g}, float64)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
