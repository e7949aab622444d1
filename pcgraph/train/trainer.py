"""The training loop: BP or PC (EM: T inference steps, then weight steps) on one
compiled program, with evaluation every epoch, checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Iterable, Mapping

import torch

from ..core.errors import Issue, Location, TrainError
from ..compile.energy import mean_energy
from . import checkpoint as ckpt
from ..data.stream import epoch_generator
from . import streaming
from .metrics import Metrics, run_summary
from .progress import Progress
from .signals import stop_on_signals


class Callback:
    """Hooks for logging; every method is optional."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...

    def on_batch_end(self, trainer: "Trainer", epoch: int, batch: int, n_batches: int, value: float | None) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", epoch: int, rows: list[dict]) -> None: ...

    def on_fit_end(self, trainer: "Trainer", summary: dict) -> None: ...


class JsonlLogger(Callback):
    """Appends one JSON object per (epoch, split) to a file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer, epoch, rows):
        with open(self.path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.flush()


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal; the state at the last finished batch is saved."""

    def __init__(self, message: str, out_dir=None):
        super().__init__(message)
        self.message = message
        self.out_dir = out_dir  # the run directory holding the saved state, if any


class Trainer:
    """Train ``program`` on ``data`` ({"train": {field: tensor}, "test": {...}}).

    ``train`` is the spec's train section (``method``, ``epochs``, ``seed``, ...); the
    program fixes the energy (F_KL or F). With ``out_dir`` the trainer keeps a
    checkpoint there after every ``train.checkpoint_every`` epochs and when stopped
    by Ctrl-C or SIGTERM; ``resume=True`` continues from it to the same result as an
    uninterrupted run.
    """

    def __init__(
        self,
        program,
        train=None,
        data: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
        *,
        batch_size: int | None = None,
        eval_batch_size: int | None = None,
        out_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
        progress: bool = True,
        resume: bool = False,
        eval_train_max: int | None = 10000,
    ):
        self.program = program
        self.train = train if train is not None else program.train_cfg
        if data is None or "train" not in data:
            raise TrainError(Issue(("data",), "Trainer needs data as {'train': {field: tensor}, 'test': {...}}"))
        self.data = data
        spec_data = program.graph.spec.data
        self.batch_size = batch_size or (spec_data.batch_size if spec_data else 64)
        self.eval_batch_size = eval_batch_size or (
            spec_data.eval_batch_size if spec_data and spec_data.eval_batch_size else max(256, self.batch_size)
        )
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.progress = Progress(enabled=progress)
        self.eval_train_max = eval_train_max
        self.method = self.train.method
        if self.method == "pc" and self.train.energy != program.energy_kind:
            msg = (
                f"the program was compiled with energy {program.energy_kind} but train.energy is "
                f"{self.train.energy}: compile it with the train section's energy (pcgraph.compile_graph(graph) "
                f"takes it from the spec)"
            )
            raise TrainError(Issue(("train", "energy"), msg))
        self.epoch = 0  # completed epochs
        self.batch = 0  # completed batches in the current epoch
        self.step = 0  # completed training steps overall
        self.acc = {"value": 0.0, "count": 0, "seconds": 0.0}
        self.history: list[dict] = []
        #: seconds of the first training step in this process (allocation, kernel
        #: selection, lazy initialisation), kept out of the epochs' ``seconds``
        self.warmup_seconds: float | None = None
        self.last_terms: dict = {}
        self._stop = None
        self.step_fn = program.step_fn(self.method)
        self.optimizer = program.weight_optimizer
        #: the stream's schedule (``data.stream``), or None for epochs
        self.plan = streaming.plan_for(self, spec_data)
        if resume:
            self._load()
        elif self.train.init_from:  # the weights of another run; states and optimiser stay fresh
            source = program.graph.spec.source
            where = source.locate(("train", "init_from")) if source is not None else None
            ckpt.init_weights(program, self.train.init_from, where)

    # ------------------------------------------------------------ data
    @property
    def n_train(self) -> int:
        return next(iter(self.data["train"].values())).shape[0]

    def n_batches(self) -> int:
        n = math.ceil(self.n_train / self.batch_size)
        if self.train.max_batches:
            n = min(n, self.train.max_batches)
        return n

    def _order(self, epoch: int) -> torch.Tensor:
        """The data order of an epoch: a function of (seed, epoch) only, so every method
        and every resumed run sees the same batches."""
        return torch.randperm(self.n_train, generator=epoch_generator(self.train.seed, epoch))

    def _part(self, n: int) -> slice:
        """The rows of a batch of ``n`` examples that this process works on: all of
        them (data-parallel training gives each process its share)."""
        return slice(0, n)

    def _batch(self, split: Mapping[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        dev = self.program.device
        return {k: v[idx].to(dev, non_blocking=True) for k, v in split.items()}

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / ckpt.NAME if self.out_dir is not None else None

    def state_dict(self) -> dict:
        return {
            "model": self.program.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "acc": dict(self.acc),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "method": self.method,
            "energy": self.program.energy_kind,
            "history": json.dumps(self.history),
        }

    def save(self) -> None:
        if self.checkpoint_path is not None:
            ckpt.save(self.checkpoint_path, self.state_dict())

    def _read_checkpoint(self) -> dict:
        if self.checkpoint_path is None:
            msg = "resuming needs the run directory (out_dir) that holds the checkpoint"
            raise TrainError(Issue(("out_dir",), msg))
        return ckpt.load(self.checkpoint_path, map_location=self.program.device)

    def _load(self) -> None:
        state = self._read_checkpoint()
        if state.get("method") != self.method or state.get("energy") != self.program.energy_kind:
            self._mismatch(state)
        self.program.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.acc = {k: float(v) if k != "count" else int(v) for k, v in state["acc"].items()}
        torch.set_rng_state(state["rng"].cpu())
        if torch.cuda.is_available() and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.history = json.loads(state.get("history", "[]"))

    def _mismatch(self, state: dict) -> None:
        """A run keeps its method and energy: say which ``--set`` changed them."""
        was = f"method {state.get('method')}, energy {state.get('energy')}"
        source = self.program.graph.spec.source
        sets = [source.overrides.get(("train", k)) for k in ("method", "energy")] if source is not None else []
        sets = [s for s in sets if s]
        if sets:
            where = f"--set {sets[0]}"
            fix = "leave out this --set, or train the new method in a new run (--out)"
        else:
            where = str(self.checkpoint_path)
            fix = (
                f"set train.method={state.get('method')} and train.energy={state.get('energy')} back, or train the "
                f"new method in a new run (--out)"
            )
        msg = f"the run in {self.out_dir} was trained with {was}, which a resumed run keeps; {fix}"
        raise TrainError(Issue(None, msg, Location(where)))

    # ------------------------------------------------------------ loop
    @property
    def finished(self) -> bool:
        """Whether the run has trained all it is to train (its epochs or its stream's iterations)."""
        return self.step >= self.plan.iterations if self.plan is not None else self.epoch >= self.train.epochs

    def fit(self) -> dict:
        """Train for ``train.epochs`` epochs, evaluating the train and test splits after
        each, or (with ``data.stream``) for the stream's iterations, evaluating the test
        split every ``eval_every`` of them; a resumed run continues. Returns the summary."""
        for cb in self.callbacks:
            cb.on_fit_start(self)
        if self.step == 0 and self.batch == 0:
            # a fresh run draws its random numbers (sampling nodes, random state
            # initialisation) from train.seed, as the CLI and the Python API alike
            torch.manual_seed(int(self.train.seed))
        t_fit = time.perf_counter()
        try:
            with stop_on_signals(lambda name: setattr(self, "_stop", name)):
                while not self.finished:
                    rows = streaming.train_stretch(self) if self.plan is not None else self._train_epoch()
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, self.epoch, rows)
                    if self.out_dir is not None and (self.epoch % self.train.checkpoint_every == 0 or self.finished):
                        self.save()
        finally:
            self.progress.end_epoch()
        summary = self.summary(time.perf_counter() - t_fit)
        for cb in self.callbacks:
            cb.on_fit_end(self, summary)
        return summary

    def _train_epoch(self) -> list[dict]:
        train = self.data["train"]
        epoch = self.epoch + 1
        n = self.n_batches()
        order = self._order(self.epoch)
        self.progress.start_epoch(epoch, self.train.epochs, n, first=self.batch)
        self.run_batches(
            n,
            lambda b: (train, order[b * self.batch_size : (b + 1) * self.batch_size]),
            lambda b: f"epoch {epoch}, batch {b + 1}",
        )
        return self._end_epoch()

    def run_batches(self, n: int, take, where) -> None:
        """Train batches ``self.batch`` .. n-1 of a block (an epoch, or a stream's
        stretch between two evaluations): ``take(b)`` gives batch b's (split, indices),
        ``where(b)`` names it for messages."""
        label = "energy" if self.method == "pc" else "loss"
        epoch = self.epoch + 1
        t0 = time.perf_counter()
        while self.batch < n:
            b = self.batch
            t_step = time.perf_counter()
            terms, value = self._train_step(*take(b))
            self.last_terms = terms  # per-node energies (BP: loss terms) of the last batch, for callbacks
            if self.warmup_seconds is None:  # the one-time warm-up is reported apart
                self.warmup_seconds = time.perf_counter() - t_step
                t0 += self.warmup_seconds
            if not math.isfinite(value):
                self._diverged(terms, where(b))
            self.acc["value"] += value
            self.acc["count"] += 1
            self.batch += 1
            self.step += 1
            if self.batch % self.train.log_every == 0 or self.batch == n:
                self.progress.update(b, label, value)
            for cb in self.callbacks:
                cb.on_batch_end(self, epoch, b, n, value)
            if self._stop is not None:
                self.acc["seconds"] += time.perf_counter() - t0
                self.progress.end_epoch()
                self.save()
                if self.plan is not None:
                    at = f"iteration {self.step}/{self.plan.iterations}"
                else:
                    at = f"epoch {epoch}, batch {self.batch}/{n}"
                saved = f" in {self.out_dir}" if self.out_dir is not None else ""
                raise Interrupted(f"stopped by {self._stop} at {at}; state saved{saved}", self.out_dir)
        self.acc["seconds"] += time.perf_counter() - t0
        self.progress.end_epoch()

    def _train_step(self, train, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], float]:
        """One training step on the examples ``idx``: (per-node terms [B], their batch
        mean summed over nodes)."""
        terms = self.step_fn(self._batch(train, idx))
        return terms, mean_energy(terms).item()  # one host sync per batch: progress and divergence check

    def _diverged(self, terms, where: str) -> None:
        bad = [n for n in self.program.order if n in terms and not torch.isfinite(terms[n]).all().item()]
        first = bad[0] if bad else "?"
        info = self.program.nodes.get(first)
        kept = ""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            kept = f"; the last good checkpoint ({self.checkpoint_path}) is kept"
        what = "energy" if self.method == "pc" else "loss term"
        others = f" (also: {', '.join(bad[1:])})" if len(bad) > 1 else ""
        msg = (
            f"the {what} of node '{first}' diverged (non-finite) at {where}{others}: lower the learning rates{kept}"
        )
        raise TrainError(Issue(("nodes", first), msg, info.location if info is not None else None))

    def train_totals(self) -> dict:
        """What a train row says of the batches since the last evaluation: their seconds
        and their mean energy (BP: loss)."""
        value = self.acc["value"] / max(1, self.acc["count"])
        return {"seconds": round(self.acc["seconds"], 3), "energy" if self.method == "pc" else "train_loss": value}

    def end_block(self, rows: list[dict]) -> None:
        """Log an evaluation's ``rows`` and start the next block (epoch or stretch)."""
        self.history.extend(rows)
        self.epoch += 1
        self.batch = 0
        self.acc = {"value": 0.0, "count": 0, "seconds": 0.0}

    def _end_epoch(self) -> list[dict]:
        epoch = self.epoch + 1
        rows = []
        for split in ("train", "test"):
            if split not in self.data:
                continue
            metrics = self.evaluate(split, max_examples=self.eval_train_max if split == "train" else None, seed=epoch)
            totals = self.train_totals() if split == "train" else {}
            rows.append({"epoch": epoch, "split": split, **metrics, **totals})
        self.end_block(rows)
        msg = "  ".join(
            f"{r['split']}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in r.items() if k not in ("epoch", "split") and isinstance(v, float))
            for r in rows
        )
        self.progress.message(f"epoch {epoch}/{self.train.epochs}  {msg}")
        return rows

    # ------------------------------------------------------------ evaluation
    def evaluate(
        self, split: str = "test", max_examples: int | None = None, seed: int | None = None, data=None
    ) -> dict[str, float]:
        """Metrics of the current weights on a split (forward pass; BP loss terms), or on
        ``data`` (fields of its examples) when given. Sampling nodes use noise from a
        generator seeded by ``seed`` (default: the completed epochs, as the epoch's own
        evaluation and ``pcgraph eval`` use), so evaluation is repeatable and leaves the
        training random stream untouched."""
        if seed is None:
            seed = self.epoch
        data = self.data[split] if data is None else data
        n = next(iter(data.values())).shape[0]
        if max_examples is not None:
            n = min(n, max_examples)
        metrics = Metrics(self.program)
        gen = torch.Generator().manual_seed(int(self.train.seed) * 7919 + seed)
        p = self.program
        was_training = p.training
        p.eval()
        try:
            for start in range(0, n, self.eval_batch_size):
                size = min(n, start + self.eval_batch_size) - start
                noise = {s: torch.randn((size,) + p.nodes[s].shape, generator=gen, dtype=p.dtype) for s in p.sampling}
                part = self._part(size)
                if part.stop <= part.start:
                    continue
                batch = self._batch(data, torch.arange(start + part.start, start + part.stop))
                p.rows = (part.start, part.stop, size)
                try:
                    terms, mus = p.evaluate_batch(batch, noise={s: v[part].to(p.device) for s, v in noise.items()})
                finally:
                    p.rows = None
                metrics.add(terms, mus, batch)
        finally:
            p.train(was_training)
        return self._combine(metrics).result()

    def _combine(self, metrics: Metrics) -> Metrics:
        """The metrics of the whole split from this process's (here: all of it)."""
        return metrics

    def summary(self, seconds: float | None = None) -> dict:
        """The run's summary: its final metrics and totals (``seconds``: those of fit)."""
        return run_summary(self, seconds)
