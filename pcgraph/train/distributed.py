"""Data-parallel training on torch.distributed: every process holds the whole program,
works on its share of each batch and takes the same weight steps.

* Launch: ``torchrun --nproc_per_node=N -m pcgraph train SPEC`` (or ``pcgraph train
  SPEC --nproc N``, which starts torchrun's agent itself). The process group comes from
  torchrun's environment: gloo on the CPU, NCCL on CUDA (one device per local rank).
* Batches: ``train.batch_size`` is the global batch. Every process computes the same
  data order and takes a contiguous slice of each batch, as even as the batch allows.
  Per-example random draws (noise of sampled nodes, random state initialisation) are
  made for the whole batch on every process and sliced (``Program.rows``), so they do
  not depend on the split.
* Weights: before every weight step each process scales its batch-mean gradients by
  its share of the batch and one all-reduce of a flat buffer sums them: every process
  then holds the gradient of the whole batch and takes the one-process step. PC never
  exchanges states: inference runs on each process's own slice.
* A process whose slice is empty (a batch smaller than the number of processes) steps
  on a borrowed example with weight zero, so that its random draws and collectives
  stay in step with the others.
* Only rank 0 writes to the run directory; a checkpoint is read by rank 0 and
  broadcast, so a run resumes under any number of processes.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re

import torch
import torch.distributed as dist

from ..compile.energy import total_energy
from ..core.errors import Issue, TrainError
from .metrics import Metrics
from .trainer import Trainer

#: seconds a process waits for the others in a collective before it gives up
TIMEOUT_ENV = "PCGRAPH_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300


def world_size() -> int:
    """The number of processes torchrun started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_writer() -> bool:
    """Whether this process writes the run directory and talks to the user (rank 0)."""
    return rank() == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def timeout_s() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        msg = f"${TIMEOUT_ENV} must be a number of seconds, got {os.environ[TIMEOUT_ENV]!r}"
        raise TrainError(Issue((TIMEOUT_ENV,), msg))


def local_device(device: torch.device) -> torch.device:
    """The device of this process for the run's (resolved) ``device``: ``cuda:LOCAL_RANK``
    for a CUDA run under torchrun."""
    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextlib.contextmanager
def session(device: torch.device):
    """Join the process group torchrun describes for the duration (nothing outside
    torchrun, or when a group is already up); ``device``: the run's, resolved."""
    if world_size() <= 1 or active():
        yield
        return
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s()))
    try:
        yield
        _collective(dist.barrier)  # rank 0 may still be writing: nobody tears down before all are done
    finally:
        dist.destroy_process_group()


class PeerLost(TrainError):
    """A collective failed: another process died or stopped answering."""


def _collective(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, dist.DistError) as e:
        first = re.sub(r"^\[[^\]]*\]\s*", "", (str(e).strip().splitlines() or [type(e).__name__])[0]).split(". ")[0]
        msg = (
            f"process {rank()} of {world_size()} stopped: another process died or did not answer within "
            f"{timeout_s():g} s "
            f"(${TIMEOUT_ENV}) ({first}); the run directory keeps the last checkpoint"
        )
        raise PeerLost(Issue(("train",), msg))


def _broadcast(obj):
    """Rank 0's ``obj`` on every process."""
    box = [obj]
    _collective(dist.broadcast_object_list, box, src=0)
    return box[0]


