"""pcgraph: predictive-coding networks declared as graphs.

Pipeline: ``load_spec`` (YAML -> Spec) -> ``build_graph`` (-> PCGraph, networkx)
-> ``compile`` (-> Program, torch) -> ``Trainer``.
"""

from .compile import Program, State, compile
from .core.errors import CompileError, DataError, GraphError, PcgraphError, SpecError, TrainError
from .graph import PCGraph, build_graph
from .spec import Spec, load_spec, loads_spec, schema
from .train import Callback, Trainer

__version__ = "0.1.0"

__all__ = [
    "load_spec",
    "loads_spec",
    "build_graph",
    "schema",
    "compile",
    "Program",
    "State",
    "Trainer",
    "Callback",
    "Spec",
    "PCGraph",
    "PcgraphError",
    "SpecError",
    "GraphError",
    "CompileError",
    "DataError",
    "TrainError",
]
