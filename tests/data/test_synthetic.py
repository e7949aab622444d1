"""synthetic (shaped by the graph, teacher targets) and synthetic_text (Markov chain)."""

import pytest
import torch

import pcgraph
from pcgraph.compile import Program, compile_graph
from pcgraph.data import load_dataset
from pcgraph.data.synthetic import TEACHER_SEED_OFFSET
from pcgraph.core.errors import DataError

CLASSIFIER = """\
name: t
data: {dataset: synthetic, options: {n_train: 300, n_test: 100, seed: SEED}}
nodes:
  x: {shape: [6], role: input, bind: x}
  h: {shape: [16], family: gaussian}
  y: {shape: [5], family: categorical, role: target, bind: y}
  r: {shape: [3], family: gaussian, role: target, bind: r}
  b: {shape: [2], family: bernoulli, role: target, bind: b}
edges:
  - {from: x, to: h, activation: tanh}
  - {from: h, to: y}
  - {from: h, to: r}
  - {from: h, to: b}
"""

TOKENS = """\
name: lm
data: {dataset: synthetic, options: {n_train: 40, n_test: 10}}
nodes:
  tok: {shape: [6], role: input, bind: tokens, dtype: long}
  e: {shape: [6, 8], family: gaussian}
  nxt: {shape: [6, 11], family: categorical, role: target, bind: next}
edges:
  - {from: tok, to: e, transform: {type: embedding, vocab: 11}}
  - {from: e, to: nxt}
"""

AUTOENCODER = """\
name: ae
data: {dataset: synthetic, options: {n_train: 20, n_test: 5}}
nodes:
  img: {shape: [16], role: input, bind: image}
  z: {shape: [3], family: gaussian}
  rec: {shape: [16], family: gaussian, role: target, bind: image}
edges:
  - {from: img, to: z}
  - {from: z, to: rec}
"""


def graph(text, seed=0):
    return pcgraph.build_graph(pcgraph.loads_spec(text.replace("SEED", str(seed)), "t.yaml"))


def load(g):
    return pcgraph.load_data(g.spec.data, g)


def test_shapes_follow_the_bound_nodes():
    d = load(graph(CLASSIFIER))
    tr, te = d["train"], d["test"]
    assert set(tr) == {"x", "y", "r", "b"}
    assert tuple(tr["x"].shape) == (300, 6) and tr["x"].dtype == torch.float32
    assert tuple(te["x"].shape) == (100, 6)
    assert float(tr["x"].min()) >= 0 and float(tr["x"].max()) < 1
    assert tuple(tr["y"].shape) == (300,) and tr["y"].dtype == torch.int64
    assert tuple(tr["r"].shape) == (300, 3) and tr["r"].dtype == torch.float32
    assert tuple(tr["b"].shape) == (300, 2)
    assert float(tr["b"].min()) > 0 and float(tr["b"].max()) < 1  # probabilities


def test_categorical_targets_are_in_range_and_varied():
    d = load(graph(CLASSIFIER))
    y = torch.cat([d["train"]["y"], d["test"]["y"]])
    assert int(y.min()) >= 0 and int(y.max()) < 5
    assert len(torch.unique(y)) >= 3


def test_deterministic_per_seed_and_different_across_seeds():
    a, b, c = load(graph(CLASSIFIER, 0)), load(graph(CLASSIFIER, 0)), load(graph(CLASSIFIER, 1))
    for f in ("x", "y", "r", "b"):
        assert torch.equal(a["train"][f], b["train"][f]) and torch.equal(a["test"][f], b["test"][f])
    assert not torch.equal(a["train"]["x"], c["train"]["x"])


def test_targets_come_from_a_teacher_of_the_same_graph():
    g = graph(CLASSIFIER)
    d = load(g)
    torch.manual_seed(0 + TEACHER_SEED_OFFSET)  # the teacher's weights: drawn under the dataset's seed
    teacher = Program(g, device="cpu")
    x = torch.cat([d["train"]["x"], d["test"]["x"]])
    pred = teacher.predict({"x": x})
    assert torch.allclose(d["train"]["b"], pred["b"][:300].float(), atol=1e-6)
    # gaussian: mean plus noise of standard deviation 0.1 (the default)
    resid = torch.cat([d["train"]["r"], d["test"]["r"]]) - pred["r"].float()
    assert 0.08 < float(resid.std()) < 0.12 and abs(float(resid.mean())) < 0.02
    # categorical: the most probable class once every class's mean log-probability
    # over the examples is shifted to zero
    logp = pred["y"].float().log()
    want = (logp - logp.mean(0)).argmax(-1)
    assert torch.equal(torch.cat([d["train"]["y"], d["test"]["y"]]), want)


