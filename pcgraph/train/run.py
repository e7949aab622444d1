"""Run directories: what ``pcgraph train`` writes and ``--resume`` / ``eval`` read.

    DIR/spec.resolved.yaml   the spec after --set overrides (the run's definition)
    DIR/run.json             command line, versions, device, data directory (--data-dir)
    DIR/metrics.jsonl        one JSON object per (epoch, split), a stream's per (iteration, split)
    DIR/summary.json         final metrics and totals
    DIR/curves.png           learning curves
    DIR/checkpoint.pt        model, optimiser, position and RNG state (weights_only)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Iterable

import torch
import yaml

from .. import __version__
from ..core.errors import Issue, Location, TrainError
from ..graph import build_graph
from ..spec import load_spec
from . import checkpoint as ckpt
from . import distributed
from .plots import plot_curves
from .trainer import Callback, JsonlLogger, Trainer

SPEC_FILE = "spec.resolved.yaml"


def method_tag(train) -> str:
    """Short name of a train section's method: bp, pc-kl (F_KL) or pc-f (standard PC)."""
    return train.method if train.method == "bp" else f"pc-{'kl' if train.energy == 'kl' else 'f'}"


def default_out(spec) -> Path:
    return Path("runs") / f"{spec.name}-{method_tag(spec.train)}-{time.strftime('%Y%m%d-%H%M%S')}"


def device_override(device) -> list[str]:
    """The ``--set`` line that puts a run on ``device`` (none when not given)."""
    return [] if device is None else [f"train.device={device}"]


def holds_run(path: Path) -> bool:
    return path.exists() and any((path / f).exists() for f in (ckpt.NAME, "metrics.jsonl", SPEC_FILE))


class RunFiles(Callback):
    """Keeps summary.json current after every epoch and curves.png at the end and at
    checkpoint epochs (the first always) -- but never so often that drawing costs more than
    ``PLOT_SHARE`` of the run's time (a plot takes a good fraction of a second)."""

    PLOT_SHARE = 0.05

    def __init__(self, out: Path):
        self.out = out
        self._last_plot = time.perf_counter()
        self._plot_cost = 0.0

    def _plot(self, trainer) -> None:
        t0 = time.perf_counter()
        try:
            plot_curves({trainer.method: trainer.history}, self.out / "curves.png", title=trainer.program.graph.name)
        except Exception as e:  # noqa: BLE001 - a plot never stops a run
            trainer.progress.message(f"warning: could not draw curves.png: {e}")
        self._last_plot = time.perf_counter()
        self._plot_cost = self._last_plot - t0

    def on_epoch_end(self, trainer, epoch, rows):
        ckpt.atomic_write_text(self.out / "summary.json", json.dumps(trainer.summary(), indent=2))
        checkpoint = epoch % trainer.train.checkpoint_every == 0
        affordable = time.perf_counter() - self._last_plot >= self._plot_cost / self.PLOT_SHARE
        first = not (self.out / "curves.png").exists()  # a stopped run has its curves too
        if checkpoint and (affordable or first) and not trainer.finished:
            self._plot(trainer)

    def on_fit_end(self, trainer, summary):
        ckpt.atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2))
        if trainer.history:
            self._plot(trainer)


def write_spec(spec, path: Path) -> None:
    text = yaml.safe_dump(spec.to_data(), sort_keys=False, allow_unicode=True)
    ckpt.atomic_write_text(path, text)


