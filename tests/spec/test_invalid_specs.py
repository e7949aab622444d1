"""Invalid specs give one located line per problem (golden lines, written by hand).

Each case edits a small valid spec; expected lines are ``FILE:LINE:COL: path: message``
patterns where ``*`` stands for any text (e.g. the tail listing every known name,
which grows as families and transforms are added).
"""

import re

import pytest

import pcgraph
from pcgraph.core.errors import PcgraphError

BASE = """\
name: t
nodes:
  x: {shape: [4], role: input, bind: image}
  h: {shape: [3], family: gaussian}
  y: {shape: [2], family: categorical, role: target, bind: label}
edges:
  - {from: x, to: h, activation: tanh}
  - {from: h, to: y}
"""


def edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new)


CASES = {
    "unknown transform": (
        edit("- {from: x, to: h, activation: tanh}", "- {from: x, to: h, transform: linaer}"),
        ["spec.yaml:7:33: edges.0.transform: unknown transform 'linaer' (did you mean 'linear'?); known: *"],
    ),
    "missing node": (
        edit("- {from: h, to: y}", "- {from: h2, to: y}"),
        ["spec.yaml:8:12: edges.1.from: unknown node 'h2' (did you mean 'h'?)"],
    ),
    "cycle": (
        BASE.replace("  y:", "  g: {shape: [3], family: gaussian}\n  y:") + "  - {from: h, to: g}\n  - {from: g, to: h}\n",
        ["spec.yaml:11:5: edges.3: cycle * -> *; the graph must be a DAG unless train.topology: cyclic"],
    ),
    "unknown key": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [3], family: gaussian, colour: red}"),
        ["spec.yaml:4:37: nodes.h.colour: unknown key 'colour' (allowed: *)"],
    ),
    "misspelt key": (  # the missing 'shape' is the misspelt one: one line, not two
        edit("h: {shape: [3], family: gaussian}", "h: {shap: [3], family: gaussian}"),
        ["spec.yaml:4:7: nodes.h.shap: unknown key 'shap' (did you mean 'shape'?)"],
    ),
    "misspelt required edge key": (
        edit("- {from: h, to: y}", "- {form: h, to: y}"),
        ["spec.yaml:8:6: edges.1.form: unknown key 'form' (did you mean 'from'?)"],
    ),
    "missing key beside an unrelated unknown key": (
        edit("h: {shape: [3], family: gaussian}", "h: {family: gaussian, colour: red}"),
        [
            "spec.yaml:4:6: nodes.h: missing required key 'shape'",
            "spec.yaml:4:25: nodes.h.colour: unknown key 'colour' (allowed: *)",
        ],
    ),
    "bad shape": (
        edit("- {from: x, to: h, activation: tanh}", "- {from: x, to: h, transform: identity}"),
        ["spec.yaml:7:33: edges.0.transform: edge x -> h: identity needs equal shapes, got [4] -> [3]"],
    ),
    "meanvar needs kl": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [3], family: gaussian_meanvar}") + "train: {energy: gaussian}\n",
        ["spec.yaml:4:27: nodes.h.family: family 'gaussian_meanvar' on node 'h' has no standard-PC form: it needs train.energy kl, not gaussian (--set train.energy=kl)"],
    ),
    "broken yaml": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [3, family: gaussian}"),
        # inside [...] YAML reads "family: gaussian" as a one-pair mapping, then meets '}'
        ["spec.yaml:4:34: nodes.h.shape.1: invalid YAML: expected ',' or ']', but got '}' (while parsing a flow sequence)"],
    ),
    "python tag": (
        edit("name: t", "name: !!python/object/apply:os.system ['touch pwned']"),
        ["spec.yaml:1:7: name: YAML tag '!!python/object/apply:os.system' is not allowed: specs are plain data (nothing is executed)"],
    ),
    "orphan latent": (
        BASE.replace("  y:", "  lost: {shape: [3], family: gaussian}\n  y:"),
        ["spec.yaml:5:3: nodes.lost: latent node 'lost' is an orphan: it has no incoming edge and no prior, so nothing predicts it"],
    ),
    "bind on latent": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [3], family: gaussian, bind: image}"),
        ["spec.yaml:4:37: nodes.h.bind: latent node 'h' is free during inference and cannot bind data field 'image' (make it an input or target)"],
    ),
    "negative shape": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [-3], family: gaussian}"),
        ["spec.yaml:4:15: nodes.h.shape.0: must be > 0, got -3"],
    ),
    "unknown family": (
        edit("family: gaussian}", "family: gausian}"),
        ["spec.yaml:4:27: nodes.h.family: unknown family 'gausian' (did you mean 'gaussian'?); known: *"],
    ),
    "unknown activation": (
        edit("activation: tanh", "activation: tahn"),
        ["spec.yaml:7:34: edges.0.activation: 'tahn' is not one of * (did you mean 'tanh'?)"],
    ),
    "input without bind": (
        edit("x: {shape: [4], role: input, bind: image}", "x: {shape: [4], role: input}"),
        ["spec.yaml:3:3: nodes.x: input node 'x' needs 'bind': the data field it is clamped to"],
    ),
    "edge into input": (
        BASE + "  - {from: h, to: x}\n",
        ["spec.yaml:9:19: edges.2.to: node 'x' is an input: it is clamped to data and takes no incoming edges"],
    ),
    "arity": (
        edit("- {from: h, to: y}", "- {from: h, to: y, transform: attention_scores}"),
        ["spec.yaml:8:12: edges.1.from: transform 'attention_scores' takes 2 source node(s), got 1: ['h']"],
    ),
    "share unknown edge": (
        edit("- {from: h, to: y}", "- {from: h, to: y, share: dec}"),
        ["spec.yaml:8:29: edges.1.share: unknown edge 'dec' (share names another edge's 'name')"],
    ),
    "long latent": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: [3], family: gaussian, dtype: long}"),
        ["spec.yaml:4:44: nodes.h.dtype: only input nodes may hold integer tokens (dtype long); 'h' is a latent node"],
    ),
    "duplicate key": (
        BASE.replace("  y:", "  h: {shape: [5], family: gaussian}\n  y:"),
        ["spec.yaml:5:3: nodes.h: duplicate key 'h' (first at line 4)"],
    ),
    "block step option": (
        edit("- {from: h, to: y}", "- {from: h, to: y, transform: {type: block, steps: [layernorm, {type: linear, bais: false}]}}"),
        ["spec.yaml:8:81: edges.1.transform.steps.1.bais: unknown key 'bais' (did you mean 'bias'?)"],
    ),
    "block step reads two": (
        edit("- {from: h, to: y}", "- {from: h, to: y, transform: {type: block, steps: [attention_scores, linear]}}"),
        ["spec.yaml:8:55: edges.1.transform.steps.0: a block step reads one float value (the previous step's output), got transform 'attention_scores', which reads 2 source nodes"],
    ),
    "block step shape": (
        edit("- {from: h, to: y}", "- {from: h, to: y, transform: {type: block, steps: [{type: linear, width: 5, residual: true}, linear]}}"),
        ["spec.yaml:8:55: edges.1.transform.steps.0: edge h -> y: step 0 (linear) adds its input to its output, so it needs equal shapes, got [3] -> [5]"],
    ),
    "prior on categorical": (
        edit("y: {shape: [2], family: categorical", "y: {shape: [2], family: categorical, prior: standard_normal"),
        ["spec.yaml:5:40: nodes.y.prior: family 'categorical' on node 'y' takes no prior (priors are Gaussian: use gaussian or gaussian_meanvar)"],
    ),
    "unknown dataset": (
        edit("name: t\n", "name: t\ndata: {dataset: mnsit}\n"),
        ["spec.yaml:2:17: data.dataset: unknown dataset 'mnsit' (did you mean 'mnist'?); known: *"],
    ),
    "empty file": ("", ["spec.yaml:1:1: <spec>: the file is empty: a spec needs name, nodes and edges"]),
    "not a mapping": ("- just\n- a list\n", ["spec.yaml:1:1: <spec>: a spec is a mapping with name, nodes and edges, got list"]),
    "missing nodes": ("name: t\nedges: []\n", ["spec.yaml:1:1: <spec>: missing required key 'nodes'"]),
    "wrong type": (
        edit("h: {shape: [3], family: gaussian}", "h: {shape: three, family: gaussian}"),
        ["spec.yaml:4:14: nodes.h.shape: input should be a valid list, got 'three'"],
    ),
    "bad name": (edit("name: t", "name: My Net"), ["spec.yaml:1:7: name: 'My Net' does not match the pattern *"]),
    "unknown train key": (
        BASE + "train:\n  inferense: {steps: 3}\n",
        ["spec.yaml:10:3: train.inferense: unknown key 'inferense' (did you mean 'inference'?)"],
    ),
    "two problems at once": (
        edit("- {from: h, to: y}", "- {from: q, to: z}"),
        [
            "spec.yaml:8:12: edges.1.from: unknown node 'q' (nodes: x, h, y)",
            "spec.yaml:8:19: edges.1.to: unknown node 'z' (nodes: x, h, y)",
            "spec.yaml:5:3: nodes.y: target node 'y' has no incoming edge: nothing predicts it",
        ],
    ),
}


