"""Model-written code runs only here: `execute(code, tests, timeout)`, one process per execution.

    result = execute("def add(a, b):\\n    return a + b", ["assert add(2, 3) == 5"], timeout=2.0)
    result.passed, result.tests_passed, result.timed_out, result.stdout

Each execution is a fresh `python -I -S` (the harness, `sandbox_harness.py`) in its own process
group, inside the isolation layers this machine offers (`sandbox_layers.py`, probed once:
`sandbox_capabilities()`), under CPU, memory, file-size, open-file and process limits, in a
throwaway working directory, with a clean environment, read up to a cap on stdout and stderr,
and killed, with every process it started, at the wall-clock timeout.

A pass is counted only when the verdict the harness writes after the tests comes back carrying
the execution's random nonce (`secrets.token_hex(16)`): a program that exits before its tests
(`sys.exit(0)`, `os._exit`, a crash, a kill) writes none, and no printed text can stand in for
it. The channel and what it proves are in docs/sandbox.md.

Executions run on worker threads that only wait on their subprocess, up to `max_parallel` at a
time (`configure(max_parallel=...)`); `submit` returns a future, so the caller's thread is never
blocked, and `execute_many` returns results in order.
"""

from __future__ import annotations

import logging
import marshal
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from r1lab.rewards.sandbox_layers import (
    SandboxCapabilities,
    SandboxSettings,
    candidate_plans,
    command,
    confirmed,
    kill_processes_of,
    leased_uid,
)

logger = logging.getLogger("r1lab.rewards.sandbox")
HARNESS = (Path(__file__).parent / "sandbox_harness.py").read_text()
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}  # fixed, nothing inherited
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SandboxLimits:
    """Per-execution resource limits (the wall-clock `timeout` is an argument of `execute`)."""

    memory_bytes: int = 1 << 30  # address space (RLIMIT_AS)
    file_bytes: int = 16 << 20  # largest file written (RLIMIT_FSIZE)
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 32  # RLIMIT_NPROC, per execution's uid; holds only with the unprivileged uid or a user namespace
    output_bytes: int = 1 << 20  # stdout and stderr each; more is an "output limit exceeded" failure
    workdir_bytes: int = 64 << 20  # size of the private /tmp (with namespaces)


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution did. `passed`: the program and every test ran to the end (the nonce came back)."""

    passed: bool
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr: str
    test_results: tuple[bool, ...]  # one per test, all False without a verdict
    program_completed: bool  # the program's top level ran to its end (no exception, no exit)
    verdict: bool  # the harness's verdict came back with the nonce
    output_limited: bool
    seconds: float
    layers: tuple[str, ...]

    @property
    def tests_passed(self) -> int:
        return sum(self.test_results)

    @property
    def tests_total(self) -> int:
        return len(self.test_results)

    @property
    def pass_share(self) -> float:
        """tests passed / tests; for a program without tests, 1.0 when it ran to its end."""
        if not self.test_results:
            return float(self.passed)
        return self.tests_passed / self.tests_total


class _State:
    def __init__(self, settings: SandboxSettings):
        self.settings = settings
        self.capabilities: SandboxCapabilities | None = None
        self.slots = threading.BoundedSemaphore(settings.max_parallel)
        self.pool = ThreadPoolExecutor(settings.max_parallel, thread_name_prefix="r1lab-sandbox")


_LOCK = threading.Lock()
_STATE = _State(SandboxSettings())


def configure(**changes) -> SandboxSettings:
    """Change the process-wide settings (`max_parallel`, `namespaces`, `drop_privileges`, `uid_base`, ...).

    The layers are probed again at the next execution. Executions already running keep their slots.
    """
    global _STATE
    with _LOCK:
        old = _STATE
        _STATE = _State(replace(old.settings, **changes))
    old.pool.shutdown(wait=False)
    return _STATE.settings


def sandbox_capabilities() -> SandboxCapabilities:
    """The isolation layers in force, probed once by running a self-check program through them."""
    state = _STATE
    with _LOCK:
        if state.capabilities is None:
            state.capabilities = _probe(state.settings)
            logger.info(state.capabilities.describe())
        return state.capabilities


def execute(code: str, tests: str | Sequence[str] = "", timeout: float = 5.0,
            limits: SandboxLimits | None = None) -> ExecutionResult:
    """Run `code`, then each test (a string of Python, e.g. an assert) in its namespace, in the sandbox.

    Each test gets timeout / (tests + 1) seconds of its own (a test that overruns fails, the rest
    still run); the whole execution gets `timeout`. Blocks the calling thread; see `submit`.
    """
    state = _STATE
    capabilities = sandbox_capabilities()
    tests = [tests] if isinstance(tests, str) else list(tests)
    tests = [test for test in tests if test.strip()]
    with state.slots:
        return _execute(code, tests, timeout, limits or SandboxLimits(), capabilities)


def submit(code: str, tests: str | Sequence[str] = "", timeout: float = 5.0,
           limits: SandboxLimits | None = None) -> Future:
    """`execute` on the sandbox's worker threads; returns a future of its ExecutionResult."""
    return _STATE.pool.submit(execute, code, tests, timeout, limits)


