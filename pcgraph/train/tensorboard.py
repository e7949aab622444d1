"""Optional TensorBoard logging (``--log tensorboard`` on train and compare).

The run directory stays the source of truth (metrics.jsonl, summary.json); this only
mirrors it where TensorBoard users look, in ``RUN_DIR/tensorboard``:

    batch/energy or batch/loss    per training step (the value the progress bar shows)
    train/<metric>, test/<metric> per epoch (the rows of metrics.jsonl; a stream's
                                  per evaluation, at its iteration)
    energy/<node>                 per epoch (PC): each node's batch-mean energy after
                                  inference, averaged over the epoch's training batches
                                  (they sum to the train row's energy)
    loss/<node>                   the same for BP: each target's (and prior's) loss term

The tensorboard package is an extra: ``pip install "pcgraph[tensorboard]"``.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import Issue, Location, TrainError
from .trainer import Callback

OPTION = "--log tensorboard"
INSTALL = 'pip install "pcgraph[tensorboard]"'


def summary_writer():
    """torch's SummaryWriter class, or a TrainError of one sentence when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        msg = f"TensorBoard logging needs the tensorboard package, which is not installed: {INSTALL}"
        raise TrainError(Issue(None, msg, Location(OPTION)))
    return SummaryWriter


class TensorBoardLogger(Callback):
    """Writes a run's metrics and per-node energies as TensorBoard scalars."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.writer = summary_writer()(log_dir=str(self.log_dir))
        self.sums: dict = {}
        self.count = 0

    def on_batch_end(self, trainer, epoch, batch, n_batches, value):
        if value is not None:
            self.writer.add_scalar("batch/energy" if trainer.method == "pc" else "batch/loss", value, trainer.step)
        terms = getattr(trainer, "last_terms", None)
        if terms:  # accumulated on the device: no extra host sync per batch
            for node, t in terms.items():
                m = t.detach().mean()
                self.sums[node] = self.sums[node] + m if node in self.sums else m
            self.count += 1

    def on_epoch_end(self, trainer, epoch, rows):
        x = rows[0].get("iteration", epoch) if rows else epoch  # a stream's rows are per iteration
        for r in rows:
            for k, v in r.items():
                if k not in ("epoch", "iteration", "split") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"{r['split']}/{k}", v, x)
        if self.count:
            for node, total in self.sums.items():
                self.writer.add_scalar(
                    f"{'energy' if trainer.method == 'pc' else 'loss'}/{node}", (total / self.count).item(), x
                )
        self.sums, self.count = {}, 0
        self.writer.flush()

    def on_fit_end(self, trainer, summary):
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


__all__ = ["TensorBoardLogger", "summary_writer", "INSTALL"]
