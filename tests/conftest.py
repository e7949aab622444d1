import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def write(tmp_path):
    """write(text, name='spec.yaml') -> path of a file holding ``text``."""

    def _write(text: str, name: str = "spec.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write

