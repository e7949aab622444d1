"""Hostile input stays harmless and errors stay honest.

A few hundred bytes of YAML aliases, nesting thousands of levels deep, a shape typo
that asks for terabytes: each ends at once with exit 2 and one located sentence. A
fault in pcgraph's own code keeps its exception type and traceback instead of
turning into a user error."""

import copy
import os
import resource
import subprocess
import sys
import time

import pytest
import torch
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcgraph
from pcgraph.train.bench import random_batch
from pcgraph.graph.report import check_spec
from pcgraph.cli import main
from pcgraph.compile import compile_graph as compile, resolve_device
from pcgraph.core.activations import ACTIVATION_NAMES
from pcgraph.core.errors import CompileError, PcgraphError, SpecError
from pcgraph.families import families
from pcgraph.compile.budget import human
from pcgraph.spec.limits import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from pcgraph.transforms import transforms
from pcgraph.transforms.linear import Linear
from tests.conftest import ROOT, SPECS

SPEC_TAIL = "nodes: {x: {shape: [2], role: input, bind: image}}\n"


def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """``a0`` lists ``fan`` scalars, each ``a<i>`` lists ``fan`` aliases of ``a<i-1>``."""
    lines = ["name: bomb", f"a0: &a0 [{', '.join(['x'] * fan)}]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n" + SPEC_TAIL


def bomb_refusal(levels: int = 9, fan: int = 9) -> tuple[int, int, str]:
    """(line, column, "path: alias *anchor") of the first alias whose expansion passes MAX_VALUES,
    counted by hand: the value ``a<i>`` expands to 1 + fan * size(a<i-1>) values."""
    size = [1 + fan]
    for _ in range(levels):
        size.append(1 + fan * size[-1])
    total = 1 + 2 + 1 + size[0]  # the root mapping, name: bomb, the key a0 and its list
    for i in range(1, levels + 1):
        total += 2  # the key a<i> and its list
        for k in range(fan):
            total += size[i - 1]
            if total > MAX_VALUES:
                col = len(f"a{i}: &a{i} [") + 1 + k * len(f"*a{i - 1}, ")
                return i + 2, col, f"a{i}.{k}: alias *a{i - 1}"
    raise AssertionError("the bomb stays within the bound")


def nested(depth: int, kind: str) -> str:
    inner = "[" * depth + "]" * depth if kind == "list" else "{a: " * depth + "1" + "}" * depth
    return "name: deep\n" + SPEC_TAIL + "extra: " + inner + "\n"


def one_issue(text: str, file: str = "h.yaml", overrides=()) -> str:
    with pytest.raises(SpecError) as info:
        pcgraph.loads_spec(text, file, overrides)
    (line,) = info.value.lines
    return line


# ----------------------------------------------------------------------- YAML
def test_alias_bomb_is_refused_at_the_alias_that_crosses_the_bound():
    line_no, col, alias = bomb_refusal()
    line = one_issue(alias_bomb())
    assert line.startswith(f"h.yaml:{line_no}:{col}: {alias} expands the document past 100,000 values")


def test_aliases_within_the_bound_still_load():
    text = "name: shared\nnodes:\n  h: &node {shape: [3], family: gaussian, prior: standard_normal}\n  g: *node\n"
    spec = pcgraph.loads_spec(text, "ok.yaml")
    assert spec.nodes["g"].shape == [3] and spec.nodes["h"].shape == [3]


@pytest.mark.parametrize("kind", ["list", "map"])
def test_nesting_is_bounded_at_the_opening_that_goes_too_deep(kind):
    opener = len("[") if kind == "list" else len("{a: ")
    # the top-level mapping and MAX_DEPTH - 1 levels inside it are read (and then
    # refused by the schema, as 'extra' is no key of a spec)
    line = one_issue(nested(MAX_DEPTH - 1, kind), "d.yaml")
    assert line.startswith("d.yaml:3:1: extra: unknown key 'extra'")
    # one more level, or 5000, is refused at the first opening past the bound
    for depth in (MAX_DEPTH, 5000):
        line = one_issue(nested(depth, kind), "d.yaml")
        assert line == f"d.yaml:3:{len('extra: ') + (MAX_DEPTH - 1) * opener + 1}: extra: the YAML nests mappings and sequences more than {MAX_DEPTH} levels deep (a spec needs fewer than 10)"


def test_an_alias_cannot_carry_nesting_past_the_bound():
    half = MAX_DEPTH // 2 + 1
    text = "name: deep\n" + SPEC_TAIL + "a: &d " + "[" * half + "]" * half + "\nb: " + "[" * half + "*d" + "]" * half + "\n"
    line = one_issue(text)
    assert line.startswith(f"h.yaml:4:{len('b: ') + half + 1}: b: alias *d nests mappings and sequences more than {MAX_DEPTH} levels")


def test_an_alias_inside_what_it_names_is_refused():
    line = one_issue("name: loop\n" + SPEC_TAIL + "a: &a [1, *a]\n")
    assert line.startswith("h.yaml:3:11: a.1: alias *a sits inside the mapping or sequence it refers to")


def test_oversized_spec_is_refused_before_parsing(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("name: big\n" + SPEC_TAIL + "description: '" + "x" * MAX_BYTES + "'\n")
    with pytest.raises(SpecError) as info:
        pcgraph.load_spec(p)
    assert info.value.lines == [f"{p}: the spec is larger than 2 MiB (a spec is a few kilobytes): refusing to read it"]


def test_set_values_and_paths_have_the_same_bounds():
    base = "name: t\n" + SPEC_TAIL
    deep = "[" * 5000 + "]" * 5000
    line = one_issue(base, overrides=[f"description={deep}"])
    assert line.startswith(f"--set description={deep}: description: the YAML nests") and line.endswith(f"(at column {MAX_DEPTH + 1} of the value)")
    bomb = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(f"&a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 10) + "]" for i in range(1, 7)) + "]"
    assert "past 100,000 values" in one_issue(base, overrides=[f"description={bomb}"])
    long_path = "data.options" + ".k" * 5000
    assert one_issue(base, overrides=[f"{long_path}=1"]).endswith(f"the dotted path has 5002 keys, more than the {MAX_DEPTH} a spec can nest")


# --------------------------------------------------------------------- memory
BIG_WEIGHT = """\
name: bigw
nodes:
  x: {shape: [4], role: input, bind: image}
  h1: {shape: [1000000], family: gaussian}
  h2: {shape: [1000000], family: gaussian}
edges:
  - {from: x, to: h1}
  - {from: h1, to: h2}
"""

BIG_STATE = """\
name: bigs
data: {dataset: digits, batch_size: 100000}
nodes:
  x: {shape: [64], role: input, bind: image}
  h: {shape: [100000000], family: gaussian, prior: standard_normal}
  y: {shape: [10], family: categorical, role: target, bind: label}
edges:
  - {from: x, to: y}
"""


def test_terabyte_weight_is_refused_before_allocation():
    graph = pcgraph.build_graph(pcgraph.loads_spec(BIG_WEIGHT, "w.yaml"))
    with pytest.raises(CompileError) as info:
        compile(graph, device="cpu")
    (line,) = info.value.lines
    tib = 10**12 * 4 / 2**40  # float32 entries
    assert line.startswith("w.yaml:8:5: edges.1: edge e1 (h1 -> h2, linear) needs a 1000000 x 1000000 weight: ")
    assert f": {tib:.1f} TiB, more than this machine's memory (" in line


def test_huge_batch_of_node_values_is_refused():
    graph = pcgraph.build_graph(pcgraph.loads_spec(BIG_STATE, "s.yaml"))
    with pytest.raises(CompileError) as info:
        compile(graph, device="cpu")
    (line,) = info.value.lines
    tib = 100_000 * 10**8 * 4 / 2**40
    assert line.startswith("s.yaml:5:3: nodes.h: node 'h' of shape [100000000] needs 100000 x 100000000 values (data.batch_size 100000): ")
    assert f"{tib:.1f} TiB, more than this machine's memory" in line


def _validate_without_torch(path) -> tuple[int, str]:
    """(exit code, stderr) of ``pcgraph validate PATH`` in a fresh process, which fails
    if torch was imported."""
    code = (
        "import sys\n"
        "from pcgraph.cli import main\n"
        "try:\n"
        f"    main(['validate', {str(path)!r}])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "assert type(sys.modules.get('torch')).__name__ != 'module', 'torch was imported'\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PCGRAPH_MAX_MEMORY": ""})
    assert "torch was imported" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr


@pytest.mark.parametrize("text", [BIG_WEIGHT, BIG_STATE], ids=["weight", "state"])
def test_validate_refuses_what_compile_refuses_in_the_same_sentence(text, tmp_path, monkeypatch):
    monkeypatch.delenv("PCGRAPH_MAX_MEMORY", raising=False)
    path = tmp_path / "big.yaml"
    path.write_text(text)
    with pytest.raises(CompileError) as info:
        compile(pcgraph.build_graph(pcgraph.load_spec(path)), device="cpu")
    code, err = _validate_without_torch(path)
    assert code == 2 and err.strip().splitlines() == info.value.lines


def test_validate_holds_a_card_spec_to_its_parameters_only(tmp_path):
    # the batch of node values lives on the card, whose memory compile checks; the
    # parameters are made in host memory first, so this machine must hold them
    path = tmp_path / "s.yaml"
    path.write_text(BIG_STATE + "train: {device: cuda}\n")
    code, err = _validate_without_torch(path)
    assert code == 0, err
    path.write_text(BIG_WEIGHT + "train: {device: cuda}\n")
    code, err = _validate_without_torch(path)
    assert code == 2 and "needs a 1000000 x 1000000 weight: 3.6 TiB, more than this machine's memory (" in err


def test_memory_cap_counts_parameters_and_one_batch(monkeypatch):
    # digits-gen by hand: label[10] -> h1[64] -> h2[128] -> image[64], linear edges with
    # bias; batch 32 of the four nodes' values; float32
    params = (10 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64)
    values = 32 * (10 + 64 + 128 + 64)
    total = 4 * (params + values)
    graph = pcgraph.build_graph(pcgraph.load_spec(SPECS / "digits-gen.yaml"))
    monkeypatch.setenv("PCGRAPH_MAX_MEMORY", str(total))
    compile(graph, device="cpu")
    monkeypatch.setenv("PCGRAPH_MAX_MEMORY", str(total - 1))
    with pytest.raises(CompileError) as info:
        compile(graph, device="cpu")
    assert "the parameters and one batch of node values need" in info.value.lines[0]
    assert "the largest part: edge e1 (h1 -> h2, linear) needs a 128 x 64 weight (32.0 KiB)" in info.value.lines[0]
    monkeypatch.setenv("PCGRAPH_MAX_MEMORY", "lots")
    with pytest.raises(CompileError) as info:
        compile(graph, device="cpu")
    assert info.value.lines == ["$PCGRAPH_MAX_MEMORY: must be a number of bytes, optionally with K, M, G or T (e.g. 8G), got 'lots'"]


# --------------------------------------------------------------------- device
@pytest.mark.skipif(torch.version.cuda is not None or torch.version.hip is not None, reason="this torch build has CUDA")
def test_cuda_on_a_cpu_only_build_is_one_sentence():
    with pytest.raises(CompileError) as info:
        resolve_device("cuda")
    assert info.value.lines == ["device 'cuda': this torch build has no CUDA support; use --device cpu"]
    out = CliRunner().invoke(main, ["compile", str(SPECS / "digits-gen.yaml"), "--device", "cuda"])
    assert out.exit_code == 2 and out.output.strip().splitlines() == ["device 'cuda': this torch build has no CUDA support; use --device cpu"]


def test_unknown_or_absent_devices_are_compile_errors():
    with pytest.raises(CompileError, match="unknown device"):
        resolve_device("banana")
    with pytest.raises(CompileError):
        resolve_device(f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}")  # one past the last
    assert resolve_device("cpu") == torch.device("cpu")


# ------------------------------------------------------------ honest failures
def test_a_fault_in_a_transform_keeps_its_type(monkeypatch):
    graph = pcgraph.build_graph(pcgraph.load_spec(SPECS / "digits-gen.yaml"))
    prog = compile(graph, device="cpu")
    for planted in (ZeroDivisionError, IndexError, RuntimeError):

        def forward(self, *xs, planted=planted):
            raise planted("planted fault")

        monkeypatch.setattr(Linear, "forward", forward)
        with pytest.raises(planted, match="planted fault"):
            prog.init_state(random_batch(prog, 2))

    def reset(self):
        raise ZeroDivisionError("planted fault")

    monkeypatch.setattr(Linear, "reset_parameters", reset)
    with pytest.raises(ZeroDivisionError):
        compile(graph, device="cpu")


def test_a_fault_reaches_the_command_line_as_itself(monkeypatch):
    def reset(self):
        raise ZeroDivisionError("planted fault")

    def forward(self, *xs):
        raise ZeroDivisionError("planted fault")

    monkeypatch.setattr(Linear, "forward", forward)  # runs only once a batch goes through
    out = CliRunner().invoke(main, ["bench", str(SPECS / "digits-gen.yaml"), "--steps", "1", "--warmup", "0", "--rounds", "1", "--no-memory"], catch_exceptions=True)
    assert isinstance(out.exception, ZeroDivisionError) and out.exit_code == 1
    monkeypatch.setattr(Linear, "reset_parameters", reset)
    out = CliRunner().invoke(main, ["compile", str(SPECS / "digits-gen.yaml")], catch_exceptions=True)
    assert isinstance(out.exception, ZeroDivisionError) and out.exit_code == 1


# -------------------------------------------------------- the command line
def _limit_memory():  # a regression must fail the test, not swap the machine
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))


