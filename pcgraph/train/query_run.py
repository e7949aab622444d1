"""``pcgraph query``: ask a trained run questions by clamping nodes and inferring the rest.

Sources (``--clamp NODE=SOURCE``):

* a data split with an optional index range: ``test``, ``test[0:16]``, ``train[5]``
  (the node's bound field; a latent node binds none);
* a file: ``.npy``, ``.pt`` (a tensor), ``.png`` (a grey image, scaled to [0, 1]),
  ``.txt`` (numbers, one example per line);
* a literal: ``3`` (e.g. a class index) or a JSON list;
* ``prior``: a draw from the node's prior.

Masks (``--mask NODE=MASK``) clamp a node in part: ``left-half``, ``right-half``,
``top-half``, ``bottom-half`` (of the node's image), ``random-half`` (seeded), or a
file of 0/1 values (1 = observed). Examples from a split run in batches; metrics use
all of them, the JSON keeps the values of the first ``max_values``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..compile.query import PRIOR, check_nodes
from ..data import text_tokenizer
from ..families.values import score_values
from . import checkpoint as ckpt
from .loading import load_data
from .generate import generated_lines, generate_run
from .query_files import write_files
from .query_sources import SPLIT, fail, make_mask, parse_assignment, parse_source
from .query_values import checked_value, takes_indices
from .run import load_run, run_data_dir

#: at most about this many numbers per node in query.json
VALUE_NUMBERS = 20000


class _Acc:
    """Sums over batches, and the first ``limit`` examples of each tensor."""

    def __init__(self, limit: int):
        self.limit = limit
        self.sums: dict = {}
        self.kept: dict = {}

    def add(self, key, value: float, count: int) -> None:
        s, c = self.sums.get(key, (0.0, 0))
        self.sums[key] = (s + float(value), c + count)

    def mean(self, key):
        s, c = self.sums.get(key, (0.0, 0))
        return s / c if c else None

    def keep(self, key, t: torch.Tensor) -> None:
        have = self.kept.get(key)
        per = max(1, t[0].numel()) if t.dim() else 1
        limit = max(1, min(self.limit, VALUE_NUMBERS // per))  # big nodes keep fewer examples
        room = limit - (0 if have is None else have.shape[0])
        if room > 0:
            t = t[:room].detach().cpu()
            self.kept[key] = t if have is None else torch.cat([have, t])


def _metrics(acc: _Acc, name: str, fam, value: torch.Tensor, truth: torch.Tensor, prefix: str = "", mask=None) -> None:
    """Add the scores of ``value`` against ``truth`` by the node's family (``fam``; None
    for an input: the families' default)."""
    scores = fam.score(value, truth, mask=mask) if fam is not None else score_values(value, truth, mask)
    for key, (total, count) in scores.items():
        acc.add((name, prefix + key), total, count)


def query_run(
    run_dir, clamps=(), infer=(), masks=(), *, steps=None, lr=None, samples=None, out=None, device=None, data_dir=None,
    batch_size=None, seed=0, max_values=64, decode=None, generate=None, temperature=0.0
) -> dict:
    """What ``pcgraph query`` does; returns the query.json content (and writes it,
    with images, token lists and tables, to ``out`` when given). ``generate``: that
    many tokens continue the clamped token input (greedy, or sampled at ``temperature``)."""
    spec, program = load_run(run_dir, device)
    data_dir = run_data_dir(Path(run_dir), data_dir)
    pairs = [parse_assignment(c, "--clamp") for c in clamps]
    if not pairs:
        raise fail("--clamp", "give at least one --clamp NODE=SOURCE (e.g. --clamp image=test[0:16], --clamp z=prior)")
    data = None
    if spec.data is not None and any(SPLIT.match(s) and s != PRIOR for _, s in pairs):
        data = load_data(spec.data, program.graph, data_dir)
    sources = {node: parse_source(node, s, list(data) if data else []) for node, s in pairs}
    check_nodes(program, list(sources) + list(infer))
    for node, s in sources.items():
        if s.kind == "value" and not (generate and program.nodes[node].dtype == "long"):  # a prompt: any length
            s.value = checked_value(program, node, s.text, s.value, takes_indices(spec, program, node))
    split, idx, n, bs = _examples(spec, program, sources, data, samples, batch_size)
    binds = {m: program.nodes[m].bind for m in program.nodes} if data is not None and split is not None else {}
    field_shape = {node: tuple(data[split][b].shape[1:]) for node, b in binds.items() if b in data[split]}
    if decode is None:
        decode = _text_decoder(spec, data_dir)
    if generate:
        return generate_run(
            run_dir, program, sources, data, split, idx, generate, temperature, steps, lr, seed, out, decode, samples
        )
    mask_of = {}
    for text in masks:
        node, m = parse_assignment(text, "--mask")
        if node not in sources:
            raise fail(
                "--mask", f"{node}={m}: the node needs a value to be clamped in part: add --clamp {node}=SOURCE"
            )
        mask_of[node] = (m, make_mask(program, node, m, n, field_shape.get(node), seed))
    torch.manual_seed(seed)
    acc = _Acc(max_values)
    result, reverted = None, 0
    for start in range(0, n, bs):
        rows = slice(start, min(n, start + bs))
        clamp = _clamp_rows(program, sources, data, split, idx, rows, n)
        result = program.query(
            clamp, list(infer) or None, masks={k: v for k, (_, v) in mask_of.items()}, batch=rows.stop - start,
            steps=steps, lr=lr
        )
        reverted += result.reverted
        _collect(acc, result, program, sources, data, split, idx, rows)
    report = _report(run_dir, n, sources, reverted, split, acc, result, mask_of)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report["files"] = write_files(out, report, acc, result.program, program, field_shape, decode)
        ckpt.atomic_write_text(out / "query.json", json.dumps(report, indent=1))
    return report


