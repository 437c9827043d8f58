"""The sandbox and the code reward: model-written code is run, scored by a harness it cannot stand in for,
and contained, however hostile."""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import Future

import pytest

from r1lab.rewards import REWARDS, code_reward, extract_code, reward_functions, sandbox, score
from r1lab.rewards.sandbox import SandboxLimits, execute, execute_many, sandbox_capabilities, submit
from r1lab.rewards.sandbox_layers import _live_pids_of

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's layers are Linux's")

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"]
FAST = 1.5  # seconds: every hostile program below is stopped well within a few of these


@pytest.fixture(scope="module", autouse=True, params=["every-layer", "no-namespaces"])
def layers(request):
    """Every test runs twice: with all the layers this machine offers, and without namespaces."""
    sandbox.configure(namespaces=None if request.param == "every-layer" else False)
    yield sandbox_capabilities()
    sandbox.configure(namespaces=None)


def sandbox_processes(layers) -> list[int]:
    if layers.uid_base is None:
        return []
    return [pid for uid in range(layers.uid_base, layers.uid_base + 8) for pid in _live_pids_of(uid)]


def assert_contained(result, layers):
    assert not result.passed and result.tests_passed == 0
    assert sandbox_processes(layers) == []  # nothing of it is left running


# --- what a pass is -------------------------------------------------------------------------------

def test_a_correct_program_passes_every_test():
    result = execute(ADD + "print('ready')", ADD_TESTS, timeout=FAST)
    assert result.passed and result.verdict and result.test_results == (True, True, True)
    assert result.stdout == "ready\n" and not result.timed_out and result.returncode == 0


def test_each_test_counts_on_its_own():
    wrong = "def add(a, b):\n    return a - b if a < 0 else a + b\n"
    result = execute(wrong, ADD_TESTS, timeout=FAST)
    assert not result.passed and result.test_results == (True, False, True) and result.pass_share == 2 / 3
    assert "AssertionError" in result.stderr and "<test 1>" in result.stderr


def test_a_test_that_loops_fails_alone():
    code = ADD + "def spin():\n    while True:\n        pass\n"
    result = execute(code, ["assert add(1, 1) == 2", "assert spin()", "assert add(2, 2) == 4"], timeout=2.0)
    assert result.test_results == (True, False, True) and not result.timed_out


def test_sys_exit_before_the_asserts_does_not_pass():
    result = execute(ADD + "import sys\nsys.exit(0)\n", ADD_TESTS, timeout=FAST)
    assert not result.passed and not result.program_completed and result.tests_passed == 0


def test_os_exit_before_the_tests_leaves_no_verdict():
    result = execute(ADD + "import os\nos._exit(0)\n", ADD_TESTS, timeout=FAST)
    assert result.returncode == 0 and not result.verdict and not result.passed  # exit status 0 is not a pass


def test_printing_every_possible_verdict_does_not_pass():
    forged = ("import os\nfor line in ['P 111', '1 P 111', 'ok', 'True', 'PASS']:\n    print(line, flush=True)\n"
              "    for fd in range(3, 64):\n        try:\n            os.write(fd, (line + '\\n').encode())\n"
              "        except OSError:\n            pass\nos._exit(0)\n")
    result = execute(ADD + forged, ADD_TESTS, timeout=FAST)
    assert not result.passed and not result.verdict


def test_replacing_builtins_changes_neither_how_the_tests_run_nor_what_they_mean():
    hack = ("import builtins\nreal = builtins.compile\n"
            "builtins.compile = lambda source, *args, **kwargs: real('pass', '<fake>', 'exec')\n"
            "builtins.exec = lambda *args, **kwargs: None\nbuiltins.len = lambda value: 3\n")
    result = execute(ADD + hack, ["assert add(2, 3) == 6", "assert len(str(add(2, 3))) == 3"], timeout=FAST)
    assert result.program_completed and result.test_results == (False, False)


