"""Ctrl-C and SIGTERM during training: the first one asks the loop to stop at the end
of the current batch (which then saves its state), a second one stops at once."""

from __future__ import annotations

import signal
import threading
from typing import Callable


def install(on_signal: Callable[[str], None]) -> dict:
    """Route SIGINT and SIGTERM to ``on_signal(name)`` once; returns the old handlers
    (none off the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict = {}

    def handler(signum, frame):
        on_signal(signal.Signals(signum).name)
        # a second signal stops at once (the last checkpoint stays intact)
        signal.signal(signum, old.get(signum, signal.SIG_DFL))

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    return old


def restore(old: dict) -> None:
    for sig, h in old.items():
        try:
            signal.signal(sig, h)
        except (ValueError, OSError):
            pass
