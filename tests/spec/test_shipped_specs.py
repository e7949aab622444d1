"""Every spec we ship validates, and parameter counts match hand counts."""

import math

import networkx as nx
import pytest

import pcgraph
from tests.conftest import SPECS

SHIPPED = sorted(SPECS.glob("*.yaml"))


def linear(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_spec_validates(path):
    g = pcgraph.build_graph(pcgraph.load_spec(path))
    assert isinstance(g.nx, nx.DiGraph)
    assert nx.is_directed_acyclic_graph(g.nx)
    for name, attrs in g.nx.nodes(data=True):
        assert {"role", "family", "shape", "param_shape", "dtype"} <= set(attrs)


def test_paper_networks_are_all_there():
    names = {p.stem for p in SHIPPED}
    assert {"mnist-m1", "mnist-m2", "mnist-m3", "mnist-vae", "lm-transformer", "fashion-cnn", "digits-m2"} <= names


@pytest.mark.parametrize("name", ["mnist-m1", "mnist-m2", "mnist-m3"])
def test_mlp_parameter_count(name):
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / f"{name}.yaml"))
    assert g.params_total == linear(784, 512) + 2 * linear(512, 512) + linear(512, 10)


def test_vae_shapes_and_count():
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / "mnist-vae.yaml"))
    assert g.nodes["z"].shape == (16,)
    assert g.nodes["z"].param_shape == (32,)  # mean and log-variance
    expected = (
        linear(784, 512) + linear(512, 256) + linear(256, 32) + linear(16, 256) + linear(256, 512) + linear(512, 784)
    )
    assert g.params_total == expected


def test_transformer_count():
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / "lm-transformer.yaml"))
    d, L, V = 128, 32, 8001
    expected = V * d + L * d + 6 * linear(d, d) + 2 * (2 * d) + linear(d, V)
    assert g.params_total == expected
    assert g.nodes["attn"].family == "categorical"


def test_transformer_block_count():
    """The glue as one block edge: the same parameters, without the nodes hn, ff and y."""
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / "lm-transformer-block.yaml"))
    d, L, V = 128, 32, 8001
    assert g.params_total == V * d + L * d + 6 * linear(d, d) + 2 * (2 * d) + linear(d, V)
    assert not {"hn", "ff", "y"} & set(g.nodes)
    assert g.edge("e8").param_shapes == {
        "s0_weight": (d,), "s0_bias": (d,),
        "s1_weight0": (d, d), "s1_bias0": (d,), "s1_weight1": (d, d), "s1_bias1": (d,),
        "s2_weight": (d,), "s2_bias": (d,),
    }


def test_cnn_count():
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / "fashion-cnn.yaml"))

    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    assert g.params_total == conv(1, 16, 5) + conv(16, 32, 5) + linear(32 * 7 * 7, 128) + linear(128, 10)


def test_graph_edges_carry_spec_edge_and_argument_position():
    g = pcgraph.build_graph(pcgraph.load_spec(SPECS / "lm-transformer.yaml"))
    att = g.nx.edges["q", "attn"]
    assert att["transform"] == "attention_scores" and att["arg"] == 0
    assert g.nx.edges["k", "attn"]["arg"] == 1
    assert g.nx.edges["v", "ctx"]["arg"] == 1
    assert g.generations[0] == ["tokens"]
    assert g.order.index("attn") > g.order.index("q")
    assert math.isclose(g.nx.graph["params_total"], g.params_total)