def test_the_nonce_is_not_in_the_programs_arguments_environment_or_input(monkeypatch):
    monkeypatch.setattr(sandbox.secrets, "token_hex", lambda n: "feedface" * 4)
    spy = ("import os, sys\nprint(sys.argv, dict(os.environ), sys.stdin.read())\n"
           "print(open('/proc/self/cmdline', 'rb').read())\n")
    result = execute(spy, [], timeout=FAST)
    assert result.passed and "feedface" not in result.stdout


def test_the_environment_is_clean_and_the_interpreter_isolated():
    result = execute("import os, sys\nprint(sorted(os.environ), sys.flags.isolated, sys.flags.no_site)", timeout=FAST)
    assert result.stdout.strip() == "['HOME', 'LANG', 'PATH'] 1 1"


def test_each_execution_has_a_throwaway_working_directory():
    first = execute("open('left-behind.txt', 'w').write('x')\nimport os\nprint(os.getcwd())", timeout=FAST)
    second = execute("import os\nprint(os.listdir('.'))", timeout=FAST)
    assert first.passed and second.stdout.strip() == "[]"


# --- hostile programs: each contained, scored 0, the machine as it was -----------------------------

def test_an_infinite_loop_is_killed_at_the_timeout(layers):
    started = time.perf_counter()
    result = execute("while True:\n    pass", ["assert True"], timeout=1.0)
    assert result.timed_out and time.perf_counter() - started < 4.0
    assert_contained(result, layers)


def test_a_fork_bomb_is_held_by_the_process_limit(layers):
    if not layers.process_limit:
        pytest.skip("no per-execution process limit holds here (running as root without setuid)")
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = execute(bomb, ["assert True"], timeout=1.0)
    assert_contained(result, layers)
    assert subprocess.run(["true"]).returncode == 0  # this process can still start processes


def test_a_memory_hog_meets_the_address_space_limit(layers):
    result = execute("hog = bytearray(8 << 30)", ["assert True"], timeout=FAST, limits=SandboxLimits(memory_bytes=512 << 20))
    assert "MemoryError" in result.stderr and not result.timed_out
    assert_contained(result, layers)


def test_a_100_mb_print_is_cut_at_the_output_cap(layers):
    result = execute("import sys\nsys.stdout.write('x' * (100 << 20))", ["assert True"], timeout=5.0)
    assert result.output_limited and len(result.stdout) <= SandboxLimits().output_bytes
    assert_contained(result, layers)


def test_a_file_outside_the_working_directory_is_not_written(layers, tmp_path):
    outside = tmp_path / "open-to-all"
    outside.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(outside, 0o777)  # even a world-writable directory of the machine stays untouched
    targets = [outside / "escaped.txt", tmp_path.parent / "escaped.txt"]
    code = f"for path in {[str(t) for t in targets]!r}:\n    open(path, 'w').write('x')\n"
    result = execute(code, ["assert True"], timeout=FAST)
    assert ("PermissionError" in result.stderr or "FileNotFoundError" in result.stderr
            or "Read-only file system" in result.stderr)
    assert not any(target.exists() for target in targets)
    assert_contained(result, layers)


def test_the_parents_environment_variables_cannot_be_read(layers, monkeypatch):
    if layers.uid_base is None and not layers.pid_namespace:
        pytest.skip("the code runs as this process's user with its /proc: it could read /proc/PPID/environ")
    monkeypatch.setenv("R1LAB_TEST_SECRET", "hunter2-secret")
    spy = ("import os\nprint(dict(os.environ))\n"
           f"for pid in (os.getppid(), {os.getpid()}):\n"
           "    try:\n        print(open(f'/proc/{pid}/environ').read())\n    except OSError as error:\n"
           "        print(error)\n")
    result = execute(spy, ["import os\nassert os.environ['R1LAB_TEST_SECRET'] == 'hunter2-secret'"], timeout=FAST)
    assert "hunter2" not in result.stdout
    assert_contained(result, layers)


def test_a_listener_on_localhost_cannot_be_reached(layers):
    if not layers.network_isolated:
        pytest.skip("no network namespace here (unshare is missing or not allowed): the network is reachable")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
        result = execute(code, ["assert True"], timeout=FAST)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
    assert "OSError" in result.stderr
    assert_contained(result, layers)


