"""The stream schedule on its own: the seeded subset, the drift's permutations, the
order of tasks and the batches, checked against what each must be by definition."""

import math

import pytest
import torch

from pcgraph.data.stream import StreamPlan, epoch_generator, seeded_subset
from pcgraph.spec.models import StreamSpec


def labels_of(counts):
    """Class c repeated counts[c] times, shuffled the same way every time."""
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


def plan(stream: dict, labels, *, seed=0, batch=8, epochs=1, test=None):
    test = labels if test is None else test
    return StreamPlan(
        StreamSpec.model_validate(stream), len(labels), labels, test, seed=seed, batch_size=batch, epochs=epochs,
        label_keys=["label"]
    )


# ------------------------------------------------------------------ the subset
def test_subset_is_balanced_sorted_and_seeded():
    y = labels_of([50, 40, 60, 45, 55])
    idx = seeded_subset(len(y), y, 23, seed=1)
    assert len(idx) == 23 and len(set(idx.tolist())) == 23
    assert torch.equal(idx, idx.sort().values)
    counts = torch.bincount(y[idx], minlength=5)
    assert counts.max() - counts.min() <= 1  # as even as 23 of 5 classes allows
    assert torch.equal(idx, seeded_subset(len(y), y, 23, seed=1))
    assert not torch.equal(idx, seeded_subset(len(y), y, 23, seed=2))


def test_a_small_class_gives_all_it_has_and_the_others_fill_its_turns():
    y = labels_of([3, 30, 30])
    idx = seeded_subset(len(y), y, 21, seed=0)
    counts = torch.bincount(y[idx], minlength=3).tolist()
    assert counts == [3, 9, 9]


def test_subset_without_labels_is_a_plain_seeded_draw():
    idx = seeded_subset(100, None, 10, seed=0)
    assert len(set(idx.tolist())) == 10 and int(idx.max()) < 100
    assert torch.equal(idx, seeded_subset(100, None, 10, seed=0))


# ------------------------------------------------------------------ drift
def test_drift_permutes_only_its_classes_and_only_at_period_starts():
    y = labels_of([20] * 10)
    p = plan({"iterations": 100, "drift": {"every": 7, "classes": [5, 6, 7, 8, 9]}}, y, seed=3)
    tables = [p.table(i) for i in range(100)]
    assert torch.equal(tables[0], torch.arange(10))  # period 0 keeps the dataset's labels
    for i, t in enumerate(tables):
        assert torch.equal(t[:5], torch.arange(5))  # classes outside the drift never move
        assert sorted(t[5:].tolist()) == [5, 6, 7, 8, 9]  # a permutation of the drift classes
        if i % 7:
            assert torch.equal(t, tables[i - 1])  # changes only where a period starts
    distinct = {tuple(t.tolist()) for t in tables}
    assert len(distinct) > 5  # 15 periods of 120 permutations: new ones keep coming
    again = plan({"iterations": 100, "drift": {"every": 7, "classes": [5, 6, 7, 8, 9]}}, y, seed=3)
    assert all(torch.equal(again.table(i), tables[i]) for i in range(0, 100, 7))
    other = plan({"iterations": 100, "drift": {"every": 7, "classes": [5, 6, 7, 8, 9]}}, y, seed=4)
    assert any(not torch.equal(other.table(i), tables[i]) for i in range(7, 100, 7))


def test_training_labels_follow_the_table_and_test_uses_the_last_steps():
    y = labels_of([12] * 10)
    p = plan({"iterations": 30, "drift": {"every": 10, "classes": [0, 1, 2]}}, y, seed=0)
    train = {"image": torch.arange(len(y)).float(), "label": y}
    for i in (0, 9, 10, 25):
        got = p.train_fields(train, i)
        assert torch.equal(got["label"], p.table(i)[y])
        assert torch.equal(got["image"], train["image"])  # only labels change
    (suffix, view), = p.test_views(train, 20)  # after 20 steps: the mapping of step 20 (index 19)
    assert suffix == "" and torch.equal(view["label"], p.table(19)[y])


# ------------------------------------------------------------------ tasks and batches
def test_tasks_share_the_iterations_and_train_only_their_classes():
    y = labels_of([30] * 6)
    p = plan({"iterations": 25, "tasks": [[0, 1, 2], [3, 4], [5]]}, y, batch=8)
    assert p.bounds == [0, 8, 16, 25]
    for i in range(25):
        k = p.task_of(i)
        assert k == (0 if i < 8 else 1 if i < 16 else 2)
        assert set(y[p.batch_indices(i)].tolist()) <= set(p.tasks[k])
    views = dict(p.test_views({"label": y}, 9))  # after 9 steps task 1 has begun
    assert set(views) == {"", "task0", "task1"}
    assert set(views["task1"]["label"].tolist()) == {3, 4} and len(views["task1"]["label"]) == 60
    assert len(views[""]["label"]) == len(y)


def test_each_pass_covers_the_pool_once_in_a_seeded_order():
    y = labels_of([10] * 5)
    p = plan({"iterations": 40, "train_examples": 26}, y, batch=8, seed=2)
    per_pass = math.ceil(26 / 8)  # the last batch of a pass is short (2 examples)
    for start in range(0, 40 - per_pass, per_pass):
        seen = torch.cat([p.batch_indices(i) for i in range(start, start + per_pass)])
        assert sorted(seen.tolist()) == p.subset.tolist()
    first = [p.batch_indices(i).tolist() for i in range(per_pass)]
    second = [p.batch_indices(i).tolist() for i in range(per_pass, 2 * per_pass)]
    assert first != second  # a new order every pass


def test_without_subset_or_tasks_the_passes_are_the_epochs_of_an_epoch_run():
    y = labels_of([9] * 4)
    p = plan({"iterations": 20}, y, batch=5, seed=7)
    per_pass = math.ceil(36 / 5)
    for i in range(20):
        epoch, b = divmod(i, per_pass)
        order = torch.randperm(36, generator=epoch_generator(7, epoch))
        assert torch.equal(p.batch_indices(i), order[b * 5 : (b + 1) * 5])


def test_defaults_are_epochs_of_passes_and_an_evaluation_per_pass():
    y = labels_of([10] * 4)
    p = plan({"train_examples": 20}, y, batch=6, epochs=3)
    assert p.iterations == 3 * 4 and p.eval_every == 4
    assert [s for s in range(1, 13) if p.is_eval_point(s)] == [4, 8, 12]
    q = plan({"iterations": 10, "eval_every": 4}, y, batch=6)
    assert [s for s in range(1, 11) if q.is_eval_point(s)] == [4, 8, 10]  # and at the end


@pytest.mark.parametrize(
    "stream, problem",
    [
        ({"train_examples": 1000}, "fewer than train_examples"),
        ({"iterations": 1, "tasks": [[0], [1]]}, "cannot be shared"),
    ],
)
def test_impossible_streams_are_data_errors(stream, problem):
    from pcgraph.core.errors import DataError

    with pytest.raises(DataError, match=problem):
        plan(stream, labels_of([10] * 4))