def run_data_dir(out: Path, data_dir=None):
    """The data folder a command on the run ``out`` reads: ``data_dir`` when given, else
    the ``--data-dir`` its training recorded in run.json, else None (the default folder)."""
    if data_dir is not None:
        return data_dir
    try:
        info = json.loads((Path(out) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    recorded = info.get("data_dir") if isinstance(info, dict) else None
    return recorded if isinstance(recorded, str) and recorded else None


def run_info(trainer, data_dir) -> dict:
    """What run.json records of a new run: command, versions, device, data folder."""
    return {
        "command": sys.argv,
        "pcgraph": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(trainer.program.device),
        # absolute, so that commands run from another folder find the data again
        "data_dir": os.path.abspath(Path(data_dir).expanduser()) if data_dir else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "processes": distributed.world_size(),
    }


def load_run_spec(out: Path, overrides: Iterable[str] = ()):
    path = out / SPEC_FILE
    if not path.exists():
        msg = f"not a run directory: it has no {SPEC_FILE} (pcgraph train writes one)"
        raise TrainError(Issue(None, msg, Location(str(out))))
    return load_spec(path, overrides)


def setup(
    spec, *, device=None, data_dir=None, progress=True, out: Path | None = None, resume=False, data=None,
    log: str | None = None
):
    """Compile the spec's graph on ``device`` (a resolved torch.device; default:
    ``spec.train.device``) and build a Trainer for it (loading data unless given).
    ``log="tensorboard"`` mirrors the run's metrics into ``out/tensorboard``."""
    from ..compile import compile_graph, resolve_device

    graph = build_graph(spec)
    if spec.data is None and data is None:
        msg = "the spec has no data section: add data: {dataset: ..., batch_size: ...}"
        raise TrainError(Issue(("data",), msg, spec.source.locate(()) if spec.source else None))
    if spec.train.init_from and not resume:  # before the data are loaded: a missing run is said at once
        ckpt.check_init_from(spec.train.init_from, spec.source.locate(("train", "init_from")) if spec.source else None)
    device = resolve_device(spec.train.device) if device is None else device
    program = compile_graph(graph, energy=spec.train.energy, device=distributed.local_device(device))
    if data is None:
        from .loading import load_data

        data = load_data(spec.data, graph, data_dir)
    for split in data:  # fail early, naming field and node, if data does not fit
        first = {k: v[:2] for k, v in data[split].items()}
        program.init_state(first, init=spec.train.inference.init)
    writer = distributed.is_writer()  # only rank 0 of a data-parallel run writes and reports
    callbacks = []
    if out is not None and writer:
        callbacks = [JsonlLogger(out / "metrics.jsonl"), RunFiles(out)]
        if log == "tensorboard":
            from .tensorboard import TensorBoardLogger

            callbacks.append(TensorBoardLogger(out / "tensorboard"))
    trainer = distributed.trainer_class()(
        program, spec.train, data, out_dir=out, callbacks=callbacks, progress=progress and writer, resume=resume
    )
    return trainer


def open_run(
    spec, out: Path, *, resume: bool, device=None, data_dir=None, progress=True, data=None, log: str | None = None
) -> Trainer:
    """A Trainer writing to the run directory ``out``, which holds the spec as run.
    On resume the checkpoint's history is authoritative: rows logged after it are
    dropped from metrics.jsonl."""
    trainer = setup(
        spec, device=device, data_dir=data_dir, progress=progress, out=out, resume=resume, data=data, log=log
    )
    if distributed.is_writer():
        if resume:
            ckpt.atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in trainer.history))
        write_spec(spec, out / SPEC_FILE)
    return trainer


def train_run(
    spec_path=None,
    overrides=(),
    *,
    out=None,
    device=None,
    data_dir=None,
    resume: str | None = None,
    progress=True,
    log: str | None = None,
) -> tuple[Trainer, dict, Path]:
    """What ``pcgraph train`` does. Returns (trainer, summary, run directory). Under
    torchrun every process calls it; they train data-parallel and rank 0 writes."""
    if log == "tensorboard":
        from .tensorboard import summary_writer

        summary_writer()  # a missing package is said before anything is written
    if resume is not None:
        spec = load_run_spec(Path(resume), [*overrides, *device_override(device)])
        _check_extension(spec, Path(resume))
        data_dir = run_data_dir(Path(resume), data_dir)
    else:
        spec = load_spec(spec_path, [*overrides, *device_override(device)])
    from ..compile import resolve_device

    device = resolve_device(spec.train.device)  # once per run
    with distributed.session(device):
        return _train(spec, out, data_dir, resume, progress, log, device)


def new_run_dir(spec, out=None) -> Path:
    """The directory a new run of ``spec`` writes (``out`` or the default), which
    must not hold a run already."""
    out = Path(out) if out is not None else default_out(spec)
    if holds_run(out):
        msg = (
            f"{out} already holds a run: continue it with --resume {out}, or choose another --out (nothing was "
            f"changed)"
        )
        raise TrainError(Issue(("out",), msg))
    return out


def _train(spec, out, data_dir, resume, progress, log=None, device=None) -> tuple[Trainer, dict, Path]:
    writer = distributed.is_writer()
    if resume is not None:
        out = Path(resume)
        trainer = open_run(spec, out, resume=True, device=device, data_dir=data_dir, progress=progress, log=log)
        if writer:
            print(resume_note(trainer, out), file=sys.stderr, flush=True)
    else:
        out = distributed.on_writer(lambda: _make_run_dir(spec, out))
        try:
            trainer = open_run(spec, out, resume=False, device=device, data_dir=data_dir, progress=progress, log=log)
        except Exception:
            if writer and not any(out.iterdir()):
                out.rmdir()
            raise
        if writer:
            ckpt.atomic_write_text(out / "run.json", json.dumps(run_info(trainer, data_dir), indent=2))
    summary = trainer.fit()
    return trainer, summary, out


