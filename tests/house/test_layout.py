"""The package's layout rules, checked on the source: one-way imports between the
parts, no module shadowing the standard library, every submodule reachable by its
dotted name, and the size limits that keep each file readable."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import pcgraph

ROOT = Path(pcgraph.__file__).parent
#: the parts in pipeline order: a part may import only the parts before it
ORDER = ["core", "families", "transforms", "schedules", "spec", "data", "graph", "compile", "train", "cli"]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources():
    return sorted(p for p in ROOT.rglob("*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every pcgraph module this file imports, at any depth (function-level and
    TYPE_CHECKING imports included)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pcgraph")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("pcgraph"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names}
    return out


def part_of(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[1] in ORDER else None


def test_every_module_belongs_to_a_part():
    loose = [module_name(p) for p in sources() if part_of(module_name(p)) is None and module_name(p) not in ("pcgraph", "pcgraph.__main__")]
    assert not loose, f"modules outside the parts {ORDER}: {loose}"


def test_parts_import_only_earlier_parts():
    wrong = []
    for p in sources():
        mine = part_of(module_name(p))
        if mine is None:
            continue
        for target in imported_modules(p):
            theirs = part_of(target)
            if theirs is not None and ORDER.index(theirs) > ORDER.index(mine):
                wrong.append(f"{p.relative_to(ROOT.parent)} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_module_is_named_like_the_standard_library():
    clash = [module_name(p) for p in sources() if p.stem in sys.stdlib_module_names or Path(p).parent.name in sys.stdlib_module_names and p.name == "__init__.py"]
    assert not clash


def all_submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(ROOT)], "pcgraph.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", all_submodules())
def test_a_submodule_is_what_importing_it_gives(name):
    parent, _, last = name.rpartition(".")
    importlib.import_module(name)
    got = getattr(importlib.import_module(parent), last)
    assert got is sys.modules[name], f"{parent}.{last} is {got!r}, not the module"


def test_files_and_functions_stay_small():
    long_files, long_functions = [], []
    for p in sources():
        text = p.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            long_files.append(f"{p.relative_to(ROOT.parent)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{p.relative_to(ROOT.parent)}:{node.lineno} {node.name}: {n} lines")
    assert not long_files and not long_functions, "\n".join(long_files + long_functions)


def test_reading_a_spec_never_imports_torch(tmp_path):
    import subprocess

    spec = Path(__file__).parents[2] / "specs" / "digits-m2.yaml"
    code = (
        "import sys, pcgraph\n"
        "from pcgraph.cli import main\n"
        f"g = pcgraph.build_graph(pcgraph.load_spec({str(spec)!r}))\n"
        "pcgraph.schema()\n"
        "assert type(sys.modules.get('torch')).__name__ != 'module', 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
