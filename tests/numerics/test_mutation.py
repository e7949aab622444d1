"""The numerical suite catches planted defects (drop the 1/2 of the Gaussian energy,
flip a sign in the categorical KL, forget a term of the prior, break a closed-form
gradient): with each defect applied, the suite must fail."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.mutations import MUTATIONS

#: the numerical suite, run the same way with and without a planted defect
CMD = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/numerics/test_families.py", "tests/numerics/test_program.py"]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_suite_fails_under_planted_defect(mutation):
    env = dict(os.environ, PCGRAPH_MUTATION=mutation)
    r = subprocess.run(
        CMD,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 1, f"the suite passed with '{mutation}' planted:\n{r.stdout[-2000:]}"
    assert "failed" in r.stdout


def test_suite_passes_without_defects():
    """The control: the same command without a mutation passes (so the failures above
    come from the defects)."""
    env = {k: v for k, v in os.environ.items() if k != "PCGRAPH_MUTATION"}
    r = subprocess.run(
        CMD,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:]
