"""Generated datasets: ``synthetic`` (shaped by the graph) and ``synthetic_text``.

``synthetic`` gives one field per bound node of the graph. Inputs are random: float
inputs uniform in [0, 1) of the node's shape, token inputs uniform in [0, vocab)
(vocab of the embedding edge that reads them). Targets come from a fixed random
teacher: the same graph compiled with the torch seed ``seed + 12345``, run forward
on the inputs (``Program.predict``); the compile stage provides it
(``GraphFacts.teacher``). Each target's family makes its data from the teacher's
prediction (``Family.synthetic_target``): a categorical target is the teacher's most
probable class (an index) once its output bias is shifted so that every class has
mean log-probability zero over the generated examples (which balances the classes),
a Gaussian one its mean plus ``noise`` times standard normal noise, a Bernoulli one
its probabilities. A target bound to the same field
as an input (an autoencoder) takes the input's values.

``synthetic_text`` gives token sequences from a fixed random Markov chain: every
token has ``branching`` possible successors with Dirichlet-distributed weights.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ..core.lazy import np, torch
from ..families import families
from .check import GraphFacts, Teacher
from .dataset import TEXT_FIELDS, Dataset, DatasetOptions, data_error, register

#: the teacher's torch seed is the dataset seed plus this
TEACHER_SEED_OFFSET = 12345


class SyntheticOptions(DatasetOptions):
    n_train: PositiveInt = 1024
    n_test: PositiveInt = 256
    seed: int = 0
    noise: float = Field(0.1, ge=0)


def _inputs(inputs, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """{bind: random tensor[n, ...]} for the input nodes."""
    fields: dict[str, torch.Tensor] = {}
    for nd in inputs:
        if nd.bind in fields:
            if tuple(fields[nd.bind].shape[1:]) != tuple(nd.shape):
                raise data_error(
                    f"synthetic: input nodes binding '{nd.bind}' have different shapes", ("nodes", nd.name, "bind")
                )
            continue
        shape = (n,) + tuple(nd.shape)
        if nd.dtype == "long":
            if nd.vocab is None:
                raise data_error(
                    f"synthetic: no embedding edge reads token node '{nd.name}', so its vocabulary is unknown",
                    ("nodes", nd.name),
                )
            fields[nd.bind] = torch.randint(0, nd.vocab, shape, generator=gen, dtype=torch.int64)
        else:
            fields[nd.bind] = torch.rand(shape, generator=gen, dtype=torch.float32)
    return fields


def _target(family: str | None, p: torch.Tensor, noise: float, gen: torch.Generator) -> torch.Tensor:
    """A target from the teacher's predictions ``p``, as the node's family makes it
    (``Family.synthetic_target``); a node without a family takes ``p`` itself."""
    return p if family is None else families.get(family).synthetic_target(p, noise, gen)


def synthetic_fields(graph: GraphFacts, n: int, seed: int, noise: float) -> dict[str, torch.Tensor]:
    """{bind: tensor[n, ...]} for every bound node of ``graph`` (see the module doc)."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [nd for nd in graph.nodes if nd.role == "input" and nd.bind]
    fields = _inputs(inputs, n, gen)
    targets = [nd for nd in graph.nodes if nd.role == "target" and nd.bind and nd.bind not in fields]
    if not targets:
        return fields
    if not inputs:
        raise data_error(
            "synthetic: the graph has no input node, so there is nothing to run the teacher on", ("nodes",)
        )
    preds = teacher_predictions(graph.teacher, {b: fields[b] for b in {nd.bind for nd in inputs}}, seed)
    for nd in targets:
        if nd.bind not in fields:
            fields[nd.bind] = _target(nd.family, preds[nd.name].to(torch.float32), noise, gen).contiguous()
    return fields


def teacher_predictions(teacher: Teacher | None, inputs: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The teacher's predictions for ``inputs``, built and run under the torch seed
    ``seed + 12345`` (the caller's random state is left as it was)."""
    if teacher is None:
        raise data_error(
            "synthetic: the targets come from a teacher network, and none was given with the graph", ("nodes",)
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + TEACHER_SEED_OFFSET)
        return teacher(inputs)


def _split(fields: dict, n_train: int) -> dict:
    return {
        "train": {k: v[:n_train] for k, v in fields.items()},
        "test": {k: v[n_train:] for k, v in fields.items()},
    }


@register
class Synthetic(Dataset):
    name = "synthetic"
    Options = SyntheticOptions
    fields = None
    description = "random inputs and a fixed random teacher network's outputs, shaped by the bound nodes"

    def load(self, options, data_dir, graph):
        if graph is None:
            raise data_error("synthetic: the fields follow the graph's bound nodes, so loading needs the graph")
        fields = synthetic_fields(graph, options.n_train + options.n_test, options.seed, options.noise)
        return _split(fields, options.n_train)


class SyntheticTextOptions(DatasetOptions):
    vocab_size: PositiveInt = 64
    seq_len: PositiveInt = 32
    n_train: PositiveInt = 1024
    n_test: PositiveInt = 256
    seed: int = 0
    branching: PositiveInt = Field(8, description="how many different tokens may follow each token")


def markov_chain(vocab_size: int, branching: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(successors [V, K] int64, probabilities [V, K]): the chain's transitions."""
    rng = np.random.default_rng(seed)
    k = min(branching, vocab_size)
    succ = np.stack([rng.choice(vocab_size, size=k, replace=False) for _ in range(vocab_size)]).astype(np.int64)
    probs = rng.dirichlet(np.full(k, 0.5), size=vocab_size)
    return succ, probs


def markov_sequences(vocab_size: int, branching: int, seed: int, n: int, length: int) -> np.ndarray:
    """[n, length] token sequences: a uniform first token, then the chain's steps."""
    succ, probs = markov_chain(vocab_size, branching, seed)
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    rng = np.random.default_rng([seed, 1])
    seq = np.empty((n, length), dtype=np.int64)
    seq[:, 0] = rng.integers(0, vocab_size, size=n)
    for t in range(1, length):
        prev = seq[:, t - 1]
        u = rng.random(n)
        j = np.minimum((cdf[prev] <= u[:, None]).sum(axis=1), cdf.shape[1] - 1)
        seq[:, t] = succ[prev, j]
    return seq


@register
class SyntheticText(Dataset):
    name = "synthetic_text"
    Options = SyntheticTextOptions
    fields = TEXT_FIELDS
    description = "token sequences from a fixed random Markov chain"

    def load(self, options, data_dir, graph):
        n = options.n_train + options.n_test
        seq = torch.from_numpy(
            markov_sequences(options.vocab_size, options.branching, options.seed, n, options.seq_len + 1)
        )
        fields = {"tokens": seq[:, :-1].contiguous(), "next_tokens": seq[:, 1:].contiguous()}
        return _split(fields, options.n_train)
