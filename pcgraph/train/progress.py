"""Progress display: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import sys
import time

#: the bar's width where the terminal reports none (a pseudo-terminal without a size)
FALLBACK_COLUMNS = 100


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _columns(stream) -> int | None:
    """None when the terminal reports its width; else a width to draw at (``$COLUMNS``
    or FALLBACK_COLUMNS): a terminal of width 0 would get an empty bar."""
    try:
        if os.get_terminal_size(stream.fileno()).columns > 0:
            return None
    except (AttributeError, OSError, ValueError):
        pass
    env = os.environ.get("COLUMNS", "")
    return int(env) if env.isdigit() and int(env) > 0 else FALLBACK_COLUMNS


class Progress:
    """Per-epoch progress with epoch, batch, energy or loss, speed and ETA."""

    def __init__(self, stream=None, enabled: bool = True, every: float = 10.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every  # seconds between plain-line updates when not on a terminal
        self.bar = None

    def start_epoch(self, epoch: int, epochs: int, n_batches: int, first: int = 0, desc: str | None = None) -> None:
        """A block of ``n_batches`` batches: epoch ``epoch`` of ``epochs``, or what ``desc`` says."""
        self.epoch, self.epochs, self.n = epoch, epochs, n_batches
        self.desc = desc or f"epoch {epoch}/{epochs}"
        self.t0 = time.perf_counter()
        self.first = first
        self.last_line = self.t0
        if self.tty:
            from tqdm import tqdm

            width = _columns(self.stream)  # None: the terminal's own, followed as it changes
            self.bar = tqdm(
                total=n_batches,
                initial=first,
                desc=self.desc,
                file=self.stream,
                unit="batch",
                dynamic_ncols=width is None,
                ncols=width,
                leave=False,
            )

    def update(self, batch: int, label: str, value: float | None) -> None:
        if not self.enabled:
            return
        done = batch + 1
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if value is not None:
                self.bar.set_postfix_str(f"{label} {value:.4g}", refresh=False)
            return
        now = time.perf_counter()
        if now - self.last_line >= self.every and done < self.n:
            self.last_line = now
            elapsed = now - self.t0
            rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
            eta = (self.n - done) / rate if rate > 0 else 0.0
            shown = f"{label} {value:.4g}" if value is not None else ""
            print(
                f"{self.desc} batch {done}/{self.n} {shown} {rate:.1f} batch/s eta {_fmt_time(eta)}",
                file=self.stream,
                flush=True,
            )

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)
