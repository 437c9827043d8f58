"""A warm worker process for reward functions that cannot be trusted to stop: killed at the time limit.

A thread cannot be stopped, and a function that holds the GIL in C (a catastrophic regex, a
huge integer power inside sympy) stops every other thread with it. A process can be killed.
One worker serves every call of its reward function, so a call costs two pickles over a pipe
and a word that the call started (its time limit counts from there, not from the worker's start),
not a process start; a worker killed at the limit is replaced at the next call.

The worker is a fresh `python -c` of this module, never a fork of the training process with its
threads and its model, and it runs nothing of the training script's `__main__` (multiprocessing's
spawn and forkserver would re-run it). Functions travel by reference, so they must be
module-level functions of an importable module: not lambdas, closures, or `__main__`'s.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

LOAD_TIMEOUT = 60.0  # seconds for a worker to start and load a call, before the function's own limit starts
STARTED = b"started"  # the worker's word that the function is running: its time limit counts from here
BOOT = "import sys; sys.path[:0] = {path!r}; from r1lab.rewards.worker import serve; serve({requests}, {replies})"
_LIVE: set[subprocess.Popen] = set()


class RewardWorkerError(RuntimeError):
    """A call failed inside the worker (the message holds its traceback) or the worker died."""


class RewardWorkerTimeout(TimeoutError):
    """A call ran past its time limit; the worker was killed."""


def check_importable(function: Callable) -> None:
    """Raise TypeError unless `function` can be sent to a worker by reference."""
    if getattr(function, "__module__", None) == "__main__":
        raise TypeError("it is defined in __main__, which a worker process does not import; move it into a module")
    try:
        pickle.dumps(function)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(f"it does not pickle by reference (a lambda or closure?): {error}") from error


class RewardWorker:
    """One process that calls reward functions in turn, started on first use and after each kill."""

    def __init__(self, name: str):
        self.name = name
        self.starts = 0  # processes started so far: 1 + the kills and deaths
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._lock = threading.Lock()

    def call(self, function: Callable, prompts: list, completions: list, fields: dict, timeout: float | None):
        """function(prompts, completions, **fields) in the worker; the worker is killed past `timeout`."""
        payload = pickle.dumps((function, prompts, completions, fields), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            try:
                self._requests.send_bytes(payload)
            except OSError:
                raise RewardWorkerError(f"its worker process died (exit status {self._stop()})") from None
            # the limit is the function's own time: the worker's start and the import of the function's
            # module (seconds on a busy machine) come first, under a limit of their own
            reply = self._reply(LOAD_TIMEOUT, f"its worker did not start the call within {LOAD_TIMEOUT}s")
            if reply == STARTED:
                reply = self._reply(timeout, f"ran past its {timeout}s limit")
            status, result = pickle.loads(reply)
        if status == "error":
            raise RewardWorkerError(result)
        return result

    def _reply(self, timeout: float | None, late: str) -> bytes:
        """The worker's next message; the worker is killed when none comes within `timeout`."""
        if not self._replies.poll(timeout):
            self._stop()
            raise RewardWorkerTimeout(f"{late} (its worker process was killed)")
        try:
            return self._replies.recv_bytes()
        except (EOFError, OSError):
            raise RewardWorkerError(f"its worker process died (exit status {self._stop()})") from None

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._stop()

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        boot = BOOT.format(path=sys.path, requests=request_read, replies=reply_write)
        try:
            # a session of its own: a Ctrl-C meant for training does not kill it mid-call
            self._process = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.DEVNULL,
                                             pass_fds=(request_read, reply_write), start_new_session=True)
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        _LIVE.add(self._process)
        self.starts += 1

    def _stop(self) -> int | None:
        process, self._process = self._process, None
        process.kill()
        code = process.wait()
        _LIVE.discard(process)
        self._requests.close()
        self._replies.close()
        return code


def serve(requests_fd: int, replies_fd: int) -> None:
    """The worker's loop: call, reply ("ok", values) or ("error", traceback), until the training process goes."""
    requests, replies = Connection(requests_fd, writable=False), Connection(replies_fd, readable=False)
    while True:
        try:
            message = requests.recv_bytes()
        except EOFError:
            return
        try:
            function, prompts, completions, fields = pickle.loads(message)
            replies.send_bytes(STARTED)
            reply = ("ok", list(function(prompts, completions, **fields)))
        except BaseException as error:  # handed to the training process, which scores 0 and counts it
            reply = ("error", "".join(traceback.format_exception(type(error), error, error.__traceback__)))
        try:
            data = pickle.dumps(reply)
        except Exception as error:
            data = pickle.dumps(("error", f"the reward function returned values that do not pickle: {error}"))
        replies.send_bytes(data)


@atexit.register
def _stop_all() -> None:
    for process in list(_LIVE):
        process.kill()
