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
    loose = [
        module_name(p)
        for p in sources()
        if part_of(module_name(p)) is None and module_name(p) not in ("pcgraph", "pcgraph.__main__")
    ]
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
    clash = [
        module_name(p)
        for p in sources()
        if p.stem in sys.stdlib_module_names
        or Path(p).parent.name in sys.stdlib_module_names
        and p.name == "__init__.py"
    ]
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


# ------------------------------------------------------------------ the redesign's rules
def _part_dir(path: Path) -> str:
    return path.relative_to(ROOT).parts[0]


def test_no_module_imports_another_modules_private_names():
    wrong = []
    for p in sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("pcgraph")):
                wrong += [
                    f"{p.relative_to(ROOT.parent)}:{node.lineno} imports {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert not wrong, "\n".join(wrong)


def _compared_strings(tree):
    """(line, string) of every string constant compared (==, !=, in, not in) in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                for item in items:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        yield node.lineno, item.value


@pytest.mark.parametrize("registry,home", [("families", "families"), ("schedules", "schedules")])
def test_registered_names_are_compared_only_where_they_are_defined(registry, home):
    """A family's or a schedule's name is never branched on outside its own part (and the
    spec's validation): the rest of the code asks the registered class."""
    names = set(getattr(importlib.import_module(f"pcgraph.{registry}"), registry).names())
    wrong = []
    for p in sources():
        if p.parent == ROOT or _part_dir(p) in (home, "spec"):
            continue
        for line, value in _compared_strings(ast.parse(p.read_text())):
            if value in names:
                wrong.append(f"{p.relative_to(ROOT.parent)}:{line} compares '{value}'")
    assert not wrong, "\n".join(wrong)


def test_extension_interfaces_speak_plain_gradients():
    """No public method of a registered family, transform or state optimiser takes a sign."""
    import inspect

    from pcgraph.compile import optim
    from pcgraph.families import families
    from pcgraph.transforms import transforms

    classes = [cls for _, cls in families.items()] + [cls for _, cls in transforms.items()]
    classes += [c for c in vars(optim).values() if inspect.isclass(c) and issubclass(c, optim.StateOptimizer)]
    wrong = []
    for cls in classes:
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                bad = {"sign", "acc_sign", "owned"} & set(inspect.signature(fn).parameters)
                wrong += [f"{cls.__name__}.{name}({', '.join(sorted(bad))})"] if bad else []
    assert not wrong, wrong


def test_the_compiled_program_is_one_class():
    import pcgraph
    from pcgraph.compile import Program

    prog = pcgraph.compile_graph(
        pcgraph.build_graph(pcgraph.load_spec(Path(__file__).parents[2] / "specs" / "digits-m2.yaml")), device="cpu"
    )
    ours = [c for c in type(prog).__mro__ if c.__module__.startswith("pcgraph")]
    assert ours == [Program] and len([b for b in Program.__bases__ if b.__module__.startswith("pcgraph")]) <= 1


def _private_names(tree) -> set[str]:
    """The private names a module defines: functions, methods, classes and attributes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return {n for n in out if n.startswith("_") and not n.endswith("__")}


def test_no_module_reaches_into_another_modules_private_names():
    """``obj._name`` outside ``self`` and ``cls`` only for a private name the module itself
    defines (torch's own, such as ``_version``, are not pcgraph's)."""
    trees = {p: ast.parse(p.read_text()) for p in sources()}
    defined = {p: _private_names(t) for p, t in trees.items()}
    everywhere = set().union(*defined.values())
    wrong = []
    for p, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and node.attr in everywhere and node.attr not in defined[p]):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            wrong.append(f"{p.relative_to(ROOT.parent)}:{node.lineno} reads .{node.attr}")
    assert not wrong, "\n".join(wrong)
