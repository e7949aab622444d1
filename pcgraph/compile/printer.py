"""A readable listing of a Program: per node its prediction and its energy term."""

from __future__ import annotations



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
