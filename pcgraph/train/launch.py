"""``pcgraph train SPEC --nproc N``: start N training processes on this machine
through torchrun's elastic agent (``torch.distributed.run``), as
``torchrun --standalone --nproc-per-node N -m pcgraph train ...`` would."""

from __future__ import annotations

import logging
import os

from ..core.errors import Issue, TrainError

#: exit status of a run stopped by a signal (its state is saved)
EXIT_INTERRUPTED = 130


def prepare(nproc: int, spec, overrides, *, out, device, resume):
    """Check before starting anything: the spec loads, there is a device per process,
    and (new run) the run directory is free. Returns the run directory every process
    writes (decided here, so that they agree)."""
    from pathlib import Path

    import torch

    from ..compile import resolve_device
    from ..spec import load_spec
    from .run import device_override, load_run_spec, new_run_dir

    sets = [*overrides, *device_override(device)]
    loaded = load_run_spec(Path(resume), sets) if resume is not None else load_spec(spec, sets)
    if resolve_device(loaded.train.device).type == "cuda" and torch.cuda.device_count() < nproc:
        msg = f"--nproc {nproc} needs a CUDA device per process, and {torch.cuda.device_count()} are visible"
        raise TrainError(Issue(("nproc",), msg))
    return out if resume is not None else new_run_dir(loaded, out)


def worker_args(spec, overrides, *, out, device, data_dir, resume, quiet, log=None) -> list[str]:
    """The ``pcgraph train`` arguments every process gets (``--out`` already decided,
    so that all processes agree on the run directory)."""
    args = ["train"]
    if spec is not None:
        args.append(str(spec))
    for o in overrides:
        args += ["--set", o]
    for flag, value in (
        ("--out", out), ("--device", device), ("--data-dir", data_dir), ("--resume", resume), ("--log", log)
    ):
        if value is not None:
            args += [flag, str(value)]
    if quiet:
        args.append("--quiet")
    return args


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m pcgraph ARGS`` in ``nproc`` processes; the exit status to return:
    0, or the status the processes stopped with (130 when interrupted)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # as torchrun does: one thread per process unless the user chose otherwise
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the agent's log: failures are reported below
    argv = [
        "--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0", "--monitor-interval", "0.2", "-m",
        "pcgraph", *args
    ]
    try:
        run(parse_args(argv))
    except SignalException:  # Ctrl-C or SIGTERM: the agent passed it on; rank 0 saved and said so
        return EXIT_INTERRUPTED
    except ChildFailedError as e:
        codes = [f.exitcode for f in e.failures.values()]
        if EXIT_INTERRUPTED in codes:
            return EXIT_INTERRUPTED
        if 2 in codes:
            return 2  # a process said why
        rank, first = e.get_first_failure()
        code = first.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        msg = f"training process {rank} {how}; the run directory keeps the last checkpoint"
        raise TrainError(Issue(("nproc",), msg))
    return 0

