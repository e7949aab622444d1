"""The exception hierarchy. Every user-facing failure is a PcgraphError whose
lines read ``FILE:LINE:COL: dotted.path: message``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Location:
    """Where something came from: a file position or a command-line override."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.col is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.col}"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_<>\-]+$")


def dotted(path: Sequence[object]) -> str:
    """``("edges", 0, "transform")`` -> ``edges.0.transform`` (the ``--set`` syntax);
    keys that are not plain words are quoted."""
    if not path:
        return "<spec>"
    return ".".join(str(p) if _PLAIN_KEY.match(str(p)) else json.dumps(str(p)) for p in path)


def _one_line(text: str) -> str:
    """Escape control characters so that one problem stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@dataclass(frozen=True)
class Issue:
    """One problem: where, which path (None: the location says it all), what is wrong."""

    path: tuple | None
    message: str
    location: Location | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location is not None else ""
        if self.path is None:  # about a file or option as a whole (a checkpoint, --resume)
            return f"{where}{_one_line(self.message)}"
        return f"{where}{dotted(self.path)}: {_one_line(self.message)}"


class PcgraphError(Exception):
    """Base of every error pcgraph raises on purpose."""

    def __init__(self, issues: str | Issue | Iterable[Issue]):
        if isinstance(issues, (str, Issue)):
            issues = [issues]
        self.issues: list = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    @property
    def lines(self) -> list[str]:
        return [str(i) for i in self.issues]


class SpecError(PcgraphError):
    """The YAML or its structure is invalid."""


class GraphError(PcgraphError):
    """The spec is well-formed but the graph it declares is not."""


class CompileError(PcgraphError):
    """The graph cannot be compiled to a program (e.g. a family needs energy: kl)."""


class DataError(PcgraphError):
    """A dataset is missing or does not fit the nodes it is bound to."""


class TrainError(PcgraphError):
    """Training failed (diverged energy, unusable run directory, ...)."""
