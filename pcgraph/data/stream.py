"""Streams: training as a sequence of weight steps (iterations) drawn from a dataset,
with a seeded subset of the training split, concept drift and class-split tasks.

Everything here is a function of (the spec's ``data.stream``, the labels, the seed and
the iteration), so every method of a comparison sees the same stream and a resumed
run continues it exactly:

* the training examples: all of the training split, or ``train_examples`` of them
  drawn once from the seed, balanced over the dataset's classes (round robin over
  the classes in a seeded order within each, so 120 of ten classes are 12 of each);
* the tasks: the examples of each task's classes, trained one task after the other,
  the run's ``iterations`` split into equal consecutive parts (task k runs
  iterations [k*I/n, (k+1)*I/n));
* the batches: passes over the current task's examples, each in a seeded order (with
  neither tasks nor a subset, pass p is the order of epoch p of an epoch-trained run);
  the last batch of a pass may be short;
* the drift: iteration i (0-based) is in period q = i // every, where the labels of
  ``classes`` are mapped by a permutation drawn from (seed, q); period 0 keeps the
  dataset's labels. An evaluation after s steps uses the mapping of the last step
  taken (period (s - 1) // every), on the test split as on the training batches.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from typing import Any, Mapping

from ..core.errors import DataError, Issue
from ..core.lazy import torch

STREAM = ("data", "stream")


def generator(*parts: Any) -> "torch.Generator":
    """A torch generator seeded by a hash of ``parts`` (ints and words)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def epoch_generator(seed: int, epoch: int) -> "torch.Generator":
    """The generator of epoch ``epoch``'s data order in an epoch-trained run."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)


def _span(classes) -> str:
    classes = sorted(classes)
    if classes == list(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]}-{classes[-1]}"
    return ", ".join(map(str, classes))


# ------------------------------------------------------------------ validation
def stream_problems(stream, dataset: str, classes, binds_label: str | None) -> list[tuple[tuple, str, bool]]:
    """(path, message, names_a_key) for each problem of a ``data.stream`` on a dataset
    with ``classes`` (None: unlabelled), whose label field a node binds (its name) or not (None)."""
    out: list[tuple[tuple, str, bool]] = []
    if stream.drift is not None and stream.tasks is not None:
        out.append(
            (
                STREAM + ("tasks",),
                "a stream takes drift or tasks, not both: drift relabels classes that a task may not hold, so the "
                "error per task would change meaning mid-run",
                True,
            )
        )
    for key, what in (("drift", "drift its labels"), ("tasks", "be split into tasks by class")):
        if getattr(stream, key) is None:
            continue
        if classes is None:
            msg = f"dataset '{dataset}' has no classes (its examples carry no labels), so its stream cannot {what}"
            out.append((STREAM + (key,), msg, True))
        elif binds_label is None:
            msg = f"no node binds the label field of dataset '{dataset}', so its stream cannot {what}"
            out.append((STREAM + (key,), msg, True))
    if classes is None:
        return out
    if stream.drift is not None:
        _class_problems(STREAM + ("drift", "classes"), stream.drift.classes, dataset, classes, {}, None, out)
    owner: dict = {}
    for k, task in enumerate(stream.tasks or []):
        _class_problems(STREAM + ("tasks", k), task, dataset, classes, owner, k, out)
    return out


def _class_problems(path, values, dataset, classes, owner: dict, task: int | None, out: list) -> None:
    """A class the dataset lacks, or one named twice (``owner``: class -> the task that
    named it first; ``task``: None for drift.classes)."""
    for j, c in enumerate(values):
        if c not in classes:
            out.append((path + (j,), f"dataset '{dataset}' has no class {c} (its classes: {_span(classes)})", False))
        elif c in owner and task is None:
            out.append((path + (j,), f"class {c} is listed twice: a permutation names each class once", False))
        elif c in owner and owner[c] == task:
            out.append((path + (j,), f"class {c} is listed twice in task {task}", False))
        elif c in owner:
            msg = f"class {c} is in task {owner[c]} and task {task}: tasks must not share classes"
            out.append((path + (j,), msg, False))
        else:
            owner[c] = task


# ------------------------------------------------------------------ the stream
def seeded_subset(n_train: int, labels, n: int, seed: int) -> "torch.Tensor":
    """``n`` of the ``n_train`` training examples' indices, sorted, drawn from ``seed``;
    balanced over the classes when ``labels`` are given: each class's examples in a
    seeded order, taken round robin (a class with too few examples leaves its turns
    to the others)."""
    gen = generator("subset", int(seed))
    perm = torch.randperm(n_train, generator=gen)
    if labels is None:
        return perm[:n].sort().values
    _, inverse = torch.unique(labels[perm], return_inverse=True)
    onehot = torch.nn.functional.one_hot(inverse)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # the place of each example within its class
    key = rank * (n_train + 1) + torch.arange(n_train)  # by that place, then in the draw's order
    return perm[key.argsort()[:n]].sort().values


class StreamPlan:
    """Which examples, labels and tasks each iteration of a stream uses (see the module doc)."""

    def __init__(
        self, stream, n_train: int, labels_train, labels_test, *, seed: int, batch_size: int, epochs: int,
        label_keys=()
    ):
        self.spec = stream
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.label_keys = tuple(label_keys)
        if stream.train_examples is not None:
            if stream.train_examples > n_train:
                msg = (
                    f"the training split has {n_train} examples, fewer than train_examples: "
                    f"{stream.train_examples}"
                )
                raise DataError(Issue(STREAM + ("train_examples",), msg))
            self.subset = seeded_subset(n_train, labels_train, stream.train_examples, self.seed)
        else:
            self.subset = torch.arange(n_train)
        self.tasks = [list(t) for t in stream.tasks] if stream.tasks else None
        if self.tasks is None:
            self.pools = [self.subset]
        else:
            held = labels_train[self.subset]
            self.pools = [self.subset[torch.isin(held, torch.tensor(t, dtype=held.dtype))] for t in self.tasks]
            for k, pool in enumerate(self.pools):
                if pool.numel() == 0:
                    msg = f"task {k} (classes {_span(self.tasks[k])}) has no training examples"
                    raise DataError(Issue(STREAM + ("tasks", k), msg))
        per_pass = math.ceil(self.subset.numel() / self.batch_size)
        self.iterations = int(stream.iterations) if stream.iterations is not None else int(epochs) * per_pass
        self.eval_every = int(stream.eval_every) if stream.eval_every is not None else per_pass
        n = len(self.pools)
        if self.iterations < n:
            msg = f"{self.iterations} iterations cannot be shared by {n} tasks: give at least one per task"
            raise DataError(Issue(STREAM + ("iterations",), msg))
        self.bounds = [self.iterations * k // n for k in range(n + 1)]
        self.labels_test = labels_test
        #: the size of a label map: every label of either split, and every drift class
        tops = [int(y.max()) for y in (labels_train, labels_test) if y is not None and y.numel()]
        self.n_labels = 1 + max(tops + list(stream.drift.classes if stream.drift else [0]))
        self._orders: dict = {}
        self._tables: dict = {}
        self._views: dict = {}

    # ---------------------------------------------------------------- schedule
    def task_of(self, i: int) -> int:
        """The task that iteration ``i`` (0-based) trains."""
        return bisect.bisect_right(self.bounds, i) - 1 if self.tasks else 0

    def is_eval_point(self, steps: int) -> bool:
        """Whether the test split is evaluated after ``steps`` weight steps."""
        return steps > 0 and (steps % self.eval_every == 0 or steps == self.iterations)

    def next_eval(self, steps: int) -> int:
        """The first evaluation point after ``steps`` steps."""
        return min((steps // self.eval_every + 1) * self.eval_every, self.iterations)

    def _order(self, k: int, p: int) -> "torch.Tensor":
        key = (k, p)
        if key not in self._orders:
            size = self.pools[k].numel()
            gen = epoch_generator(self.seed, p) if k == 0 else generator("order", self.seed, k, p)
            self._orders = {key: torch.randperm(size, generator=gen)}  # one pass kept at a time
        return self._orders[key]

    def batch_indices(self, i: int) -> "torch.Tensor":
        """Indices into the training split of iteration ``i``'s batch."""
        k = self.task_of(i)
        pool = self.pools[k]
        per_pass = math.ceil(pool.numel() / self.batch_size)
        p, b = divmod(i - self.bounds[k], per_pass)
        return pool[self._order(k, p)[b * self.batch_size : (b + 1) * self.batch_size]]

    # ---------------------------------------------------------------- labels
    def period(self, i: int) -> int:
        return i // self.spec.drift.every if self.spec.drift is not None else 0

    def table(self, i: int):
        """The label map (a tensor: label -> label) iteration ``i`` uses; None without drift."""
        drift = self.spec.drift
        if drift is None:
            return None
        q = self.period(i)
        if q not in self._tables:
            table = torch.arange(self.n_labels)
            if q > 0:
                cls = torch.tensor(drift.classes)
                table[cls] = cls[torch.randperm(len(cls), generator=generator("drift", self.seed, q))]
            self._tables = {q: table}
        return self._tables[q]

    def relabel(self, fields: Mapping[str, "torch.Tensor"], table) -> dict:
        if table is None:
            return dict(fields)
        return {k: table[v] if k in self.label_keys and not v.is_floating_point() else v for k, v in fields.items()}

    def train_fields(self, train: Mapping[str, "torch.Tensor"], i: int) -> Mapping[str, "torch.Tensor"]:
        """The training split with iteration ``i``'s labels (the same object while they hold)."""
        if self.spec.drift is None:
            return train
        q = self.period(i)
        if self._views.get("train-period") != q:
            self._views["train"] = self.relabel(train, self.table(i))
            self._views["train-period"] = q
        return self._views["train"]

    def _rows_of(self, classes) -> "torch.Tensor":
        wanted = torch.tensor(sorted(classes), dtype=self.labels_test.dtype)
        return torch.isin(self.labels_test, wanted).nonzero().flatten()

    def test_views(self, test: Mapping[str, "torch.Tensor"], steps: int) -> list[tuple[str, dict]]:
        """[(suffix, fields)] evaluated after ``steps`` steps: ("", the test examples of
        the stream's classes), then ("task<k>", task k's) for every task begun so far."""
        table = self.table(max(steps - 1, 0))
        if not self.tasks:
            return [("", self.relabel(test, table))]
        if "tasks" not in self._views:
            every = [c for t in self.tasks for c in t]
            groups = [every] + self.tasks
            self._views["tasks"] = [
                {k: v[rows] for k, v in test.items()} for rows in (self._rows_of(g) for g in groups)
            ]
        union, *per_task = self._views["tasks"]
        begun = self.task_of(max(steps - 1, 0)) + 1
        return [("", union)] + [(f"task{k}", per_task[k]) for k in range(begun)]


def label_keys(data_spec, dataset_cls) -> tuple[str, ...]:
    """The loaded fields that hold the dataset's class labels: its label field and
    every spec field renamed to it."""
    label = dataset_cls.label_field()
    if label is None:
        return ()
    return (label,) + tuple(f for f, src in data_spec.fields.items() if src == label and f != label)


__all__ = ["StreamPlan", "stream_problems", "seeded_subset", "label_keys", "generator", "epoch_generator"]
