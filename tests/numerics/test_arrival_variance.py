"""The gradient at arrival of a hidden node's learned variance, which backprop's loss
does not contain: the node's energy differentiated at its arrival state, one inverse
curvature step from the forward value along the children's message."""

import torch

from tests.numerics.graphs import MIXED, batch_for, program


def test_learned_variance_gradient_at_arrival_by_hand():
    prog = program(MIXED)
    batch = batch_for(prog, B=3)
    state = prog.init_state(batch)
    node = next(n for n in prog.node_params if prog.in_edges[n])
    s = prog.node_params[node]["logvar"].detach()
    # the children's message at arrival is backprop's delta: d(BP loss)/d(node's value),
    # read off the forward pass through the edge that predicts the node
    (edge,) = prog.in_edges[node]
    seen = []
    t = prog.transforms[edge.name]
    forward = t.forward

    def kept(*xs):
        out = forward(*xs)
        out.retain_grad()
        seen.append(out)
        return out

    t.forward = kept
    with torch.enable_grad():
        terms, _ = prog.loss_terms(batch, noise=state.noise)
        torch.stack(list(terms.values())).sum().backward()
    del t.forward
    delta = seen[0].grad
    # arrival: x_a = mu - e^s * delta, so eps = -e^s delta and
    # dE/ds = 1/2 (1 - eps^2 e^-s) = 1/2 (1 - e^s delta^2), summed over units' batch, batch mean
    expected = (0.5 * (1 - torch.exp(s) * delta**2)).mean(0)
    prog.arrival_grads(state)
    torch.testing.assert_close(prog.node_params[node]["logvar"].grad, expected, rtol=1e-10, atol=1e-12)
    assert (delta.abs() > 0).any()
