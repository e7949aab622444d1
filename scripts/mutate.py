"""Mutation testing of pcgraph's numerics: does the test suite notice a wrong sign,
a wrong operator or a wrong constant in the code that runs?

A mutant changes one token of one source file:

* a binary operator: ``+`` <-> ``-``, ``*`` -> ``/`` (augmented assignments too);
* a float literal: doubled (``0.5`` -> ``1.0``).

Only code inside a function whose name contains one of WORDS is mutated, in the
files under DIRS; not default arguments, decorators or annotations, not tuple, list
or string arithmetic (``(B,) + shape``, ``f"..." + s``), not float literals equal to
zero (doubling leaves them alone), and not functions for CUDA/GPU only. Edits are made
at the exact byte offsets the parser reports, so the rest of the file is untouched.

Each mutant runs in a scratch copy of the repository (never in the working tree):
the file is rewritten there, the test selection runs with ``-x``, and the original is
put back. A mutant is *killed* when the tests fail (or time out), *survived* when
they pass.

    python scripts/mutate.py --list                    # every site
    python scripts/mutate.py --sample 16 --seed 1      # 16 random mutants
    python scripts/mutate.py --only 12,40              # chosen sites (indices of --list)
    python scripts/mutate.py --sample 16 --full        # the whole suite per mutant
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRS = ["pcgraph/families", "pcgraph/transforms", "pcgraph/compile"]
WORDS = ["energ", "error", "grad", "vjp", "kl", "natural", "project", "step", "update", "direction",
         "infer", "forward", "sweep", "prior", "moment", "scale", "guard", "score", "synthetic"]
SKIP_WORDS = ["cuda", "gpu"]
#: the fast selection, quickest checks first (with -x the first failure ends a run)
FAST_TESTS = ["tests/numerics/test_family_contracts.py", "tests/numerics/test_state_optim.py", "tests/numerics/test_families.py",
              "tests/numerics/test_transforms.py", "tests/numerics/test_fast_vs_reference.py",
              "tests/numerics/test_inference_defaults.py", "tests/numerics/test_arrival.py",
              "tests/numerics/test_arrival_variance.py", "tests/numerics", "tests/compile"]
FLIP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/")}


@dataclass
class Site:
    index: int
    path: str  # relative to the repository root
    line: int  # 1-based
    col: int  # byte offset of the edit in its line
    old: str  # the bytes replaced (decoded)
    new: str
    function: str
    context: str  # the source line, stripped

    def label(self) -> str:
        return f"{self.path}:{self.line} in {self.function}: '{self.old}' -> '{self.new}'  | {self.context}"


def _is_sequence(node: ast.AST) -> bool:
    """Whether an operand is (obviously) a tuple, list or string rather than a number."""
    if isinstance(node, (ast.Tuple, ast.List, ast.JoinedStr, ast.ListComp)):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes, tuple))
    if isinstance(node, ast.Name):
        return "shape" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "shape" in node.attr.lower()
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Slice) and _is_sequence(node.value)
    if isinstance(node, ast.Call):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        return name in ("tuple", "list", "str", "fmt", "repr", "join", "format")
    if isinstance(node, ast.IfExp):
        return _is_sequence(node.body) or _is_sequence(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        return _is_sequence(node.left) or _is_sequence(node.right)
    return False


def _op_offset(lines: list[bytes], start: tuple[int, int], end: tuple[int, int], token: bytes) -> tuple[int, int] | None:
    """(line, byte col) of ``token`` between two positions, outside comments."""
    (l0, c0), (l1, c1) = start, end
    for ln in range(l0, l1 + 1):
        text = lines[ln - 1]
        a = c0 if ln == l0 else 0
        b = c1 if ln == l1 else len(text)
        seg = text[a:b]
        hash_at = seg.find(b"#")
        if hash_at >= 0:
            seg = seg[:hash_at]
        i = seg.find(token)
        while i >= 0:
            after = seg[i + len(token): i + len(token) + 1]
            before = seg[i - 1: i] if i else b""
            if token == b"*" and (after == b"*" or before == b"*"):
                i = seg.find(token, i + 2)
                continue
            return ln, a + i
        # not on this line
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str, lines: list[bytes], words, skip_words):
        self.path, self.lines, self.words, self.skip_words = path, lines, words, skip_words
        self.stack: list[str] = []
        self.found: list[tuple] = []
        self.skip_ids: set[int] = set()

    def _eligible(self) -> bool:
        names = [n.lower() for n in self.stack]
        if any(w in n for n in names for w in self.skip_words):
            return False
        return any(w in n for n in names for w in self.words)

    def _function(self, node):
        # default arguments, decorators and annotations are never mutated
        skip = list(node.args.defaults) + [d for d in node.args.kw_defaults if d is not None]
        skip += list(getattr(node, "decorator_list", []))
        skip += [a.annotation for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs if a.annotation]
        if getattr(node, "returns", None) is not None:
            skip.append(node.returns)
        for s in skip:
            for sub in ast.walk(s):
                self.skip_ids.add(id(sub))
        self.stack.append(getattr(node, "name", "<lambda>"))
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node):
        for s in node.args.defaults:
            for sub in ast.walk(s):
                self.skip_ids.add(id(sub))
        self.generic_visit(node)

    def visit_JoinedStr(self, node):
        return  # f-strings: formatting, not arithmetic

    def visit_AnnAssign(self, node):
        for sub in ast.walk(node.annotation):
            self.skip_ids.add(id(sub))
        self.generic_visit(node)

    def _add(self, line, col, old: bytes, new: bytes):
        self.found.append((self.path, line, col, old.decode(), new.decode(), self.stack[-1] if self.stack else "<module>"))

    def visit_BinOp(self, node):
        if id(node) not in self.skip_ids and self._eligible() and type(node.op) in FLIP:
            if not (_is_sequence(node.left) or _is_sequence(node.right)):
                old, new = FLIP[type(node.op)]
                start = (node.left.end_lineno, node.left.end_col_offset)
                end = (node.right.lineno, node.right.col_offset)
                at = _op_offset(self.lines, start, end, old.encode())
                if at is not None:
                    self._add(at[0], at[1], old.encode(), new.encode())
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        if id(node) not in self.skip_ids and self._eligible() and type(node.op) in FLIP and not _is_sequence(node.value):
            old, new = FLIP[type(node.op)]
            start = (node.target.end_lineno, node.target.end_col_offset)
            end = (node.value.lineno, node.value.col_offset)
            at = _op_offset(self.lines, start, end, (old + "=").encode())
            if at is not None:
                self._add(at[0], at[1], (old + "=").encode(), (new + "=").encode())
        self.generic_visit(node)

    def visit_Constant(self, node):
        if id(node) in self.skip_ids or not self._eligible():
            return
        if type(node.value) is float and node.value != 0.0 and node.lineno == node.end_lineno:
            old = self.lines[node.lineno - 1][node.col_offset: node.end_col_offset]
            self._add(node.lineno, node.col_offset, old, repr(node.value * 2).encode())


def find_sites(root: Path, dirs, words, skip_words=SKIP_WORDS) -> list[Site]:
    found = []
    for d in dirs:
        for f in sorted((root / d).rglob("*.py")):
            rel = str(f.relative_to(root))
            data = f.read_bytes()
            lines = data.splitlines(keepends=True)
            finder = _Finder(rel, lines, [w.lower() for w in words], skip_words)
            finder.visit(ast.parse(data, filename=rel))
            found.extend(finder.found)
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    sites = []
    for path, line, col, old, new, fn in found:
        ctx = (root / path).read_bytes().splitlines()[line - 1].decode().strip()
        sites.append(Site(len(sites), path, line, col, old, new, fn, ctx))
    return sites


def mutated_source(original: bytes, site: Site) -> bytes:
    lines = original.splitlines(keepends=True)
    text = lines[site.line - 1]
    old = site.old.encode()
    assert text[site.col: site.col + len(old)] == old, (site.label(), text)
    lines[site.line - 1] = text[: site.col] + site.new.encode() + text[site.col + len(old):]
    out = b"".join(lines)
    ast.parse(out)  # a mutant is still valid Python
    return out


def scratch_copy(root: Path) -> Path:
    """A copy of the repository's tracked and untracked-but-not-ignored files."""
    dest = Path(tempfile.mkdtemp(prefix="pcgraph-mutant-"))
    try:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.splitlines()
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    for rel in files:
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PCGRAPH_MUTATION", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "killed (timeout)", time.time() - t0, ""
    except BaseException:  # interrupted: the test run goes too
        proc.kill()
        raise
    r = subprocess.CompletedProcess(cmd, proc.returncode, stdout, "")
    tail = (r.stdout or "").strip().splitlines()
    last = tail[-1] if tail else ""
    first_fail = next((ln for ln in tail if ln.startswith("FAILED") or ln.startswith("ERROR")), last)
    if r.returncode == 0:
        return "survived", time.time() - t0, last
    if r.returncode in (1, 2, 3, 4):
        return "killed", time.time() - t0, first_fail
    return f"killed (exit {r.returncode})", time.time() - t0, first_fail