def _examples(spec, program, sources, data, samples, batch_size):
    """(split, example indices, count, batch size): every split source must name the
    same examples; without one, ``samples`` or what the values or a prior imply."""
    picked = {(s.split, s.index.start, s.index.stop) for s in sources.values() if s.kind == "split"}
    if len(picked) > 1:
        raise fail(
            "--clamp",
            f"the split sources name different examples "
            f"({', '.join(s.text for s in sources.values() if s.kind == 'split')}): clamp every node from the same "
            f"split and range",
        )
    if not picked:
        n = samples or _rows(program, sources) or (16 if any(s.kind == "prior" for s in sources.values()) else 1)
        return None, None, n, batch_size or n
    src = next(s for s in sources.values() if s.kind == "split")
    total = next(iter(data[src.split].values())).shape[0]
    idx = torch.arange(total)[src.index]
    if idx.numel() == 0:
        raise fail("--clamp", f"'{src.text}' selects no examples (the {src.split} split has {total})")
    for node, s in sources.items():
        if s.kind == "split" and program.nodes[node].bind is None:
            raise fail(
                "--clamp",
                f"{node}={s.text}: node '{node}' binds no data field, so it cannot take '{s.text}': give a file, a "
                f"literal or 'prior'",
            )
    return src.split, idx, idx.numel(), batch_size or spec.data.eval_batch_size or spec.data.batch_size


def _clamp_rows(program, sources, data, split, idx, rows, n) -> dict:
    clamp = {}
    for node, s in sources.items():
        if s.kind == "prior":
            clamp[node] = PRIOR
        elif s.kind == "split":
            clamp[node] = data[split][program.nodes[node].bind][idx[rows]]
        else:
            clamp[node] = s.value[rows] if _is_batch(program, node, s.value, n) else s.value
    return clamp


def _report(run_dir, n, sources, reverted, split, acc, result, mask_of) -> dict:
    q = result.program
    report = {
        "run": str(run_dir), "examples": n, "steps": result.steps, "predicted": list(result.predicted),
        "clamp": {k: s.text for k, s in sources.items()}, "reverted": reverted
    }
    if split is not None:
        report["split"] = split
    report["nodes"] = _node_report(acc, q, result, sources, mask_of, n)
    energies = {
        k: {"before": acc.mean((k, "energy_before")), "after": acc.mean((k, "energy_after"))} for k in q.energy_nodes
    }
    report["energy"] = energies
    report["energy_total"] = {w: sum(e[w] for e in energies.values()) for w in ("before", "after")}
    return report


def _text_decoder(spec, data_dir):
    """``decode(ids) -> str`` for the ``text`` dataset's tokenizer, else None (ids shown)."""
    if spec.data is None or spec.data.dataset != "text":
        return None
    try:
        return text_tokenizer(spec.data.options, data_dir).decode
    except Exception:  # noqa: BLE001 - without the tokenizer, token ids are shown
        return None


def _rows(program, sources) -> int | None:
    for node, s in sources.items():
        if s.kind == "value" and s.value.dim() > 0 and _is_batch(program, node, s.value, s.value.shape[0]):
            return s.value.shape[0]
    return None


def _is_batch(program, node: str, value: torch.Tensor, n: int) -> bool:
    """Whether ``value`` holds one row per example (else it is one example for all)."""
    info = program.nodes[node]
    if value.dim() == 0 or value.shape[0] != n:
        return False
    per = math.prod(info.shape)
    if info.dtype != "long" and not value.is_floating_point() and tuple(value.shape[1:]) == info.shape[:-1]:
        return True  # class indices
    return value[0].numel() in (per, math.prod(info.param_shape)) and value.numel() != per


