"""Every registered schedule, in float64: the fast engine and the plain autograd path
take the same steps under it (weights included, where it steps them); its groups
cover each free node once, in an order that respects the graph's generations; and
where the weights must stay (a query) it leaves them alone."""

import pytest
import torch

from pcgraph.schedules import get, schedules
from tests.numerics.graphs import M3, MIXED, batch_for, program

NAMES = schedules.names()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", [M3, MIXED], ids=["m3", "mixed"])
@pytest.mark.parametrize("weight", [1.0, 0.25], ids=["clamped", "nudged"])
def test_fast_steps_equal_plain_autograd_under_every_schedule(name, text, weight):
    # nudged: the loss terms weighted by beta, a weight step's gradient divided by it
    sgd = ["train.weights.optimizer={type: sgd, lr: 0.05}"]
    fast, plain = program(text, overrides=sgd), program(text, overrides=sgd)
    plain.load_state_dict(fast.state_dict())
    batch = batch_for(fast)
    a = fast.init_state(batch, loss_weight=weight)
    b = plain.init_state(batch, noise=a.noise, loss_weight=weight)
    opt = {"type": "sgd", "lr": 0.05}
    fast.infer(a, steps=4, optimizer=opt, schedule=name, fast=True)
    plain.infer(b, steps=4, optimizer=opt, schedule=name, fast=False)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-8, atol=1e-10)
    for p, q in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_groups_cover_every_free_node_once_and_never_split_an_edge_the_wrong_way(name):
    prog = program(MIXED)
    free = [n for n in prog.order if prog.nodes[n].role != "input"]
    groups = get(name).groups(free, prog.generations)
    flat = [n for g in groups for n in g]
    assert sorted(flat) == sorted(free)
    where = {n: k for k, g in enumerate(groups) for n in g}
    # a node's update never comes before its children's within one step, unless they share a group
    for e in prog.edges:
        for s in e.sources:
            if s in where and e.target in where:
                assert where[e.target] <= where[s]


@pytest.mark.parametrize("name", NAMES)
def test_where_the_weights_must_stay_no_schedule_moves_them(name):
    prog = program(M3)
    before = [p.detach().clone() for p in prog.parameters()]
    state = prog.init_state(batch_for(prog))
    prog.infer(state, steps=3, optimizer={"type": "sgd", "lr": 0.05}, schedule=get(name).at_fixed_weights())
    assert not get(name).at_fixed_weights().steps_weights
    assert all(torch.equal(p, q) for p, q in zip(prog.parameters(), before))
