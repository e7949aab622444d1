"""Tables for docs/results.md from the compare folders of experiments/run_all.sh.

    python experiments/summarize.py RESULTS_DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def cell(values, scale=1.0, digits=2):
    vs = [v * scale for v in values]
    if not vs:
        return "–"
    if len(vs) == 1:
        return f"{vs[0]:.{digits}f}"
    return f"{statistics.fmean(vs):.{digits}f} ± {statistics.stdev(vs):.{digits}f}"


def load(folder: Path):
    path = folder / "compare.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["rows"]


def rows_for(rows, method, split="test"):
    return [r for r in rows if r["method"] == method and r["split"] == split]


def seconds(rows, method):
    return [r["seconds"] for r in rows_for(rows, method, "train") if "seconds" in r]


def classification(results: Path) -> str:
    out = ["| data | model | form | BP acc. % | PC-F acc. % | PC-KL acc. % | BP loss | PC-F loss | PC-KL loss | s/epoch BP / PC-F / PC-KL |", "|" + "---|" * 10]
    for data in ("mnist", "fashion"):
        for m in ("m1", "m2", "m3"):
            for form, suffix in (("tanh(W·x)", ""), ("W·tanh(x)", "-wb")):
                rows = load(results / f"{data}-{m}{suffix}")
                if rows is None:
                    continue
                acc = {k: cell([r["accuracy"] for r in rows_for(rows, k)], 100) for k in ("bp", "pc-f", "pc-kl")}
                loss = {k: cell([r["loss"] for r in rows_for(rows, k)], 1, 4) for k in ("bp", "pc-f", "pc-kl")}
                secs = " / ".join(f"{statistics.fmean(seconds(rows, k)):.0f}" if seconds(rows, k) else "–" for k in ("bp", "pc-f", "pc-kl"))
                out.append(f"| {data} | {m.upper()} | {form} | {acc['bp']} | {acc['pc-f']} | {acc['pc-kl']} | {loss['bp']} | {loss['pc-f']} | {loss['pc-kl']} | {secs} |")
    return "\n".join(out)


def generic(results: Path, name: str, metrics: list[str]) -> str:
    rows = load(results / name)
    if rows is None:
        return f"({name}: not run)"
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = ["method", "seeds", "epochs"] + metrics + ["train s/epoch"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        rs = rows_for(rows, m)
        cells = [m, str(len(rs)), str(rs[0]["epoch"])]
        for k in metrics:
            scale = 100 if k == "accuracy" else 1
            cells.append(cell([r[k] for r in rs if k in r], scale, 2 if k in ("accuracy", "perplexity") else 4))
        s = seconds(rows, m)
        cells.append(f"{statistics.fmean(s):.0f}" if s else "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    results = Path((argv or sys.argv[1:])[0])
    print("## classification\n")
    print(classification(results))
    for name, metrics in (
        ("digits-m3-64", ["accuracy", "loss"]),
        ("digits-m3-64-gradient", ["accuracy", "loss"]),
        ("mnist-vae", ["neg_elbo", "mse"]),
        ("lm", ["perplexity", "accuracy", "loss"]),
        ("lm-pcf", ["perplexity", "accuracy", "loss"]),
    ):
        print(f"\n## {name}\n")
        print(generic(results, name, metrics))


if __name__ == "__main__":
    main()
