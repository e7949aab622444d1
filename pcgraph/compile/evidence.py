"""What a query infers and what it predicts.

The clamped nodes (fully or in part) are the evidence. A free node with evidence
below it (a clamped node among its descendants) is *inferred*: inference moves it to
explain that evidence. A free node with no evidence below it is *predicted*: it takes
the value its parents predict from their final states (a root: its prior's mean), and
its energy terms take no part in the inference of the nodes above it.

Why: the predicted nodes form a set closed under descent that holds no evidence.
Summing the joint distribution over such a set leaves the distribution of the other
nodes unchanged (each conditional integrates to one), so the posterior of the
inferred nodes is the one of the graph without the predicted nodes, and a predicted
node's most likely value given its parents is their prediction. Inference on the
whole graph would instead let a predicted node's own terms pull the nodes above it
-- a prior term on a VAE's bottleneck, with no image observed below it, drags the
encoder towards the prior mean and every reconstruction towards the average image.

On a DAG the predicted nodes are a forward pass from the inferred ones. On a cyclic
graph they are the free prediction (``prediction.free_prediction``) with everything
above them held: the same definition as evaluation's, which is this rule with only
the inputs clamped.
"""

from __future__ import annotations

import dataclasses

import networkx

from ..graph.structure import PCGraph
from .energy import mu
from .forward import predict_node, see
from .prediction import free_prediction
from .state import State


def explained(q, evidence) -> set[str]:
    """The evidence and every node with evidence below it: the nodes whose energy
    terms the inference of a query keeps."""
    out = set(evidence)
    for n in evidence:
        out |= networkx.ancestors(q.graph.nx, n)
    return out


def predicted_nodes(q, evidence) -> list[str]:
    """The nodes a query with this evidence predicts (in the program's order)."""
    keep = explained(q, evidence)
    return [n for n in q.order if n not in keep]


def evidence_program(q, keep: set[str]):
    """The program of the nodes in ``keep`` (closed under parents) with ``q``'s weights:
    ``q`` itself when it keeps every node."""
    if len(keep) == len(q.nodes):
        return q
    g = q.graph
    kept = {e.name for e in g.edges if e.target in keep}
    edges = [
        e if e.share is None or e.share in kept else dataclasses.replace(e, share=None)
        for e in g.edges
        if e.name in kept
    ]
    order = None if g.order is None else [n for n in g.order if n in keep]
    generations = (
        None
        if g.generations is None
        else [[n for n in level if n in keep] for level in g.generations if any(n in keep for n in level)]
    )
    nodes = {n: info for n, info in g.nodes.items() if n in keep}
    sub_graph = PCGraph(g.name, g.spec, nodes, edges, order, generations, g.source, g.nx.subgraph(keep).copy())
    sub = type(q)(sub_graph, energy=q.energy_kind, device=q.device, dtype=q.dtype)
    weights = q.state_dict()
    sub.load_state_dict({k: weights[k] for k in sub.state_dict()})
    sub.fast = q.fast
    sub.eval()
    return sub


def substate(sub, state: State) -> State:
    """The part of ``state`` that program ``sub`` holds (the same tensors)."""
    return State(
        {n: state[n] for n in sub.order},
        {n: v for n, v in state.noise.items() if n in sub.nodes},
        frozenset(n for n in state.clamped if n in sub.nodes),
    )


def predict(q, state: State, nodes, steps=None, optimizer=None) -> None:
    """Put the predicted ``nodes`` at their prediction, in place: a forward pass from
    the other nodes' states (a DAG), or their parents' prediction at the free
    prediction with the others held (a cyclic graph, as evaluation scores it)."""
    if not nodes:
        return
    if not q.graph.is_dag:  # relax them, then each takes its prediction there
        free_prediction(q, state, nodes, steps, optimizer)
        mus = mu(q, state)
        for n in nodes:
            if n in mus:
                state[n] = q.families[n].from_prediction(mus[n], True)
        return
    todo = set(nodes)
    vis = {}
    for n in q.order:
        if n in todo and q.in_edges[n]:  # a root keeps its prior's mean from the start
            state[n] = q.families[n].from_prediction(predict_node(q, n, vis), True)
        _, v = see(q, n, state[n], state.clamped, state.noise)
        if v is not None:
            vis[n] = v
