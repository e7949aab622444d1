"""Mutated specs either validate or fail with clean, located spec errors: any other
exception (a crash inside pcgraph) fails the test."""

import copy
import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcgraph
from pcgraph.core.errors import PcgraphError
from tests.conftest import SPECS

BASES = [yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml"))]
SEG = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_<>\-]+)'
LINE = re.compile(rf"^\S[^:]*:\d+:\d+: {SEG}(?:\.{SEG})*: .+$")

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 40), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.sampled_from(
        ["linear", "gaussian", "categorical", "conv2d", "identity", "latent", "input", "target", "long", "kl"]
    ),
)


def paths(obj, prefix=()):
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, prefix + (i,))
    return out


def get_parent(obj, path):
    for p in path[:-1]:
        obj = obj[p]
    return obj


@st.composite
def mutated_spec(draw):
    spec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths(spec) if p]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = get_parent(spec, path)
        key = path[-1]
        op = draw(st.sampled_from(["drop", "swap", "rename_node", "garbage_key", "duplicate_edge"]))
        if op == "drop":
            del parent[key]
        elif op == "swap":
            parent[key] = draw(GARBAGE)
        elif op == "rename_node" and isinstance(spec.get("nodes"), dict) and spec["nodes"]:
            old = draw(st.sampled_from(sorted(spec["nodes"], key=str)))
            new = draw(st.sampled_from(["h9", old + "_", "x", "image", "Label", "1bad", ""]))
            spec["nodes"][new] = spec["nodes"].pop(old)
        elif op == "garbage_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(GARBAGE)
        elif op == "duplicate_edge" and isinstance(spec.get("edges"), list) and spec["edges"]:
            spec["edges"].append(copy.deepcopy(draw(st.sampled_from(spec["edges"]))))
    return spec


def check(path):
    try:
        pcgraph.build_graph(pcgraph.load_spec(path))
    except PcgraphError as e:
        assert e.lines, "an error without lines"
        for line in e.lines:
            assert LINE.match(line), line
            assert "Traceback" not in line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=mutated_spec())
def test_mutated_specs_fail_cleanly(spec, tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    check(p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(sorted(SPECS.glob("*.yaml"))), data=st.data())
def test_text_level_garbage_fails_cleanly(base, data, tmp_path):
    text = base.read_text()
    pos = data.draw(st.integers(0, len(text)))
    junk = data.draw(
        st.sampled_from(
            [
                "{", "}", "[", "]", ":", "- ", "\t", "'", '"', "!!python/name:os.system ", "&a ", "*a ", "\n  - ", "%",
                "@"
            ]
        )
    )
    p = tmp_path / "g.yaml"
    p.write_text(text[:pos] + junk + text[pos:])
    check(p)