def _cli(*args) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pcgraph", *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, preexec_fn=_limit_memory)
    return r, time.perf_counter() - t0


@pytest.fixture(scope="module")
def baseline():
    """Seconds the command line takes to validate a shipped spec (start-up dominates)."""
    r, seconds = _cli("validate", str(SPECS / "digits-gen.yaml"))
    assert r.returncode == 0, r.stderr
    return seconds


def assert_quick_refusal(r, seconds, baseline, *expected):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected):
        assert line.startswith(want), (line, want)
    assert seconds < 5 or seconds < 2 * baseline, (seconds, baseline)  # the machine may be loaded


@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap of the child uses RLIMIT_AS")
def test_cli_validate_refuses_hostile_yaml_quickly(tmp_path, baseline):
    files = {
        "bomb.yaml": alias_bomb(),
        "deep-list.yaml": nested(5000, "list"),
        "deep-map.yaml": nested(5000, "map"),
        "loop.yaml": "name: loop\n" + SPEC_TAIL + "a: &a [1, *a]\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    line_no, col, alias = bomb_refusal()
    r, seconds = _cli("validate", *(str(tmp_path / n) for n in files))
    assert_quick_refusal(
        r,
        seconds,
        baseline,
        f"{tmp_path / 'bomb.yaml'}:{line_no}:{col}: {alias} expands",
        f"{tmp_path / 'deep-list.yaml'}:3:{len('extra: ') + MAX_DEPTH}: extra: the YAML nests",
        f"{tmp_path / 'deep-map.yaml'}:3:{len('extra: ') + 4 * (MAX_DEPTH - 1) + 1}: extra: the YAML nests",
        f"{tmp_path / 'loop.yaml'}:3:11: a.1: alias *a sits inside",
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap of the child uses RLIMIT_AS")
@pytest.mark.parametrize(
    "text, expected",
    [(BIG_WEIGHT, "8:5: edges.1: edge e1 (h1 -> h2, linear) needs a 1000000 x 1000000 weight: 3.6 TiB"), (BIG_STATE, "5:3: nodes.h: node 'h' of shape [100000000] needs 100000 x 100000000 values")],
    ids=["weight", "state"],
)
def test_cli_compile_refuses_what_cannot_fit_quickly(tmp_path, baseline, text, expected):
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    r, seconds = _cli("compile", str(p))
    assert_quick_refusal(r, seconds, baseline, f"{p}:{expected}")


# ------------------------------------------------------------------ the fuzz
FUZZ_BASES = [yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml"))]
NUMBER = st.sampled_from([1, 2, 3, 5, 7, 16, 10**6, 10**12, 0, -1, 0.5, 1e-12, 1e308])
WORD = st.sampled_from(
    sorted(transforms.names()) + sorted(families.names()) + list(ACTIVATION_NAMES)
    + ["latent", "input", "target", "long", "float", "kl", "gaussian", "bp", "pc", "cyclic", "dag", "sweep", "sync", "incremental", "zeros", "normal", "arrival", "equilibrium", "sgd", "adam", "learned", "sinusoidal"]
)
ODD = st.sampled_from([0, -1, -3, 1, 2, 10**6, 10**12, 10**30, 0.5, 1e308, float("nan"), float("inf"), "12", "many", "", True, None, [], {}, [0], [3, -1]])


def _paths(obj, prefix=()):
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _at(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _holds(obj, part) -> bool:
    """Whether ``part`` is ``obj`` or inside it (sharing it there would make a cycle)."""
    if obj is part:
        return True
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
    return any(_holds(v, part) for v in items)


def _apart(a, b) -> bool:
    """Neither path lies inside the other."""
    n = min(len(a), len(b))
    return a[:n] != b[:n]


def _mutate(draw, spec) -> None:
    paths = [p for p in _paths(spec) if p]
    if not paths:
        return
    op = draw(st.sampled_from(["number", "number", "word", "word", "delete", "odd", "swap", "alias", "rename", "rewire"]))
    kinds = {"number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "word": lambda v: isinstance(v, str)}
    fitting = [p for p in paths if op in kinds and kinds[op](_at(spec, p))]
    path = draw(st.sampled_from(fitting or paths))
    parent, key = _at(spec, path[:-1]), path[-1]
    if op == "number":  # mostly still valid: the graph is built and compiled
        parent[key] = draw(NUMBER)
    elif op == "word":  # another transform, family, activation, role, schedule, ...
        parent[key] = draw(WORD)
    elif op == "delete":
        del parent[key]
    elif op == "odd":  # a number or value turned huge, negative, zero, fractional, text, ...
        parent[key] = draw(ODD)
    elif op in ("swap", "alias"):
        others = [q for q in paths if _apart(q, path)]
        if others:
            other = draw(st.sampled_from(others))
            oparent, okey = _at(spec, other[:-1]), other[-1]
            if op == "swap":
                parent[key], oparent[okey] = oparent[okey], parent[key]
            elif not _holds(oparent[okey], parent):  # the same object twice: an anchor and an alias
                parent[key] = oparent[okey]
    elif op == "rename" and isinstance(spec.get("nodes"), dict) and spec["nodes"]:
        old = draw(st.sampled_from(sorted(spec["nodes"], key=str)))
        spec["nodes"][draw(st.sampled_from(["h9", f"{old}_", "x", "image", "1bad", ""]))] = spec["nodes"].pop(old)
    elif op == "rewire" and isinstance(spec.get("edges"), list) and spec["edges"] and isinstance(spec.get("nodes"), dict):
        edge = draw(st.sampled_from(spec["edges"]))
        if isinstance(edge, dict):
            names = sorted(map(str, spec["nodes"])) + ["ghost"]
            edge[draw(st.sampled_from(["from", "to"]))] = draw(st.sampled_from(names))


@st.composite
def mutated_spec_text(draw):
    spec = copy.deepcopy(draw(st.sampled_from(FUZZ_BASES)))
    for _ in range(draw(st.integers(1, 2))):
        _mutate(draw, spec)
    text = yaml.safe_dump(spec, sort_keys=False)
    if draw(st.integers(0, 5)) == 0:  # a line twice: a duplicate key, or a list item twice
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        text = "".join(lines)
    return text


def validate_then_compile(text: str, path) -> None:
    """What ``validate`` then ``compile`` do, plus a forward pass and an inference
    step on two examples: any failure must be a PcgraphError with located lines."""
    path.write_text(text)
    graph, issues = check_spec(path)
    assert all(str(i).strip() and i.message for i in issues)
    if graph is None:
        assert issues
        return
    try:
        prog = compile(graph)
        state = prog.init_state(random_batch(prog, 2))
        prog.energy(state)
        prog.infer(state, steps=1)
    except PcgraphError as e:
        assert e.lines and all(line.strip() for line in e.lines), e.lines


@pytest.fixture
def small_memory(monkeypatch):
    """Mutated shapes are refused past 256 MiB, so the fuzz never fills the machine."""
    monkeypatch.setenv("PCGRAPH_MAX_MEMORY", "256M")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_spec_text())
def test_mutated_specs_validate_and_compile_or_fail_cleanly(text, tmp_path, small_memory):
    validate_then_compile(text, tmp_path / "fuzz.yaml")


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_spec_text())
def test_mutated_specs_many(text, tmp_path, small_memory):
    validate_then_compile(text, tmp_path / "fuzz.yaml")


# ------------------------------------------------- what the fuzz has found
def test_validate_reports_an_edge_that_is_not_a_mapping(write):
    p = write("name: t\nnodes:\n  x: {shape: [4], role: input, bind: image}\n  h: {shape: [3], family: gaussian}\nedges:\n  - {from: x, to: h}\n  - 12\n")
    out = CliRunner().invoke(main, ["validate", str(p)])
    assert out.exit_code == 2 and out.output.strip().splitlines() == [f"{p}:7:5: edges.1: input should be a valid dictionary or instance of EdgeSpec, got 12"]


def test_integers_past_64_bits_and_impossible_dates_are_located_lines():
    base = "name: t\n" + SPEC_TAIL
    line = one_issue(base + "description: x\ntrain: {seed: " + "9" * 5000 + "}\n")
    assert line == "h.yaml:4:15: train.seed: the integer '99999999999999999999... (5000 characters)' does not fit in 64 bits (no spec value needs more)"
    assert one_issue(base + f"train: {{seed: {2**64}}}\n").startswith(f"h.yaml:3:15: train.seed: the integer '{2**64}' does not fit in 64 bits")
    assert pcgraph.loads_spec(base + f"train: {{seed: {2**64 - 1}}}\n").train.seed == 2**64 - 1
    assert one_issue(base + "description: 2024-13-45\n") == "h.yaml:3:14: description: cannot read the value '2024-13-45': month must be in 1..12"
    assert one_issue(base, overrides=[f"train.seed={'9' * 5000}"]).startswith(f"--set train.seed={'9' * 5000}: train.seed: the integer")


def test_astronomical_sizes_are_written_as_powers_of_ten():
    axes = ", ".join(["4611686018427387904"] * 1000)  # 2^62 each: 2^62000 values
    text = f"name: t\nnodes:\n  x: {{shape: [{axes}], role: input, bind: image}}\n"
    graph = pcgraph.build_graph(pcgraph.loads_spec(text, "a.yaml"))
    with pytest.raises(CompileError) as info:
        compile(graph, device="cpu")
    (line,) = info.value.lines
    digits = int(62000 * 0.30103)  # log10(2^62000), the state's entries
    assert line.startswith(f"a.yaml:3:3: nodes.x: node 'x' of shape [about 10^18, about 10^18, about 10^18, ... (1000 axes)] needs 1 x about 10^{digits} values")


@pytest.mark.parametrize(
    "nbytes, text",
    [(1023, "1023 B"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB"), (4 * 10**12, "3.6 TiB"), (2**60, "about 10^18 bytes"), (10**400, "about 10^400 bytes")],
)
def test_sizes_in_human_units(nbytes, text):
    assert human(nbytes) == text