def run_mutants(copy: Path, chosen: list[Site], tests: list[str], timeout: float, out) -> list[tuple[Site, str]]:
    """Each mutant in turn in the scratch copy, the file restored after each."""
    results = []
    for k, s in enumerate(chosen, 1):
        target = copy / s.path
        original = target.read_bytes()
        target.write_bytes(mutated_source(original, s))
        try:
            verdict, secs, why = run_tests(copy, tests, timeout)
        finally:
            target.write_bytes(original)
        results.append((s, verdict))
        print(f"[{k}/{len(chosen)}] {verdict:<16} {secs:5.0f} s  #{s.index} {s.label()}", flush=True)
        if verdict == "survived" or why:
            print(f"      {why}", flush=True)
        if out:
            out.write(json.dumps({**asdict(s), "verdict": verdict, "seconds": round(secs, 1), "detail": why}) + "\n")
            out.flush()
    return results


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated run cleans its scratch copy
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dirs", nargs="+", default=DIRS, help="source folders to mutate (relative to the root)")
    ap.add_argument("--words", nargs="+", default=WORDS, help="a mutated function's name contains one of these")
    ap.add_argument("--list", action="store_true", help="list the sites and stop")
    ap.add_argument("--sample", type=int, help="run this many random sites")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated site indices (of --list) to run")
    ap.add_argument("--full", action="store_true", help="run the whole suite (as pytest does by default) per mutant")
    ap.add_argument("--tests", nargs="+", help=f"test paths per mutant (default: {' '.join(FAST_TESTS)})")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant before it counts as killed")
    ap.add_argument("--json", help="write the results here as JSON lines")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without a mutation (known to pass)")
    ap.add_argument("--root", default=str(ROOT))
    a = ap.parse_args(argv)
    root = Path(a.root).resolve()
    sites = find_sites(root, a.dirs, a.words)
    if a.list:
        for s in sites:
            print(f"{s.index:4d}  {s.label()}")
        print(f"{len(sites)} sites")
        return 0
    chosen = sites
    if a.only:
        chosen = [sites[int(i)] for i in a.only.split(",")]
    elif a.sample is not None:
        chosen = random.Random(a.seed).sample(sites, min(a.sample, len(sites)))
    tests = [] if a.full else (a.tests or FAST_TESTS)
    copy = scratch_copy(root)
    out = open(a.json, "a") if a.json else None
    results = []
    try:
        if not a.no_baseline:
            base, secs, last = run_tests(copy, tests, a.timeout)
            print(f"unmutated: {'passed' if base == 'survived' else 'FAILED'} ({secs:.0f} s) {last}", flush=True)
            if base != "survived":
                print("the tests fail without a mutation: fix that first")
                return 2
        results = run_mutants(copy, chosen, tests, a.timeout, out)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        if out:
            out.close()
    killed = sum(v.startswith("killed") for _, v in results)
    print(f"\nkilled {killed} of {len(results)} ({100.0 * killed / max(1, len(results)):.1f} %)")
    for s, v in results:
        if v == "survived":
            print(f"  survived: #{s.index} {s.label()}")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
