"""Next-word predictions of trained language models on the same test contexts.

    python experiments/lm_predictions.py RUN_DIR [RUN_DIR ...] --data-dir DATA [--n 8]
"""

from __future__ import annotations

import argparse

import torch

from pcgraph.data import load_dataset, text_tokenizer
from pcgraph.train.run import load_run, method_tag


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=8, help="contexts to show")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args(argv)
    loaded = [load_run(r) for r in args.runs]
    spec0 = loaded[0][0]
    sp = text_tokenizer(spec0.data.options, args.data_dir)
    test = load_dataset(spec0.data, loaded[0][1].graph, args.data_dir)["test"]
    g = torch.Generator().manual_seed(1)
    rows = torch.randperm(test["tokens"].shape[0], generator=g)[: args.n]
    tokens = test["tokens"][rows]
    nxt = test["next_tokens"][rows]
    pos = tokens.shape[1] - 1  # predict the token after the whole window
    preds = {}
    for (spec, program), run in zip(loaded, args.runs):
        label = method_tag(spec.train)
        with torch.no_grad():
            p = program.predict({program.nodes[program.inputs[0]].bind: tokens})[program.targets[0]][:, pos]
        preds[label] = p.topk(args.top, -1)
    for i in range(args.n):
        context = sp.decode(tokens[i].tolist())
        truth = sp.id_to_piece(int(nxt[i, pos]))
        print(f"... {context[-90:]!s} [{truth}]")
        for label, (probs, idx) in preds.items():
            shown = ", ".join(f"{sp.id_to_piece(int(t))} ({float(q):.2f})" for q, t in zip(probs[i], idx[i]))
            print(f"    {label:6s} {shown}")


if __name__ == "__main__":
    main()