def test_the_student_does_not_start_as_its_teacher():
    # the dataset's seed draws the teacher, train.seed the student: with the targets'
    # noise off, a student equal to its teacher would predict them exactly at step 0
    text = CLASSIFIER.replace("seed: SEED}", "seed: 0, noise: 0.0}")
    a = pcgraph.build_graph(pcgraph.loads_spec(text + "train: {seed: 0}\n", "t.yaml"))
    b = pcgraph.build_graph(pcgraph.loads_spec(text + "train: {seed: 1}\n", "t.yaml"))
    da, db = load(a), load(b)
    for f in ("x", "y", "r", "b"):  # the data do not depend on train.seed
        assert torch.equal(da["train"][f], db["train"][f])
    student = compile_graph(a).predict({"x": da["train"]["x"]})
    assert float((student["r"] - da["train"]["r"]).abs().max()) > 0.1
    assert not torch.allclose(student["b"], da["train"]["b"], atol=1e-2)


def test_a_graph_without_its_teacher_is_one_sentence():
    g = graph(CLASSIFIER)
    with pytest.raises(DataError) as e:
        load_dataset(g.spec.data, g)  # the data stage alone cannot build the network
    assert str(e.value).count("\n") == 0 and "teacher" in str(e.value)


def test_global_random_state_is_untouched():
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    load(graph(CLASSIFIER))
    assert torch.equal(before, torch.random.get_rng_state())


def test_token_inputs_use_the_embedding_vocab():
    d = load(graph(TOKENS))
    t = d["train"]["tokens"]
    assert t.dtype == torch.int64 and tuple(t.shape) == (40, 6)
    assert int(t.min()) >= 0 and int(t.max()) < 11 and len(torch.unique(t)) > 5
    assert tuple(d["train"]["next"].shape) == (40, 6)
    assert int(d["train"]["next"].max()) < 11


def test_autoencoder_target_takes_the_input():
    d = load(graph(AUTOENCODER))
    assert set(d["train"]) == {"image"} and tuple(d["train"]["image"].shape) == (20, 16)


def test_synthetic_needs_the_graph():
    with pytest.raises(DataError, match="needs the graph"):
        load_dataset({"dataset": "synthetic"}, None)


# ----------------------------------------------------------------- synthetic_text
def text(**opts):
    return load_dataset({"dataset": "synthetic_text", "options": opts}, None)


def test_synthetic_text_shapes_and_shift():
    d = text(vocab_size=20, seq_len=12, n_train=50, n_test=10)
    t, n = d["train"]["tokens"], d["train"]["next_tokens"]
    assert tuple(t.shape) == (50, 12) and tuple(d["test"]["tokens"].shape) == (10, 12)
    assert t.dtype == torch.int64 and n.dtype == torch.int64
    assert torch.equal(n[:, :-1], t[:, 1:])
    assert int(t.min()) >= 0 and int(torch.cat([t, n]).max()) < 20


def test_synthetic_text_is_a_markov_chain():
    d = text(vocab_size=16, seq_len=20, n_train=400, n_test=50, branching=3)
    t, n = d["train"]["tokens"].flatten(), d["train"]["next_tokens"].flatten()
    succ = {}
    for a, b in zip(t.tolist(), n.tolist()):
        succ.setdefault(a, set()).add(b)
    assert max(len(s) for s in succ.values()) <= 3  # at most `branching` successors
    assert len(succ) == 16


def test_synthetic_text_deterministic():
    a, b, c = text(seed=1), text(seed=1), text(seed=2)
    assert torch.equal(a["train"]["tokens"], b["train"]["tokens"])
    assert not torch.equal(a["train"]["tokens"], c["train"]["tokens"])
    assert not torch.equal(a["train"]["tokens"][:10], a["test"]["tokens"][:10])
