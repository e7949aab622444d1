"""``init`` of a linear edge: the weights' spread matches the closed forms of Glorot
(Xavier) and He initialisation."""

import math

import pytest
import torch

from pcgraph.core.activations import get as activation
from pcgraph.transforms import transforms

FAN_IN, FAN_OUT = 784, 64


def weights(init, act):
    cls = transforms.get("linear")
    torch.manual_seed(0)
    return cls(cls.Options(init=init, bias=False), [(FAN_IN,)], (FAN_OUT,), activation(act)).weight.detach().double()


@pytest.mark.parametrize(
    "init, act, bound",
    [
        ("xavier_uniform", "leaky_relu", math.sqrt(6 / (FAN_IN + FAN_OUT))),  # gain 1 whatever the activation
        ("kaiming_uniform", "identity", math.sqrt(3 / FAN_IN)),  # He with the activation's gain (1)
        ("auto", "leaky_relu", math.sqrt(2 / (1 + 0.01**2)) * math.sqrt(3 / FAN_IN)),
        ("auto", "sigmoid", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ],
)
def test_uniform_inits_fill_their_interval(init, act, bound):
    w = weights(init, act)
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound  # 50 000 draws reach the edge
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_xavier_normal_has_the_glorot_variance():
    w = weights("xavier_normal", "tanh")
    assert w.mean().item() == pytest.approx(0.0, abs=0.002)
    assert w.std().item() == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)
    assert w.abs().max() > math.sqrt(6 / (FAN_IN + FAN_OUT))  # not bounded like the uniform one
