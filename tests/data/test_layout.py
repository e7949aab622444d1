"""The data package imports only the parts before it (core, spec, families,
transforms) and keeps its files and functions small."""

import ast
from pathlib import Path

import pcgraph.data

ROOT = Path(pcgraph.data.__file__).parent
LATER = ("graph", "compile", "train", "cli", "clitools", "check", "bench", "inspect")
#: the CLI commands still live here until the cli package takes them
CLI = ROOT / "cli.py"


def _modules():
    return [p for p in sorted(ROOT.rglob("*.py")) if p != CLI]


def _imported(path: Path, root: Path = ROOT):
    """(line, absolute dotted name) of every import in ``path`` (a file of the package
    at ``root``, which stands for pcgraph.data), at any depth."""
    package = ["pcgraph"] + list(path.parent.relative_to(root.parent).parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            yield node.lineno, ".".join(base + ([node.module] if node.module else []))


def test_the_check_sees_hidden_imports(tmp_path):
    # what the check must catch: imports inside functions and under TYPE_CHECKING, at any depth
    sub = tmp_path / "data" / "fetch"
    sub.mkdir(parents=True)
    (sub / "x.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ...graph import PCGraph\ndef f():\n    from ...compile import compile\n    import pcgraph.train\n")
    (tmp_path / "data" / "y.py").write_text("from .fetch import x\nfrom ..cli import main\n")
    assert [n for _, n in _imported(sub / "x.py", tmp_path / "data")] == ["typing", "pcgraph.graph", "pcgraph.compile", "pcgraph.train"]
    assert [n for _, n in _imported(tmp_path / "data" / "y.py", tmp_path / "data")] == ["pcgraph.data.fetch", "pcgraph.cli"]


def test_data_never_imports_a_later_part():
    bad = []
    for path in _modules():
        for line, name in _imported(path):
            parts = name.split(".")
            if parts[0] == "pcgraph" and len(parts) > 1 and parts[1] in LATER:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert bad == []


def test_files_and_functions_are_small():
    big = []
    for path in _modules():
        text = path.read_text()
        if text.count("\n") > 400:
            big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                big.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} has {node.end_lineno - node.lineno + 1} lines")
    assert big == []
