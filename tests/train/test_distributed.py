"""Data-parallel training: N gloo processes on the CPU give the one-process weights and
numbers (float64, up to reduction order), write exactly one run directory, resume
under another number of processes, and stop with a clear message when a peer dies."""

import json
import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from click.testing import CliRunner

from pcgraph.cli import main
from pcgraph.spec import load_spec
from pcgraph.train.distributed import DataParallelTrainer
from pcgraph.train.run import setup, train_run

# 201 training examples in batches of 50: the last batch holds one example, so with two
# processes one of them has nothing of its own in it.
SPEC = """\
name: tiny-digits
data: {dataset: digits, batch_size: 50, eval_batch_size: 64, options: {subset: 201, test_subset: 99}}
nodes:
  image: {shape: [64], role: input, bind: image}
  h: {shape: [16], family: gaussian}
  label: {shape: [10], family: categorical, role: target, bind: label}
edges:
  - {from: image, to: h, activation: tanh}
  - {from: h, to: label}
train:
  epochs: 2
  dtype: float64
  energy: kl
  inference: {steps: 4, optimizer: {type: sgd, lr: 0.1}}
  weights: {optimizer: {type: adam, lr: 0.01}}
"""

# a sampled node (reparameterised noise per example) with a prior, and random initial
# states: the draws must not depend on how the batch is split
VAE = """\
name: tiny-vae
data: {dataset: digits, batch_size: 40, options: {subset: 121, test_subset: 50}}
nodes:
  image: {shape: [64], role: input, bind: image}
  z: {shape: [4], family: gaussian_meanvar, prior: standard_normal}
  recon: {shape: [64], family: gaussian, role: target, bind: image}
edges:
  - {from: image, to: z}
  - {from: z, to: recon, activation: sigmoid}
train:
  epochs: 2
  dtype: float64
  energy: kl
  inference: {steps: 3, init: normal, optimizer: {type: sgd, lr: 0.05}}
  weights: {optimizer: {type: sgd, lr: 0.05, momentum: 0.9}, grad_clip: 1.0, updates: 2}
"""

JOBS = {
    "pc-kl": (SPEC, []),
    "bp": (SPEC, ["train.method=bp"]),
    "vae": (VAE, []),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_group(rank, world, port):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def train_jobs(rank, world, port, jobs):
    """Spawned: every job trained data-parallel in one process group; a job with a run
    directory through ``train_run``, the others by a Trainer whose final weights and
    history rank 0 saves to ``result``."""
    join_group(rank, world, port)
    try:
        for spec, overrides, out, result in jobs:
            if spec is None:  # continue a run begun by one process
                train_run(None, overrides, resume=out, progress=False)
            elif out is not None:
                train_run(spec, overrides, out=out, progress=False)
            else:
                trainer = setup(load_spec(spec, overrides), progress=False)
                trainer.fit()
                if rank == 0:
                    torch.save({"model": trainer.program.state_dict(), "history": trainer.history}, result)
        # as pcgraph's own group does: nobody tears the group down while a peer may still
        # use it (gloo aborts a process whose peer closes the connection under it)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def weights(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same(w1, w2, r1, r2, tol=1e-10):
    assert w1.keys() == w2.keys()
    for k in w1:
        assert w1[k].dtype == torch.float64
        torch.testing.assert_close(w2[k], w1[k], rtol=0, atol=tol, msg=k)
    assert len(r1) == len(r2) == 4
    for a, b in zip(r1, r2):
        for k, v in a.items():
            if k in ("seconds", "warmup_seconds"):
                continue
            if isinstance(v, (int, float)):
                assert b[k] == pytest.approx(v, rel=tol), k
            else:
                assert b[k] == v, k


def assert_same_run(one, two):
    assert_same(weights(one), weights(two), rows(one), rows(two))
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())


