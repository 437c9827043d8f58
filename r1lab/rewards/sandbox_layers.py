"""The sandbox's isolation layers: which this machine offers, the command that applies them, and clean-up.

Layers, strongest first (docs/sandbox.md says what each one stops):

- namespaces: `unshare --net --pid --mount --ipc` (with `--user --map-root-user` when not root):
  no network but a loopback that is down, no view of other processes, a private file system view
  in which the harness makes every mount read-only and /tmp a fresh tmpfs;
- an unprivileged uid per running execution (root only), 60000 + n like the IOI's `isolate`: the
  process limit holds (the kernel ignores RLIMIT_NPROC for root), files outside the working
  directory cannot be written, and one execution cannot signal another's processes;
- always: a process per execution in its own session, resource limits, a clean environment,
  `python -I -S`, a wall-clock timeout that kills the process group.

Where a layer is missing the sandbox still runs, with the rest, and says so (`SandboxCapabilities.notes`).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache

NAMESPACE_FLAGS = ("--net", "--pid", "--mount", "--ipc", "--fork", "--kill-child", "--mount-proc")
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
_next_uid = 0


@dataclass(frozen=True)
class SandboxSettings:
    """Process-wide choices; `None` means "use it where this machine allows"."""

    max_parallel: int = field(default_factory=lambda: os.cpu_count() or 2)
    namespaces: bool | None = None
    drop_privileges: bool | None = None
    uid_base: int = 60000
    uid_count: int = 256
    interpreter: str | None = None  # default: sys.executable, else a system python3 the sandbox uid can run


@dataclass(frozen=True)
class SandboxCapabilities:
    """The layers in force for every execution, as probed on this machine."""

    interpreter: str
    unshare: str | None  # the unshare command, when namespaces are in force
    user_namespace: bool  # namespaces entered as a mapped root (not running as root)
    uid_base: int | None  # None: executions run as the calling user
    uid_count: int
    network_isolated: bool
    pid_namespace: bool
    read_only_root: bool
    private_tmp: bool
    no_new_privs: bool
    process_limit: bool
    notes: tuple[str, ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        named = {"net-namespace": self.network_isolated, "pid-namespace": self.pid_namespace,
                 "read-only-root": self.read_only_root, "private-tmp": self.private_tmp,
                 "unprivileged-uid": self.uid_base is not None, "no-new-privs": self.no_new_privs,
                 "process-limit": self.process_limit}
        return ("process-group", "rlimits", "clean-env", "timeout",
                *(name for name, active in named.items() if active))

    def describe(self) -> str:
        missing = f"; not isolated: {' '.join(self.notes)}" if self.notes else ""
        return f"sandbox layers: {', '.join(self.layers)} (python {self.interpreter}){missing}"


def candidate_plans(settings: SandboxSettings) -> tuple[list[SandboxCapabilities], list[str]]:
    """The layer sets to try, strongest first, and notes on layers that cannot even be tried."""
    root, notes = os.geteuid() == 0, []
    drop = root if settings.drop_privileges is None else settings.drop_privileges
    if drop and not root:
        raise ValueError("the sandbox can drop privileges only when the training process runs as root")
    interpreter = settings.interpreter or sys.executable
    if drop:
        runnable = runnable_interpreter(settings, settings.uid_base)
        if runnable is None:
            drop = False
            notes.append(f"no Python interpreter that uid {settings.uid_base} can run was found, so code runs as root.")
        interpreter = runnable or interpreter
    unshare = shutil.which("unshare", path=os.environ.get("PATH", "") + ":" + SEARCH_PATH)
    use_namespaces = settings.namespaces is not False and unshare is not None
    if settings.namespaces is not False and unshare is None:
        notes.append("no unshare command (util-linux): no network, process or file-system namespaces.")
    base = dict(interpreter=interpreter, uid_base=settings.uid_base if drop else None, uid_count=settings.uid_count,
                network_isolated=False, pid_namespace=False, read_only_root=False, private_tmp=False,
                no_new_privs=True, process_limit=drop)
    plans = []
    if use_namespaces:
        # inside a user namespace the kernel counts RLIMIT_NPROC per namespace (Linux >= 5.14); for root it never holds
        plans.append(SandboxCapabilities(unshare=unshare, user_namespace=not root,
                                         **{**base, "process_limit": drop or not root}))
    plans.append(SandboxCapabilities(unshare=None, user_namespace=False, **base))
    return plans, notes


def confirmed(plan: SandboxCapabilities, facts: dict, notes: list[str]) -> SandboxCapabilities:
    """The plan with each layer marked by what the self-check program observed from inside it."""
    host_namespaces = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "pid")}
    network = facts["net"] != host_namespaces["net"]
    private_tmp = facts["tmp_device"] != os.stat("/tmp").st_dev
    notes = list(notes)
    if not network:
        notes.append("network: the code can reach the network, 127.0.0.1 included.")
    if facts["root_writable"]:
        notes.append("files: the code can write wherever its user may, outside its working directory too.")
    elif facts["tmp_writable"] and not private_tmp:
        notes.append("files: the code can write in the machine's /tmp, /var/tmp and /dev/shm (no mount namespace).")
    if plan.uid_base is None and os.geteuid() == 0 and not plan.user_namespace:
        notes.append("privileges: the code runs as root, which can undo every other layer.")
    elif plan.uid_base is None and plan.unshare is None:
        notes.append("processes: the code runs as the training process's user and can signal its processes.")
    if not plan.process_limit:
        notes.append("processes: no per-user process limit holds (a fork bomb is stopped only by the timeout).")
    return SandboxCapabilities(
        interpreter=plan.interpreter, unshare=plan.unshare, user_namespace=plan.user_namespace,
        uid_base=plan.uid_base, uid_count=plan.uid_count, network_isolated=network,
        pid_namespace=facts["pid"] != host_namespaces["pid"],
        read_only_root=plan.unshare is not None and not facts["root_writable"],
        private_tmp=private_tmp, no_new_privs=facts["no_new_privs"],
        process_limit=plan.process_limit, notes=tuple(notes))


def command(capabilities: SandboxCapabilities, harness: str) -> list[str]:
    """The argv that starts the harness inside the layers."""
    prefix: list[str] = []
    if capabilities.unshare is not None:
        user = ["--user", "--map-root-user"] if capabilities.user_namespace else []
        prefix = [capabilities.unshare, *user, *NAMESPACE_FLAGS]
    # -I: no environment variables, user site or cwd on sys.path; -S: no site-packages, 30 ms less per start
    return [*prefix, capabilities.interpreter, "-I", "-S", "-c", harness]


def runnable_interpreter(settings: SandboxSettings, uid: int) -> str | None:
    """The first Python that `uid` can start and import the harness's modules with.

    sys.executable often is not one: a pyenv or conda install under /root is closed to other users.
    """
    candidates = [settings.interpreter, sys.executable, os.path.realpath(sys.executable),
                  shutil.which("python3", path=SEARCH_PATH)]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            check = subprocess.run([candidate, "-I", "-S", "-c", "import marshal, resource, ctypes, _signal"],
                                   user=uid, group=uid, extra_groups=[], env={}, cwd="/",
                                   capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if check.returncode == 0:
            return candidate
    return None


@contextmanager
def leased_uid(capabilities: SandboxCapabilities, wait_seconds: float = 60.0) -> Iterator[int | None]:
    """An unprivileged uid that no other execution on this machine holds (a lock file per uid).

    Yields None when executions run as the calling user. Without a pid namespace (whose end takes
    all its processes with it) every process still running as the uid when the lease ends is
    killed, so the next holder starts clean.
    """
    global _next_uid
    if capabilities.uid_base is None:
        yield None
        return
    directory = _lock_directory()
    give_up = time.monotonic() + wait_seconds
    while True:
        # round robin, so that a uid rests between executions: without a pid namespace the zombies
        # of killed processes wait for the machine's init to reap them, and count as its processes
        start, _next_uid = _next_uid, _next_uid + 1
        for offset in range(capabilities.uid_count):
            uid = capabilities.uid_base + (start + offset) % capabilities.uid_count
            if _has_account(uid):
                continue  # a real user's uid: its files and processes are not ours to touch
            lock = os.open(os.path.join(directory, str(uid)), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                continue
            try:
                yield uid
            finally:
                if not capabilities.pid_namespace:
                    kill_processes_of(uid)
                os.close(lock)
            return
        if time.monotonic() > give_up:
            raise RuntimeError(f"all {capabilities.uid_count} sandbox uids from {capabilities.uid_base} are busy")
        time.sleep(0.01)


def kill_processes_of(uid: int, rounds: int = 50) -> int:
    """SIGKILL every live process whose real uid is `uid`, until none is left; returns how many."""
    killed = 0
    for _ in range(rounds):
        found = list(_live_pids_of(uid))
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed += len(found)
    return killed


def _live_pids_of(uid: int) -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as status:
                text = status.read()
        except OSError:
            continue  # it ended while we looked
        state = text.split(b"\nState:\t", 1)[1][:1] if b"\nState:\t" in text else b"?"
        real = text.split(b"\nUid:\t", 1)[1].split(b"\t", 1)[0] if b"\nUid:\t" in text else b""
        if real == str(uid).encode() and state not in (b"Z", b"X"):
            yield int(entry.name)


@cache
def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


@lru_cache(maxsize=1)
def _lock_directory() -> str:
    # /run is root's; a directory in the shared /tmp is the fallback, and must be ours
    for parent in ("/run", tempfile.gettempdir()):
        path = os.path.join(parent, "r1lab-sandbox-uids")
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError:
            continue
        if os.stat(path).st_uid == os.geteuid():
            return path
    raise RuntimeError("no directory for the sandbox's uid locks (tried /run and the temp directory)")
