"""Spec stage: YAML text -> validated ``Spec`` (pydantic), with file positions kept."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from ..core.errors import Issue, Location, SpecError
from .models import DataSpec, EdgeSpec, NodeSpec, Spec, TrainSpec
from .overrides import apply_overrides
from .limits import read_bounded
from .source import SourceMap, load_yaml
from .validate import translate


def spec_from_data(data: Any, smap: SourceMap | None = None) -> Spec:
    """Validate plain data (as from YAML) into a Spec; SpecError lists every problem."""
    smap = smap or SourceMap("<spec>")
    if not isinstance(data, dict):
        msg = f"a spec is a mapping with name, nodes and edges, got {type(data).__name__}"
        raise SpecError(Issue(("<spec>",), msg, smap.locate(())))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(translate(exc, data, smap, Spec)) from None
    return spec.located(smap)


def load_spec(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Spec:
    """Read and validate a spec file; ``overrides`` are ``dotted.path=value`` strings."""
    path = Path(path)
    try:
        text = read_bounded(path)
    except FileNotFoundError:
        raise SpecError(Issue(("<spec>",), "no such file", Location(str(path)))) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(Issue(("<spec>",), f"cannot read the spec: {e}", Location(str(path)))) from None
    return loads_spec(text, str(path), overrides)


def loads_spec(text: str, file: str = "<string>", overrides: Iterable[str] = ()) -> Spec:
    """Like ``load_spec`` for YAML text."""
    data, smap = load_yaml(text, file)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, smap, overrides, Spec)
    return spec_from_data(data, smap)


def schema() -> dict:
    """The JSON Schema of the spec language (for editors and yaml-language-server)."""
    out = Spec.model_json_schema(by_alias=True, mode="validation")
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://pcgraph.dev/spec.schema.json", **out
    }
    return out


def schema_json() -> str:
    return json.dumps(schema(), indent=2)


__all__ = [
    "Spec",
    "NodeSpec",
    "EdgeSpec",
    "DataSpec",
    "TrainSpec",
    "SourceMap",
    "load_spec",
    "loads_spec",
    "spec_from_data",
    "schema",
]