def matches(pattern: str, line: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), line) is not None


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_spec_lines(name, write, tmp_path, monkeypatch):
    text, expected = CASES[name]
    write(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PcgraphError) as info:
        pcgraph.build_graph(pcgraph.load_spec("spec.yaml"))
    lines = info.value.lines
    assert len(lines) == len(expected), lines
    for pattern in expected:
        assert any(matches(pattern, line) for line in lines), (pattern, lines)
    assert not (tmp_path / "pwned").exists()


def test_at_least_fifteen_cases():
    assert len(CASES) >= 15


def test_cycle_and_generations_match_networkx_on_random_graphs():
    """The graph stage's own cycle search and topological generations (it avoids
    importing networkx) agree with networkx's on random small directed graphs."""
    import random

    import networkx as nx

    from pcgraph.graph.checks import find_cycle, generations_of

    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 7)
        names = [f"n{i}" for i in range(n)]
        succ = {a: {} for a in names}
        g = nx.DiGraph()
        g.add_nodes_from(names)
        for k in range(rng.randint(0, 12)):
            a, b = rng.choice(names), rng.choice(names)
            succ[a].setdefault(b, k)
            g.add_edge(a, b)
        cycle = find_cycle(succ)
        if nx.is_directed_acyclic_graph(g):
            assert cycle is None
            assert generations_of(succ) == [sorted(x) for x in nx.topological_generations(g)]
        else:
            assert cycle is not None and cycle[-1][1] == cycle[0][0]
            assert all(g.has_edge(u, v) for u, v in cycle)
            assert all(cycle[i][1] == cycle[i + 1][0] for i in range(len(cycle) - 1))