def test_killing_the_parent_fails(layers):
    if layers.uid_base is None and not layers.pid_namespace:
        pytest.skip("the code runs as this process's user without a pid namespace: it could signal us")
    victim = subprocess.Popen(["sleep", "30"])
    try:
        code = (f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}, {victim.pid}, -1):\n"
                "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError as error:\n        print(error)\n")
        result = execute(code, ["assert False"], timeout=FAST)
        time.sleep(0.1)
        assert victim.poll() is None  # alive, as are we
    finally:
        victim.kill()
        victim.wait()
    assert_contained(result, layers)


@pytest.mark.parametrize("recursion", [
    "def down(n):\n    return down(n + 1)\ndown(0)\n",  # Python's recursion limit: RecursionError
    "import sys\nsys.setrecursionlimit(10**9)\nx = []\nfor _ in range(10**6):\n    x = [x]\nrepr(x)\n",  # C stack
])
def test_deep_recursion_is_contained(layers, recursion):
    result = execute(recursion, ["assert True"], timeout=FAST)
    assert_contained(result, layers)


# --- running many ---------------------------------------------------------------------------------

def test_execute_many_returns_results_in_order():
    programs = [f"import time\ntime.sleep({0.3 - 0.1 * i})\nvalue = {i}" for i in range(3)]
    results = execute_many(programs, [[f"assert value == {i}"] for i in range(3)], timeout=FAST)
    assert [r.passed for r in results] == [True] * 3
    with pytest.raises(ValueError, match="2 test lists for 3 programs"):
        execute_many(programs, [[], []])


def test_submit_does_not_block_the_caller():
    started = time.perf_counter()
    future = submit("import time\ntime.sleep(0.5)", [], timeout=FAST)
    assert isinstance(future, Future) and time.perf_counter() - started < 0.3
    assert future.result().passed


def test_the_layers_in_force_are_reported(layers):
    assert {"process-group", "rlimits", "clean-env", "timeout"} <= set(layers.layers)
    assert execute("pass", timeout=FAST).layers == layers.layers
    assert "sandbox layers:" in layers.describe()
    if os.geteuid() == 0 and layers.uid_base is not None:
        assert "unprivileged-uid" in layers.layers and "process-limit" in layers.layers


# --- the code reward ------------------------------------------------------------------------------

def test_extract_code_takes_the_answer_then_a_fence_then_the_text_after_think():
    assert extract_code("<think> plan </think> <answer>\n```python\ndef f():\n    return 1\n```\n</answer>") == \
        "def f():\n    return 1\n"
    assert extract_code("Try:\n```python\ndef f(): return 2\n```\nor\n```python\ndef f(): return 3\n```") == \
        "def f(): return 3\n"
    assert extract_code("<think> plan </think>\n    def f():\n        return 4") == "def f():\n    return 4\n"
    assert extract_code("def f(): return 5") == "def f(): return 5\n"


def test_code_reward_is_the_share_of_tests_passed():
    completions = [f"<answer>{ADD}</answer>", "<answer>def add(a, b):\n    return a * b</answer>",
                   f"<answer>{ADD}import sys\nsys.exit(0)</answer>", "<answer>def add(a, b) return</answer>",
                   "no tests for this one"]
    tests = [ADD_TESTS, ADD_TESTS, ADD_TESTS, ADD_TESTS, None]
    assert code_reward(None, completions, tests=tests, timeout=FAST) == [1.0, 1 / 3, 0.0, 0.0, None]
    assert code_reward(None, completions[:2], tests=tests[:2], partial=False, timeout=FAST) == [1.0, 0.0]


def test_code_reward_is_registered_and_runs_in_the_scorer():
    assert REWARDS["code"] is code_reward
    totals, metrics, _ = score(reward_functions(["code"]), ["q"] * 2, [f"<answer>{ADD}</answer>", "<answer>x</answer>"],
                            {"tests": [ADD_TESTS, ADD_TESTS], "entry_point": ["add", "add"]})
    assert totals == [1.0, 0.0] and metrics["reward_failures/code"] == 0