def _check_extension(spec, out: Path) -> None:
    """Refuse (before anything is written) to resume with fewer epochs (a stream: fewer
    iterations) than were trained."""
    state = ckpt.load(out / ckpt.NAME)
    stream = spec.data.stream if spec.data is not None else None
    if stream is not None:
        done = int(state["step"])
        if stream.iterations is not None and stream.iterations < done:
            path = ("data", "stream", "iterations")
            where = spec.source.locate(path) if spec.source else None
            msg = (
                f"the run in {out} has already trained {_count(done, 'iteration')}, more than {stream.iterations}; "
                f"to extend it give more, e.g. --set data.stream.iterations={2 * done}"
            )
            raise TrainError(Issue(path, msg, where))
        return
    done = int(state["epoch"])
    if spec.train.epochs < done:
        where = spec.source.locate(("train", "epochs")) if spec.source else None
        msg = (
            f"the run in {out} has already trained {_count(done, 'epoch')}, more than {spec.train.epochs}; to "
            f"extend it give more, e.g. --set train.epochs={done + 1}"
        )
        raise TrainError(Issue(("train", "epochs"), msg, where))


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def summary_line(summary: dict) -> str:
    """One line of a finished run: its method and length, the final metrics of its last
    split (test if it has one), and a stream's mean and final error."""
    final = summary.get("final", {})
    split = "test" if "test" in final else "train"
    shown = ", ".join(
        f"{k} {v:.4g}"
        for k, v in final.get(split, {}).items()
        if k not in ("epoch", "seconds", "warmup_seconds") and isinstance(v, float)
    )
    stream = "iterations" in summary
    length = _count(summary["iterations"], "iteration") if stream else _count(summary["epochs"], "epoch")
    errors = ", ".join(f"{k} {summary[k]:.4g}" for k in ("mean_error", "final_error") if k in summary and stream)
    energy = "" if summary["method"] == "bp" else ", energy " + summary["energy"]
    return (
        f"{summary['name']} ({summary['method']}{energy}): {length}"
        + (f"; {split} {shown}" if shown else "")
        + (f"; {errors}" if errors else "")
    )


def resume_note(trainer: Trainer, out: Path) -> str:
    """One line: where a resumed run continues (or that it has nothing left to do)."""
    if trainer.plan is not None:
        total = trainer.plan.iterations
        if trainer.finished:
            return (
                f"{out} has already trained its {_count(total, 'iteration')}; to train further extend it: pcgraph "
                f"train --resume {out} --set data.stream.iterations={2 * total}"
            )
        return f"resuming {out} at iteration {trainer.step + 1}/{total}"
    epochs = trainer.train.epochs
    if trainer.epoch >= epochs:
        return (
            f"{out} has already trained its {_count(epochs, 'epoch')}; to train further extend it: pcgraph train "
            f"--resume {out} --set train.epochs={2 * epochs}"
        )
    n = trainer.n_batches()
    done = _count(trainer.epoch, "epoch") + (
        f" and {_count(trainer.batch, 'batch', 'batches')}" if trainer.batch else ""
    )
    return f"resuming {out} at epoch {trainer.epoch + 1}/{epochs}, batch {trainer.batch + 1}/{n} ({done} done)"


def _make_run_dir(spec, out) -> Path:
    out = new_run_dir(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_run(run_dir, device=None, overrides: Iterable[str] = (), *, weights: bool = True, spec_device: bool = False):
    """(spec, program) of a run directory: its spec after ``overrides``, compiled on
    ``device`` (default: the CPU, or with ``spec_device`` the spec's train.device), with
    the checkpoint's weights (``weights=False``: the spec's seeded initialisation)."""
    from ..compile import compile_graph

    out = Path(run_dir)
    spec = load_run_spec(out, [*overrides, *device_override(device)])
    on = spec.train.device if device is not None or spec_device else "cpu"
    program = compile_graph(build_graph(spec), energy=spec.train.energy, device=on)
    if weights:
        program.load_state_dict(ckpt.load(out / ckpt.NAME, map_location=program.device)["model"])
    program.eval()
    return spec, program


def eval_run(run_dir, split: str = "test", *, device=None, data_dir=None) -> dict:
    """What ``pcgraph eval`` does: the checkpoint's metrics on a split."""
    out = Path(run_dir)
    spec = load_run_spec(out, device_override(device))
    trainer = setup(spec, data_dir=run_data_dir(out, data_dir), progress=False, out=out, resume=True)
    if split not in trainer.data:
        msg = f"the data has no split '{split}' (it has: {', '.join(trainer.data)})"
        raise TrainError(Issue(None, msg, Location(f"--split {split}")))
    if trainer.plan is not None and split == "test":  # the stream's classes, with its current labels
        from .streaming import evaluate

        result = {"run": str(out), "split": split, "iteration": trainer.step, **evaluate(trainer, trainer.step)}
    else:
        metrics = trainer.evaluate(split, seed=trainer.epoch)
        result = {"run": str(out), "split": split, "epoch": trainer.epoch, **metrics}
    ckpt.atomic_write_text(out / f"eval-{split}.json", json.dumps(result, indent=2))
    return result


__all__ = ["train_run", "eval_run", "load_run", "setup", "open_run", "default_out", "run_data_dir", "SPEC_FILE"]
