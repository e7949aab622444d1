"""The memory budget reads the machine's memory without importing psutil (which
``pcgraph validate`` would pay for on every call); both must agree."""

import subprocess
import sys
from pathlib import Path

import psutil

from pcgraph.graph.budget import physical_memory


def test_physical_memory_is_psutils_total():
    mine, theirs = physical_memory(), psutil.virtual_memory().total
    assert abs(mine - theirs) <= 0.01 * theirs


def test_validate_does_not_import_psutil():
    spec = Path(__file__).resolve().parents[2] / "benchmarks" / "bench-mlp.yaml"
    code = (
        "import sys; from pcgraph.cli.app import main\n"
        f"try:\n    main(['validate', {str(spec)!r}])\nexcept SystemExit:\n    pass\n"
        "print('psutil' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
