"""Readable listings of a Program: per node its prediction and its energy term
(``pcgraph compile --print``), and per linear edge its GEMM kernels (``--explain``)."""

from __future__ import annotations

from .kernels import PRODUCTS, Timing, edge_rows, linear_edges, running, time_product, uses_per_version, widths


def _edge_expr(prog, e) -> str:
    mod = prog.transforms[e.name]
    args = [f"x_{s}" if prog.nodes[s].role == "input" else f"v_{s}" for s in e.sources]
    body = mod.describe(args)
    act = prog.acts[e.name].name
    expr = body if act == "identity" else f"{act}({body})"
    tag = f"[{e.name}{' shares ' + e.share if e.share else ''}]"
    return f"{expr} {tag}"


def listing(prog) -> str:
    g = prog.graph
    n_params = sum(p.numel() for p in prog.parameters())
    head = (
        f"program {g.name}: energy {'F_KL' if prog.kl else 'F (standard PC)'}, {n_params:,} parameters, "
        f"{str(prog.dtype).replace('torch.', '')} on {prog.device}"
    )
    lines = [head, ""]
    for n in prog.order:
        info = g.nodes[n]
        loc = str(info.location)
        if info.role == "input":
            lines.append(f"{n}  (input, clamped to batch.{info.bind}; {loc})")
            lines.append(f"    x_{n} = batch.{info.bind}   shape {list(info.shape)}")
            lines.append("")
            continue
        fam = prog.families[n]
        clamped = info.role == "target"
        role = f"target, clamped to batch.{info.bind} while training" if clamped else "latent"
        lines.append(f"{n}  ({info.family}, {role}; {loc})")
        if prog.in_edges[n]:
            terms = [_edge_expr(prog, e) for e in prog.in_edges[n]]
            lines.append(f"    μ_{n} = " + "\n          + ".join(terms))
            lines.append(f"    E_{n} = {fam.describe('x_' + n, 'μ_' + n, clamped)}")
        if info.prior is not None:
            p = info.prior
            what = "N(0, 1)" if p.type == "standard_normal" else f"N({p.mean:g}, {p.variance:g})"
            lines.append(f"    + prior {what} on x_{n}")
        if prog.out_edges[n]:
            lines.append(f"    children see v_{n} = {fam.describe_visible('x_' + n)}")
        lines.append("")
    lines.append("F = Σ_nodes E (per sample); energy() = batch mean of F")
    return "\n".join(lines)


def _cell(name: str, t: Timing, uses: float, runs: bool) -> str:
    if t.seconds is None:
        return f"{name} ({t.error})"
    reorder = f" (reorder {t.pack * 1e3:.2f}/{uses})" if t.pack else ""
    return f"{name} {t.cost(uses) * 1e3:.3f}{reorder}" + ("*" if runs else "")


def explain_kernels(prog) -> str:
    """One line per linear edge: its shape, every candidate's time per product, and
    (starred) the one it runs. Times what was not timed yet."""
    cfg = prog.train_cfg
    uses = uses_per_version(cfg)
    dtype = str(prog.dtype).replace("torch.", "")
    lines = [
        f"GEMM kernels (train.kernels: {cfg.kernels}; {dtype} on {prog.device}; fastest ms per call, a reorder shared "
        f"by {uses} calls; * runs)"
    ]
    for e, mod in linear_edges(prog):
        rows, n_out, runs = edge_rows(prog, mod), mod.out_shape[-1], running(mod)
        parts = []
        for p in PRODUCTS:
            sizes = widths(mod, p)
            for k, n in enumerate(sizes):
                times = time_product(p, rows, n, n_out, prog.dtype, prog.device)
                label = p if len(sizes) == 1 else f"{p}[{k}]"
                parts.append(
                    f"{label}: " + ", ".join(_cell(name, t, uses, name == runs[p][k]) for name, t in times.items())
                )
        lines.append(
            f"  {' + '.join(e.sources)} -> {e.target} [{rows} x {sum(mod.splits)}] -> {n_out}: " + "; ".join(parts)
        )
    if len(lines) == 1:
        lines.append("  (no linear edges)")
    return "\n".join(lines)
