"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (what a cluster sends before preempting).

Inside `stop_on_signals()`, the first SIGINT or SIGTERM only records a request; the training loop
sees it after the step it is in (`Run.checkpoint_due` is then true), writes a checkpoint and
raises `RunInterrupted`, which the CLI turns into a message saying how to resume and an exit
status of 128 + the signal's number. A second SIGINT stops at once, as Ctrl-C usually does.
Outside the context (a script calling a trainer), signals keep Python's default behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

_requested: list[int] = []  # the signal received inside stop_on_signals(), if any


class RunInterrupted(Exception):
    """A run stopped by a signal after writing a checkpoint at `step`."""

    def __init__(self, run_dir: Path, job: str, step: int, signum: int):
        self.run_dir, self.job, self.step, self.signum = Path(run_dir), job, step, signum
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint saved in {run_dir}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def stop_requested() -> int | None:
    """The signal number of a pending stop request, or None."""
    return _requested[0] if _requested else None


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGINT and SIGTERM into a stop request for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum, frame):
        if _requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without the checkpoint
        if not _requested:
            _requested.append(signum)

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    _requested.clear()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _requested.clear()
