"""Tables for docs/results.md from the compare folders of experiments/run_all.sh.

    python experiments/summarize.py RESULTS_DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from pcgraph.train.compare import mean_std, table


def cell(values, key):
    return mean_std(values, key) if values else "–"


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
                acc = {k: cell([r["accuracy"] for r in rows_for(rows, k)], "accuracy") for k in ("bp", "pc-f", "pc-kl")}
                loss = {k: cell([r["loss"] for r in rows_for(rows, k)], "loss") for k in ("bp", "pc-f", "pc-kl")}
                secs = " / ".join(f"{statistics.fmean(seconds(rows, k)):.0f}" if seconds(rows, k) else "–" for k in ("bp", "pc-f", "pc-kl"))
                out.append(f"| {data} | {m.upper()} | {form} | {acc['bp']} | {acc['pc-f']} | {acc['pc-kl']} | {loss['bp']} | {loss['pc-f']} | {loss['pc-kl']} | {secs} |")
    return "\n".join(out)


def generic(results: Path, name: str, metrics: list[str]) -> str:
    rows = load(results / name)
    if rows is None:
        return f"({name}: not run)"
    return table(rows, list(dict.fromkeys(r["method"] for r in rows)), keys=metrics)


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