def execute_many(programs: Sequence[str], tests: Sequence[str | Sequence[str]] | None = None,
                 timeout: float = 5.0, max_workers: int | None = None,
                 limits: SandboxLimits | None = None) -> list[ExecutionResult]:
    """Run each program with its own tests (`tests[i]` for `programs[i]`) in parallel; results in order.

    At most `max_workers` (default: the `max_parallel` setting) run at once.
    """
    tests = [""] * len(programs) if tests is None else list(tests)
    if len(tests) != len(programs):
        raise ValueError(f"{len(tests)} test lists for {len(programs)} programs")
    if max_workers is None:
        futures = [submit(code, own, timeout, limits) for code, own in zip(programs, tests)]
        return [future.result() for future in futures]
    with ThreadPoolExecutor(max_workers, thread_name_prefix="r1lab-sandbox-batch") as pool:
        return list(pool.map(lambda pair: execute(pair[0], pair[1], timeout, limits), zip(programs, tests)))


def _execute(code: str, tests: list[str], timeout: float, limits: SandboxLimits,
             capabilities: SandboxCapabilities) -> ExecutionResult:
    with leased_uid(capabilities) as uid, _working_directory(capabilities, uid) as workdir:
        started = time.monotonic()
        nonce = secrets.token_hex(16).encode()
        job = {
            "code": code, "tests": tests, "test_seconds": timeout / (len(tests) + 1),
            "limits": _rlimits(timeout, limits, capabilities), "uid": uid, "gid": uid,
            "private_filesystem": capabilities.unshare is not None, "workdir_bytes": limits.workdir_bytes,
            "no_new_privs": capabilities.no_new_privs, "workdir": workdir,
        }
        outcome = _run(capabilities, job, nonce, started + timeout, limits.output_bytes, uid)
    (stdout, stderr, verdict), returncode, timed_out, limited = outcome
    # the CPU limit is the timeout too: a busy loop can reach it (SIGXCPU) a moment before the
    # wall-clock deadline, on a loaded machine; either way the program ran out of its time
    timed_out = timed_out or returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    parsed = None if timed_out or limited else _read_verdict(verdict, nonce, len(tests))
    completed, results = parsed if parsed is not None else (False, (False,) * len(tests))
    return ExecutionResult(
        passed=completed and all(results), timed_out=timed_out, returncode=returncode,
        stdout=stdout.decode(errors="replace"), stderr=stderr.decode(errors="replace"),
        test_results=results, program_completed=completed, verdict=parsed is not None,
        output_limited=limited, seconds=time.monotonic() - started, layers=capabilities.layers)


def _run(capabilities: SandboxCapabilities, job: dict, nonce: bytes, deadline: float, output_cap: int,
         uid: int | None):
    """Start the harness, feed it its job, collect its output and verdict until it ends or the deadline."""
    nonce_read, nonce_write = os.pipe()
    os.write(nonce_write, nonce)  # 32 bytes fit in any pipe buffer; the harness reads them after the tests
    os.close(nonce_write)
    verdict_read, verdict_write = os.pipe()
    job_bytes = marshal.dumps({**job, "nonce_fd": nonce_read, "verdict_fd": verdict_write})
    try:
        process = subprocess.Popen(command(capabilities, HARNESS), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env={**ENVIRONMENT, "HOME": job["workdir"]}, cwd="/",
                                   start_new_session=True, pass_fds=(nonce_read, verdict_write))
    finally:
        os.close(nonce_read)
        os.close(verdict_write)
    timed_out = limited = False
    try:
        streams, timed_out, limited = _collect(process, verdict_read, job_bytes, deadline, output_cap)
    finally:
        returncode = _end(process, uid, forced=timed_out or limited, namespaced=capabilities.unshare is not None)
        for handle in (process.stdin, process.stdout, process.stderr):
            handle.close()
        os.close(verdict_read)
    return streams, returncode, timed_out, limited


