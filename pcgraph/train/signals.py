"""Stopping a run cleanly on SIGINT or SIGTERM: the first signal asks the loop to stop
at the end of its batch; a second one stops at once (the last checkpoint stays intact)."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_on_signals(on_signal):
    """While inside, SIGINT and SIGTERM call ``on_signal(name)`` and re-arm the handler
    that was there before (so that a second signal acts at once); the old handlers
    come back on leaving. Outside the main thread, signals are left alone."""
    old = {}
    if threading.current_thread() is threading.main_thread():

        def handler(signum, frame):
            on_signal(signal.Signals(signum).name)
            signal.signal(signum, old.get(signum, signal.SIG_DFL))

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
    try:
        yield
    finally:
        for sig, h in old.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError):
                pass
