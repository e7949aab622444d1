"""The trainer's stream mode (``data.stream``): weight steps counted in iterations,
the test split evaluated every ``eval_every`` of them.

A stream run's metrics rows carry ``iteration`` where an epoch run's carry ``epoch``:
a ``train`` row (``seconds``, and the mean ``energy`` or ``train_loss`` of the
stretch's batches) and a ``test`` row (the test metrics, with ``error`` where the
graph has one classification target and, with tasks, ``error.task<k>`` for every task
begun). The trainer's ``epoch`` counts the evaluations done, its ``step`` the
iterations; both are in the checkpoint, so a stream resumes where it stopped.
"""

from __future__ import annotations

import math

from ..core.errors import DataError, Issue
from ..data.stream import StreamPlan, label_keys
from .metrics import error_of


def plan_for(trainer, spec_data) -> StreamPlan | None:
    """The StreamPlan of the trainer's data (None without ``data.stream``)."""
    if spec_data is None or spec_data.stream is None:
        return None
    from ..data import datasets

    cls = datasets.get(spec_data.dataset) if spec_data.dataset in datasets else None
    keys = label_keys(spec_data, cls) if cls is not None else ()
    label = cls.label_field() if cls is not None else None
    train, test = trainer.data["train"], trainer.data.get("test", {})
    labels_train = train.get(label) if label else None
    labels_test = test.get(label) if label else None
    try:
        return StreamPlan(
            spec_data.stream,
            trainer.n_train,
            labels_train,
            labels_test,
            seed=trainer.train.seed,
            batch_size=trainer.batch_size,
            epochs=trainer.train.epochs,
            label_keys=[k for k in keys if k in train],
        )
    except DataError as e:
        source = trainer.program.graph.spec.source
        where = (lambda path: source.locate(path, True)) if source is not None else (lambda path: None)
        raise DataError([Issue(i.path, i.message, where(i.path)) for i in e.issues]) from None


def stretch(plan: StreamPlan, step: int) -> tuple[int, int]:
    """(first, end) iterations of the stretch between two evaluations holding ``step``."""
    end = plan.next_eval(step)
    return (end - 1) // plan.eval_every * plan.eval_every, end


def train_stretch(t) -> list[dict]:
    """Train up to the next evaluation point, evaluate, return the metrics rows."""
    plan = t.plan
    first, end = stretch(plan, t.step)
    t.batch = t.step - first
    train = t.data["train"]
    t.progress.start_epoch(
        t.epoch + 1,
        math.ceil(plan.iterations / plan.eval_every),
        end - first,
        first=t.batch,
        desc=f"iterations {first + 1}-{end}/{plan.iterations}",
    )

    def take(b):
        i = first + b
        return plan.train_fields(train, i), plan.batch_indices(i)

    t.run_batches(end - first, take, lambda b: f"iteration {first + b + 1}")
    return end_stretch(t)


def end_stretch(t) -> list[dict]:
    """The rows of the evaluation after ``t.step`` iterations; resets the stretch's totals."""
    steps = t.step
    rows = [{"iteration": steps, "split": "train", **t.train_totals()}]
    if "test" in t.data:
        rows.append({"iteration": steps, "split": "test", **evaluate(t, steps)})
    t.end_block(rows)
    test = rows[-1]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in test.items() if k in ("loss", "error") or k.startswith("error."))
    t.progress.message(f"iteration {steps}/{t.plan.iterations}  {test['split']}: {shown}")
    return rows


def evaluate(t, steps: int) -> dict[str, float]:
    """Test metrics after ``steps`` iterations, with the labels of the last step taken:
    over the stream's classes, then (with tasks) the error of every task begun."""
    out: dict[str, float] = {}
    for suffix, fields in t.plan.test_views(t.data["test"], steps):
        metrics = t.evaluate("test", seed=steps, data=fields)
        error = error_of(metrics)
        if not suffix:
            out.update(metrics)
        if error is not None:
            out["error" if not suffix else f"error.{suffix}"] = error
    return out


__all__ = ["plan_for", "train_stretch", "evaluate", "stretch"]