def test_two_processes_equal_one(write, tmp_path):
    jobs = {name: (write(text, f"{name}.yaml"), overrides) for name, (text, overrides) in JOBS.items()}
    spawned = [
        (spec, o, tmp_path / "run-2" if name == "pc-kl" else None, tmp_path / f"{name}.pt")
        for name, (spec, o) in jobs.items()
    ]
    # and a run of one epoch by one process, continued for a second by two
    train_run(jobs["pc-kl"][0], ["train.epochs=1"], out=tmp_path / "resumed", progress=False)
    spawned.append((None, ["train.epochs=2"], str(tmp_path / "resumed"), None))
    mp.spawn(train_jobs, args=(2, free_port(), spawned), nprocs=2)
    for name, (spec, overrides) in jobs.items():
        if name == "pc-kl":  # the whole run directory: the same files, weights and rows
            train_run(spec, overrides, out=tmp_path / "run-1", progress=False)
            assert_same_run(tmp_path / "run-1", tmp_path / "run-2")
            assert_same_run(tmp_path / "run-1", tmp_path / "resumed")
            continue
        trainer = setup(load_spec(spec, overrides), progress=False)
        trainer.fit()
        two = torch.load(tmp_path / f"{name}.pt", weights_only=True)
        assert_same(trainer.program.state_dict(), two["model"], trainer.history, two["history"])


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_batch_split_is_a_partition_as_even_as_it_goes(world, n):
    parts = [DataParallelTrainer._part(SimpleNamespace(rank=r, world=world), n) for r in range(world)]
    assert [i for p in parts for i in range(n)[p]] == list(range(n))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1


class DieAt:
    """Callback: this process exits abruptly at (epoch, batch)."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_fit_start(self, trainer): ...

    def on_epoch_end(self, trainer, epoch, rows): ...

    def on_fit_end(self, trainer, summary): ...

    def on_batch_end(self, trainer, epoch, batch, n_batches, value):
        if (epoch, batch) == self.at:
            os._exit(3)


def train_until_a_peer_dies(rank, world, port, spec_path, out, errors):
    from pcgraph.train.run import _make_run_dir, open_run

    os.environ["PCGRAPH_DIST_TIMEOUT"] = "30"
    join_group(rank, world, port)
    spec = load_spec(spec_path, ["train.epochs=3"])
    if rank == 0:
        _make_run_dir(spec, out)
    dist.barrier()
    trainer = open_run(spec, out, resume=False, progress=False)
    if rank == 1:
        trainer.callbacks.append(DieAt(2, 1))
    try:
        trainer.fit()
    except Exception as e:  # noqa: BLE001 - reported to the test
        errors.put((type(e).__name__, str(e)))
    else:
        errors.put(None)


def test_a_dead_peer_stops_the_others_with_a_message_and_keeps_the_checkpoint(write, tmp_path):
    spec = write(SPEC)
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(target=train_until_a_peer_dies, args=(r, 2, port, spec, tmp_path / "run", errors)) for r in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 3]
    name, message = errors.get(timeout=5)
    assert name == "PeerLost"
    assert "another process died" in message and "last checkpoint" in message
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 0)


@pytest.mark.slow
def test_cli_nproc_2_equals_one_process_and_resumes_with_one(write, tmp_path):
    spec = write(SPEC)
    runner = CliRunner()
    for method in ("pc", "bp"):
        one, two = tmp_path / f"{method}-1", tmp_path / f"{method}-2"
        args = ["train", str(spec), "--set", f"train.method={method}", "--quiet"]
        r = runner.invoke(main, [*args, "--out", str(one)])
        assert r.exit_code == 0, r.output
        r = runner.invoke(main, [*args, "--out", str(two), "--nproc", "2"])
        assert r.exit_code == 0, r.output
        assert_same_run(one, two)
        r = runner.invoke(main, ["train", "--resume", str(two), "--set", "train.epochs=3", "--quiet"])
        assert r.exit_code == 0, r.output
        assert [x["epoch"] for x in rows(two)] == [1, 1, 2, 2, 3, 3]
