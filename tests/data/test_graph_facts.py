"""Loading with the graph's plain facts only (no PCGraph): bound nodes and a teacher."""

import pytest
import torch

from pcgraph.data import BoundNode, GraphFacts, load_dataset
from pcgraph.core.errors import DataError

W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0]])  # 2 inputs -> 3 outputs


def teacher(inputs):
    z = inputs["x"] @ W
    return {"p": torch.sigmoid(z), "c": torch.softmax(z, -1)}


NODES = (
    BoundNode("x", "input", (2,), bind="x"),
    BoundNode("p", "target", (3,), bind="p", family="bernoulli"),
    BoundNode("c", "target", (3,), bind="c", family="categorical"),
)


def test_targets_follow_a_plain_teacher():
    facts = GraphFacts(NODES, teacher=teacher)
    d = load_dataset({"dataset": "synthetic", "options": {"n_train": 40, "n_test": 10, "seed": 4}}, facts)
    x = torch.cat([d["train"]["x"], d["test"]["x"]])
    assert x.shape == (50, 2) and float(x.min()) >= 0 and float(x.max()) < 1
    z = x @ W
    p = torch.cat([d["train"]["p"], d["test"]["p"]])
    assert torch.allclose(p, torch.sigmoid(z))  # bernoulli: the probabilities themselves
    logp = torch.log_softmax(z, -1)
    want = (logp - logp.mean(0, keepdim=True)).argmax(-1)  # the class after centring each class's log-probability
    assert torch.equal(torch.cat([d["train"]["c"], d["test"]["c"]]), want)


def test_token_ids_checked_against_the_given_vocab():
    nodes = (BoundNode("t", "input", (4,), dtype="long", bind="tokens", vocab=5),)
    d = load_dataset({"dataset": "synthetic", "options": {"n_train": 30, "n_test": 5}}, GraphFacts(nodes))
    assert int(d["train"]["tokens"].max()) < 5 and d["train"]["tokens"].dtype == torch.int64
    small = (BoundNode("t", "input", (4,), dtype="long", bind="tokens", vocab=3),)
    with pytest.raises(DataError, match="holds token ids 0..4 .* has vocab 3"):
        load_dataset(
            {"dataset": "synthetic_text", "options": {"vocab_size": 5, "seq_len": 4, "n_train": 50, "n_test": 5}},
            GraphFacts(small),
        )


def test_no_teacher_is_one_sentence():
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "synthetic"}, GraphFacts(NODES))
    assert str(e.value).count("\n") == 0 and "teacher" in str(e.value)
