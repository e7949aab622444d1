"""pcgraph: predictive-coding networks declared as graphs.

Pipeline: ``load_spec`` (YAML -> Spec) -> ``build_graph`` (-> PCGraph, networkx)
-> ``compile_graph`` (-> Program, torch) -> ``Trainer``.

The names below are loaded on first use (PEP 562), so ``import pcgraph`` costs
nothing and reading a spec never imports torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "load_spec": "pcgraph.spec",
    "loads_spec": "pcgraph.spec",
    "schema": "pcgraph.spec",
    "Spec": "pcgraph.spec",
    "build_graph": "pcgraph.graph",
    "PCGraph": "pcgraph.graph",
    "compile_graph": "pcgraph.compile",
    "Program": "pcgraph.compile",
    "State": "pcgraph.compile",
    "load_data": "pcgraph.train.loading",
    "Trainer": "pcgraph.train",
    "Callback": "pcgraph.train",
    "PcgraphError": "pcgraph.core.errors",
    "SpecError": "pcgraph.core.errors",
    "GraphError": "pcgraph.core.errors",
    "CompileError": "pcgraph.core.errors",
    "DataError": "pcgraph.core.errors",
    "TrainError": "pcgraph.core.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pcgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
