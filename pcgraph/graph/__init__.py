"""Graph stage: a validated Spec -> PCGraph (a networkx DiGraph plus what the
compiler needs), with every semantic problem reported in one pass.

``structure`` holds the records, ``checks`` the semantic rules, ``build`` puts them
together; ``report`` checks a spec file end to end for ``pcgraph validate`` and
``views`` renders a graph as a table, JSON, dot or Mermaid."""

from .build import build_graph
from .structure import EdgeInfo, NodeInfo, PCGraph

__all__ = ["PCGraph", "NodeInfo", "EdgeInfo", "build_graph"]