def _collect(process: subprocess.Popen, verdict_fd: int, job: bytes, deadline: float, cap: int):
    """Write the job; read stdout, stderr and the verdict (each up to `cap`) until they close or time runs out.

    Once the harness's process has ended, what it left in the pipes is read and nothing more is
    waited for: a process it started may still hold them open.
    """
    stdin = process.stdin.fileno()
    fds = [process.stdout.fileno(), process.stderr.fileno(), verdict_fd]
    received = {fd: bytearray() for fd in fds}
    pending = memoryview(job)
    selector = selectors.DefaultSelector()
    for fd in [*fds, stdin]:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_WRITE if fd == stdin else selectors.EVENT_READ)
    timed_out = limited = False
    try:
        while selector.get_map() and not limited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ended = _has_ended(process.pid)
            for key, _ in selector.select(0 if ended else min(remaining, POLL_SECONDS)):
                if key.fd == stdin:
                    pending = _feed(stdin, pending, selector)
                    if not pending:
                        process.stdin.close()  # end of file: the harness reads its job to the end
                    continue
                while (chunk := _read_some(key.fd)) is not None:  # a pipe may hold more than one read
                    if not chunk:
                        selector.unregister(key.fd)
                        break
                    received[key.fd] += chunk
                    if len(received[key.fd]) > cap:
                        limited = True
                        break
                    if not ended:
                        break
            if ended:
                break
    finally:
        selector.close()
    return [bytes(received[fd][:cap]) for fd in fds], timed_out, limited


def _feed(fd: int, pending: memoryview, selector: selectors.BaseSelector) -> memoryview:
    try:
        pending = pending[os.write(fd, pending[:65536]) :]
    except BrokenPipeError:  # the harness ended before reading its job: its exit status tells why
        pending = pending[:0]
    if not pending:
        selector.unregister(fd)
    return pending


def _read_some(fd: int) -> bytes | None:
    """Up to 64 KiB; b"" at end of file; None when nothing is there yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


def _has_ended(pid: int) -> bool:
    """Whether the process has exited, without reaping it (WNOWAIT): its pid stays ours until `wait`."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _end(process: subprocess.Popen, uid: int | None, forced: bool, namespaced: bool) -> int:
    """Kill what is left of the execution and reap it; returns the exit status."""
    if namespaced and not _has_ended(process.pid):
        # the namespace's init (unshare's child) first, so that unshare reaps it: a zombie handed
        # to the machine's init may linger, and counts against the uid's process limit meanwhile
        for child in _children(process.pid):
            _kill(child)
        give_up = time.monotonic() + 1.0
        while not _has_ended(process.pid) and time.monotonic() < give_up:
            time.sleep(0.001)
    try:  # the group's leader is not reaped yet, so the group's id cannot have been reused
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    returncode = process.wait()
    if uid is not None and forced:
        kill_processes_of(uid)  # whatever left the group (setsid) still runs as this uid
    return returncode


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_verdict(data: bytes, nonce: bytes, tests: int) -> tuple[bool, tuple[bool, ...]] | None:
    """(program completed, test results) from `nonce P|F bits`; None unless it is exactly that."""
    parts = data.split(b" ")
    if len(parts) != 3 or not secrets.compare_digest(parts[0], nonce) or parts[1] not in (b"P", b"F"):
        return None
    bits = parts[2].decode(errors="replace")
    if len(bits) != tests or set(bits) - {"0", "1"}:
        return None
    return parts[1] == b"P", tuple(bit == "1" for bit in bits)


def _rlimits(timeout: float, limits: SandboxLimits, capabilities: SandboxCapabilities) -> dict[str, int]:
    chosen = {"cpu_seconds": max(1, math.ceil(timeout)), "memory_bytes": limits.memory_bytes,
              "file_bytes": limits.file_bytes, "open_files": limits.open_files, "core_bytes": 0}
    if capabilities.process_limit:
        chosen["processes"] = limits.processes
    return chosen


@contextmanager
def _working_directory(capabilities: SandboxCapabilities, uid: int | None):
    """The private tmpfs /tmp inside a mount namespace; otherwise a fresh directory, removed afterwards."""
    if capabilities.unshare is not None:
        yield "/tmp"
        return
    path = tempfile.mkdtemp(prefix="r1lab-sandbox-", dir="/tmp" if uid is not None else None)
    try:
        if uid is not None:
            os.chown(path, uid, uid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


PROBE = """
import os, resource
def namespace(kind):
    return os.readlink("/proc/self/ns/" + kind)
status = open("/proc/self/status").read()
print(repr({"uid": os.getuid(), "net": namespace("net"), "pid": namespace("pid"),
            "root_writable": os.access("/", os.W_OK), "tmp_writable": os.access("/tmp", os.W_OK),
            "tmp_device": os.stat("/tmp").st_dev,
            "no_new_privs": "NoNewPrivs:\\t1" in status}))
"""


def _probe(settings: SandboxSettings) -> SandboxCapabilities:
    """Try the layer sets strongest first; keep the first whose self-check runs and passes."""
    import ast

    plans, notes = candidate_plans(settings)
    for plan in plans:
        result = _execute(PROBE, [], 30.0, SandboxLimits(), plan)
        if result.passed:
            return confirmed(plan, ast.literal_eval(result.stdout.strip()), notes)
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        notes.append(f"{'namespaces' if plan.unshare else 'the plain sandbox'} failed here ({reason}).")
    raise RuntimeError("the sandbox cannot run code on this machine: " + " ".join(notes))