def _collect(acc: _Acc, r, program, sources, data, split, idx, rows) -> None:
    """Add one batch's energies, values and metrics (binds come from the run's own
    program: the query program may have freed an input of its bind)."""
    q = r.program
    B = r.state.batch_size
    for k in q.energy_nodes:
        acc.add((k, "energy_before"), r.energy_before[k].sum(), B)
        acc.add((k, "energy_after"), r.energy_after[k].sum(), B)
    masks_by_bind = {program.nodes[m].bind: r.masks[m] for m in r.masks}
    for name in list(sources) + [x for x in r.inferred if x not in sources]:
        value = r.values[name]
        acc.keep((name, "value"), value)
        fam = q.families.get(name)
        if name in r.masks:
            acc.keep((name, "mask"), r.masks[name])
            truth = torch.as_tensor(
                sources[name].value
                if sources[name].kind == "value"
                else data[split][program.nodes[name].bind][idx[rows]]
            )
            truth = truth.expand((B,) + tuple(truth.shape)) if truth.dim() == len(q.nodes[name].shape) else truth
            acc.keep((name, "truth"), truth)
            _metrics(acc, name, fam, value, truth, mask=r.masks[name].reshape(value.shape))
        if name in sources and sources[name].kind != "prior" and name in r.predictions:
            pred = r.predictions[name]
            acc.keep((name, "prediction"), pred)
            _metrics(acc, name, fam, pred, value, prefix="prediction_")
        if name in r.samples:
            acc.keep((name, "sample"), r.samples[name])
        bind = program.nodes[name].bind
        if name not in sources and split is not None and bind is not None and bind in data[split]:
            truth = data[split][bind][idx[rows]]
            acc.keep((name, "truth"), truth)
            mask = masks_by_bind.get(bind)
            mask = mask.reshape(value.shape) if mask is not None and mask.numel() == value.numel() else None
            _metrics(acc, name, fam, value, truth, mask=mask)


def _node_report(acc: _Acc, q, r, sources, mask_of, n: int) -> dict:
    out = {}
    for name in list(sources) + [x for x in r.inferred if x not in sources]:
        info = q.nodes[name]
        fam = q.families.get(name)
        entry = {"role": _role(name, r, sources, mask_of), "shape": list(info.shape)}
        if fam is not None:
            entry["family"] = info.family
        if name in mask_of:
            entry["mask"] = mask_of[name][0]
            entry["observed"] = round(float(mask_of[name][1].float().mean()), 4)
        value = acc.kept[(name, "value")]
        shown = value if fam is None else fam.decoded(value, acc.kept.get((name, "sample")))
        entry["value"] = {k: _round(v) for k, v in shown.items()} if isinstance(shown, dict) else _round(shown)
        entry["value_examples"] = value.shape[0]
        entry["value_truncated"] = value.shape[0] < n
        if (name, "prediction") in acc.kept:
            entry["prediction"] = _round(acc.kept[(name, "prediction")])
        if (name, "truth") in acc.kept:
            entry["truth"] = _round(acc.kept[(name, "truth")])
        for key in ("accuracy", "mse", "mse_unobserved", "prediction_accuracy", "prediction_mse"):
            v = acc.mean((name, key))
            if v is not None:
                entry[key] = v
        entry["energy_before"] = acc.mean((name, "energy_before"))
        entry["energy_after"] = acc.mean((name, "energy_after"))
        out[name] = entry
    return out


def _role(name, r, sources, mask_of) -> str:
    if name in mask_of:
        return "partly clamped"
    if name in sources:
        return "clamped"
    return "predicted" if name in r.predicted else "inferred"


def _round(t: torch.Tensor):
    t = t.detach().cpu()
    if t.is_floating_point():
        return np.round(t.double().numpy(), 5).tolist()
    return t.tolist()


def summary_lines(report: dict) -> list[str]:
    """What ``pcgraph query`` prints: per node its role, shape, metrics and energies
    (or, for --generate, the sequences)."""
    if "generated" in report:
        head = f"{len(report['generated'])} sequence(s): prompt | {report['generate']} generated token(s), " + (
            "greedy" if report["temperature"] <= 0 else f"temperature {report['temperature']}"
        )
        return (
            [head]
            + report.get("generated_text", generated_lines(report))
            + (["wrote query.json, generated.txt"] if "files" in report else [])
        )
    lines = [
        f"{report['examples']} example(s), {report['steps']} inference steps; clamped: "
        + ", ".join(f"{k}={v}" for k, v in report["clamp"].items())
    ]
    for name, e in report["nodes"].items():
        metrics = ", ".join(
            f"{k} {e[k]:.4g}"
            for k in ("accuracy", "mse", "mse_unobserved", "prediction_accuracy", "prediction_mse")
            if k in e
        )
        energy = "" if e["energy_before"] is None else f"energy {e['energy_before']:.4g} -> {e['energy_after']:.4g}"
        lines.append(
            f"  {name:<10} {e['role']:<15} {str(e['shape']):<10} " + "; ".join(x for x in (metrics, energy) if x)
        )
    t = report["energy_total"]
    lines.append(f"  total energy {t['before']:.4g} -> {t['after']:.4g}")
    if report["reverted"]:
        lines.append(
            f"  {report['reverted']} example(s) kept their starting state: inference raised their energy (try a "
            f"smaller --lr)"
        )
    if "files" in report:
        lines.append("wrote query.json, " + ", ".join(report["files"]))
    return lines