def on_writer(fn):
    """``fn()`` run by rank 0 only; its result (or its error) on every process."""
    if not active():
        return fn()
    result, error = None, None
    if dist.get_rank() == 0:
        try:
            result = fn()
        except TrainError as e:
            error = e
    result, message = _broadcast((result, None if error is None else str(error.issues[0].message)))
    if error is not None:
        raise error
    if message is not None:
        raise TrainError(Issue(("train",), message))
    return result


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class GradSync:
    """Called before each weight step: ``.grad`` <- the whole batch's gradient, from each
    process's batch-mean gradient weighted by ``share`` (its fraction of the batch). One
    all-reduce of one flat buffer (gradients, then a has-gradient flag per parameter,
    so that a parameter without a gradient everywhere keeps ``.grad = None``)."""

    def __init__(self, program):
        self.params = list(program.parameters())
        self.share = 1.0

    def __call__(self) -> None:
        ps = self.params
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
        flat = torch.cat(
            [g.reshape(-1) for g in grads]
            + [torch.tensor([float(p.grad is not None) for p in ps], dtype=grads[0].dtype, device=grads[0].device)]
        )
        n = flat.numel() - len(ps)
        if self.share == 0.0:  # a borrowed example: contributes nothing, not even a NaN
            flat[:n].zero_()
        elif self.share != 1.0:
            flat[:n].mul_(self.share)
        _collective(dist.all_reduce, flat)
        offset = 0
        for p, has in zip(ps, flat[n:].tolist()):
            k = p.numel()
            p.grad = flat[offset : offset + k].view_as(p) if has > 0 else None
            offset += k


class DataParallelTrainer(Trainer):
    """A Trainer that is one of ``world_size`` processes: same loop, same checkpoints,
    same numbers as one process with the same seed and global batch."""

    # The loop stops when ``_stop`` is set. Here it reads the stop the processes agreed
    # on in the last batch's all-reduce; a signal handler's write lands in ``_signal``
    # and is announced to the others in the next one.
    _agreed = None
    _stop = property(lambda self: self._agreed, lambda self, value: setattr(self, "_signal", value))

    def __init__(self, program, *args, **kwargs):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        for t in program.state_dict().values():  # one set of initial weights
            _collective(dist.broadcast, t, src=0)
        self.sync = GradSync(program)
        program.grad_sync = self.sync
        super().__init__(program, *args, **kwargs)

    def _part(self, n: int) -> slice:
        q, r = divmod(n, self.world)
        start = self.rank * q + min(self.rank, r)
        return slice(start, start + q + (self.rank < r))

    def _train_step(self, train, idx):
        p = self.program
        n = len(idx)
        part = self._part(n)
        mine = part.stop - part.start
        rows = part if mine else slice(0, 1)
        self.sync.share = mine / n
        p.rows = (rows.start, rows.stop, n)
        try:
            terms = self.step_fn(self._batch(train, idx[rows]))
        finally:
            p.rows = None
        total = total_energy(terms).sum().to(torch.float64)
        if not mine:  # the borrowed example counts for nothing
            total = torch.zeros_like(total)
        buf = torch.stack(
            [total, torch.tensor(float(self._signal is not None), dtype=torch.float64, device=total.device)]
        )
        _collective(dist.all_reduce, buf)
        value, stops = buf.tolist()
        if stops > 0:
            self._agreed = self._signal or "a signal to another process"
        return terms, value / n

    def _combine(self, metrics: Metrics) -> Metrics:
        mine = (metrics.count, {k: v.item() if torch.is_tensor(v) else v for k, v in metrics.sums.items()})
        parts = [None] * self.world
        _collective(dist.all_gather_object, parts, mine)
        out = Metrics(self.program)
        sums: dict = {}
        for count, s in parts:
            out.count += count
            for k, v in s.items():
                sums[k] = sums.get(k, 0) + v
        out.sums = {k: v if k.endswith("#n") else torch.tensor(v, dtype=torch.float64) for k, v in sums.items()}
        return out

    def _read_checkpoint(self) -> dict:
        if self.rank == 0:
            try:
                state = super()._read_checkpoint()
            except TrainError as e:
                _broadcast((None, str(e.issues[0].message)))
                raise
            _broadcast((_to_cpu(state), None))
            return state
        state, message = _broadcast(None)
        if message is not None:
            raise TrainError(Issue(("resume",), message))
        return state

    def save(self) -> None:
        if self.rank == 0:
            super().save()


def trainer_class() -> type[Trainer]:
    """DataParallelTrainer inside a process group, else Trainer."""
    return DataParallelTrainer if active() else Trainer
