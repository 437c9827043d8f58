"""The program that runs inside the sandbox: it isolates itself, then runs the model's code and its tests.

The parent (`r1lab.rewards.sandbox`) starts it as `python -I -S -c <this file's text>`, as root
inside fresh namespaces where it has them, and writes its job on stdin: a marshal'd dict holding
the code, the tests, the limits, and two file descriptors, one to read the nonce from and one to
write the verdict to. In order, the harness

1. makes the file system read-only and mounts a private, size-limited /tmp as the working
   directory (when it runs in its own mount namespace);
2. drops to the execution's unprivileged uid, forbids gaining privileges again (setuid programs),
   and sets the resource limits, so that nothing it runs next can lift them;
3. runs the program, then each test in the program's namespace, each under its share of the time;
4. only then reads the nonce and writes `nonce P|F bits` on the verdict descriptor: P when the
   program ran to its end, one bit per test.

A program that exits, crashes or is killed before step 4 leaves no verdict, so it cannot pass.
The parent wrote the nonce before the program started, but a program can only learn it by
reading the harness's descriptor on purpose, not by printing: see docs/sandbox.md for what
that does and does not prove.

Every import costs each execution its time, so this file uses what the interpreter has built in
(marshal, _signal, resource) and imports ctypes only when it mounts or calls prctl.
"""

from __future__ import annotations  # annotations stay text: the interpreter here may predate 3.10

import _signal  # the C module: `signal` imports enum, 5 ms per execution
import builtins
import marshal
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
KEPT_MOUNT_FLAGS = {"nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024, "nodiratime": 2048,
                    "relatime": 1 << 21, "strictatime": 1 << 24}  # flags a user namespace locks
WORLD_WRITABLE = ("/var/tmp", "/dev/shm", "/run/lock")
PR_SET_NO_NEW_PRIVS = 38
BUILTINS, COMPILE, EXEC = dict(vars(builtins)), compile, exec  # as they are before the program runs
LIMITS = {"cpu_seconds": resource.RLIMIT_CPU, "memory_bytes": resource.RLIMIT_AS, "file_bytes": resource.RLIMIT_FSIZE,
          "open_files": resource.RLIMIT_NOFILE, "processes": resource.RLIMIT_NPROC, "core_bytes": resource.RLIMIT_CORE}


class TestTimeout(BaseException):
    """A test ran past its share of the time (a BaseException, so `except Exception` cannot swallow it)."""


def main() -> None:
    read, write, exit_now = os.read, os.write, os._exit  # held before the program can rebind them
    job = marshal.loads(sys.stdin.buffer.read())
    for fd in (job["nonce_fd"], job["verdict_fd"]):
        os.set_inheritable(fd, False)  # programs the code execs do not get them
    try:
        isolate(job)
    except OSError as error:
        write(2, f"sandbox setup failed: {error}\n".encode())
        exit_now(125)
    completed, passed = run_program(job["code"], job["tests"], job["test_seconds"], write)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # the program may have replaced or closed them
            pass
    nonce = read(job["nonce_fd"], 64)
    bits = "".join("1" if ok else "0" for ok in passed)
    write(job["verdict_fd"], nonce + f" {'P' if completed else 'F'} {bits}".encode())
    exit_now(0 if completed and all(passed) else 1)


def isolate(job: dict) -> None:
    """Steps 1-2: private file system, unprivileged uid, no new privileges, resource limits."""
    libc = None
    if job["private_filesystem"] or job["no_new_privs"]:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    if job["private_filesystem"]:
        private_filesystem(libc, job["workdir_bytes"], job["uid"], job["gid"])
    if job["uid"] is not None:
        os.setgroups([])
        os.setgid(job["gid"])
        os.setuid(job["uid"])
    if libc is not None and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    for name, value in job["limits"].items():
        limit = LIMITS[name]
        hard = resource.getrlimit(limit)[1]
        ceiling = value + 1 if name == "cpu_seconds" else value  # the hard CPU limit kills; the soft one signals
        if hard != resource.RLIM_INFINITY:
            value, ceiling = min(value, hard), min(ceiling, hard)
        resource.setrlimit(limit, (value, ceiling))
    os.chdir(job["workdir"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def private_filesystem(libc, size: int, uid: int | None, gid: int | None) -> None:
    """Every mount read-only and nosuid; a fresh tmpfs as /tmp (the working directory); nothing else writable.

    Runs as (possibly user-namespace) root inside a private mount namespace, so nothing here is
    seen outside it, and the kernel drops all of it when the namespace's last process ends.
    """
    for target, options in mount_points():
        if target.startswith(("/proc", "/sys", "/dev")):
            continue  # proc is the namespace's own; sysfs needs root to write; /dev/null must stay writable
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        flags |= sum(KEPT_MOUNT_FLAGS.get(option, 0) for option in options)
        libc.mount(None, target.encode(), None, flags, None)  # best effort: the probe checks "/" is read-only
    owner = f",uid={uid},gid={gid}" if uid is not None else ""
    _mount(libc, b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=700{owner}".encode())
    for path in WORLD_WRITABLE:
        if os.path.isdir(path):
            _mount(libc, b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k")


def mount_points() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) for every mount, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields = line.split()
            target = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            found.append((target, fields[5].split(",")))
    return found


def run_program(code: str, tests: list[str], test_seconds: float, write) -> tuple[bool, list[bool]]:
    """Step 3: (the program ran to its end, which tests passed). A test that raises or overruns fails.

    The tests are compiled and run with the builtins as they were before the program ran: a program
    that replaces builtins.compile or builtins.len changes neither how its tests run nor what they mean.
    """
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        EXEC(COMPILE(code, "<program>", "exec"), namespace)
    except BaseException as error:  # SystemExit too: a program that exits early did not run to its end
        describe(error, write)
        return False, [False] * len(tests)
    passed = []
    for index, test in enumerate(tests):
        try:
            compiled = COMPILE(test, f"<test {index}>", "exec")
            scope = {**namespace, "__builtins__": BUILTINS}
            _signal.signal(_signal.SIGALRM, _on_alarm)  # again each time: the program may have set its own
            _signal.setitimer(_signal.ITIMER_REAL, test_seconds)
            try:
                EXEC(compiled, scope)
            finally:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
            passed.append(True)
        except BaseException as error:
            describe(error, write)
            passed.append(False)
    return True, passed


def describe(error: BaseException, write) -> None:
    """One short traceback on stderr: where in the program or test, and the error (no `traceback` import)."""
    places, trace = [], error.__traceback__
    while trace is not None:
        name = trace.tb_frame.f_code.co_filename
        if name.startswith(("<program", "<test")):  # the model's code, not the harness's
            places.append(f"{name} line {trace.tb_lineno}")
        trace = trace.tb_next
    try:
        message = f"{type(error).__name__}: {error}"
    except BaseException:  # a hostile __str__
        message = type(error).__name__
    write(2, (" <- ".join(reversed(places)) + f": {message}\n").encode(errors="replace"))


def _on_alarm(signum, frame):
    raise TestTimeout("the test ran past its share of the time limit")


def _mount(libc, source: bytes, target: bytes, fstype: bytes, flags: int, data: bytes | None) -> None:
    if libc.mount(source, target, fstype, flags, data) != 0:
        raise OSError(_errno(), f"mount {target.decode()} failed")


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


if __name__ == "__main__":
    main()
