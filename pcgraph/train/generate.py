"""Token generation by repeated queries: clamp the token input to the sequence so far,
infer the next-token distribution, pick a token (greedy, or sampled at a
temperature), append it, repeat. The window slides once the sequence is longer than
the node; a shorter one is padded at the end, which a causal model never looks at."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.errors import DataError, Issue
from . import checkpoint as ckpt


def token_nodes(program, node: str) -> tuple[str, str]:
    """(token input, next-token node): ``node`` must be a token input (dtype long,
    shape [L]) and exactly one categorical node of shape [L, V] must be free."""
    info = program.nodes[node]
    if info.role != "input" or info.dtype != "long" or len(info.shape) != 1:
        msg = f"needs a token input (dtype long, shape [L]) clamped to the prompt; '{node}' is not one"
        raise DataError(Issue(("--generate",), msg))
    L = info.shape[0]
    outs = [
        n
        for n in program.targets
        if program.families[n].classes and program.nodes[n].shape[:1] == (L,) and len(program.nodes[n].shape) == 2
    ]
    if len(outs) != 1:
        msg = f"needs one categorical target of shape [{L}, vocab] to read the next token from; found {len(outs)}"
        raise DataError(Issue(("--generate",), msg))
    return node, outs[0]


def generate(
    program, node: str, prompt: torch.Tensor, count: int, *, temperature: float = 0.0, steps: int | None = None,
    lr: float | None = None
) -> torch.Tensor:
    """``prompt`` [B, P] token ids -> [B, P + count]: greedy (temperature 0) or sampled."""
    tokens, out = token_nodes(program, node)
    L = program.nodes[tokens].shape[0]
    seq = prompt.long().reshape(prompt.shape[0], -1).cpu()
    if seq.shape[1] == 0:
        raise DataError(Issue(("--clamp",), f"the prompt for '{tokens}' holds no tokens"))
    for _ in range(count):
        window = seq[:, -L:]
        pos = window.shape[1] - 1
        padded = torch.zeros(seq.shape[0], L, dtype=torch.long)
        padded[:, : window.shape[1]] = window
        r = program.query({tokens: padded}, [out], batch=seq.shape[0], steps=steps, lr=lr)
        p = r.values[out][:, pos].double().cpu()
        if temperature <= 0:
            nxt = p.argmax(-1)
        else:
            logits = torch.log(p.clamp_min(1e-30)) / temperature
            nxt = torch.multinomial(torch.softmax(logits, -1), 1).squeeze(-1)
        seq = torch.cat([seq, nxt[:, None]], 1)
    return seq


def generate_run(
    run_dir, program, sources, data, split, idx, count, temperature, steps, lr, seed, out, decode, samples=None
) -> dict:
    """What ``pcgraph query --generate`` does: continue the clamped token input."""
    longs = [k for k in sources if program.nodes[k].dtype == "long"]
    if len(longs) != 1:
        msg = "needs the prompt: clamp one token input (e.g. --clamp tokens=test[0:4] or --clamp tokens='[3, 1, 4]')"
        raise DataError(Issue(("--generate",), msg))
    node = longs[0]
    s = sources[node]
    if s.kind == "split":
        prompt = data[split][program.nodes[node].bind][idx]
    elif s.kind == "value":
        prompt = s.value if s.value.dim() > 1 else s.value.reshape(1, -1).expand(samples or 1, -1)
    else:
        raise DataError(Issue(("--clamp",), f"{node}={s.text}: --generate needs token ids for '{node}'"))
    torch.manual_seed(seed)
    seq = generate(program, node, prompt, count, temperature=temperature, steps=steps, lr=lr)
    P = prompt.reshape(prompt.shape[0], -1).shape[1]
    report = {
        "run": str(run_dir), "clamp": {k: v.text for k, v in sources.items()}, "generate": count,
        "temperature": temperature, "prompt_length": P, "generated": seq.tolist()
    }
    if decode is not None:
        report["generated_text"] = generated_lines(report, decode)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write_text(out / "generated.txt", "\n".join(generated_lines(report, decode)) + "\n")
        ckpt.atomic_write_text(out / "query.json", json.dumps(report, indent=1))
        report["files"] = ["generated.txt"]
    return report


def generated_lines(report: dict, decode=None) -> list[str]:
    """One line per sequence: the prompt, then '|' and the generated tokens."""
    P = report["prompt_length"]
    show = (lambda ids: decode(ids)) if decode is not None else (lambda ids: " ".join(map(str, ids)))
    return [f"{show(s[:P])} | {show(s[P:])}" for s in report["generated"]]
