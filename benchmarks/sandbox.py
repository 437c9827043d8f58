"""The sandbox's cost, printed as JSON: seconds per execution and executions per second.

    python benchmarks/sandbox.py            # about 15 seconds on 2 cores

The program is trivial and passes: a two-line function and 3 asserts, so the figures are the
sandbox's own cost (process start, namespaces, limits, harness), not the code's.

- per_execution_ms: one execution at a time (`execute`), median and p95 over 200 runs, after 10
  warm-up runs; the layer probe is paid before them.
- executions_per_second: 400 programs through `execute_many` at the default parallelism (the
  `max_parallel` setting: the machine's CPU count), best of 3 passes.
- layers: the isolation layers that were in force (`sandbox_capabilities().layers`), and what
  they leave open (`notes`).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from r1lab.rewards.sandbox import execute, execute_many, sandbox_capabilities

PROGRAM = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"]


def per_execution_ms(runs: int = 200, warmup: int = 10) -> dict[str, float]:
    for _ in range(warmup):
        execute(PROGRAM, TESTS, timeout=5.0)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = execute(PROGRAM, TESTS, timeout=5.0)
        times.append((time.perf_counter() - started) * 1000)
        assert result.passed, result.stderr
    times.sort()
    return {"median": round(statistics.median(times), 1), "p95": round(times[int(0.95 * len(times)) - 1], 1)}


def executions_per_second(programs: int = 400, passes: int = 3) -> float:
    best = 0.0
    for _ in range(passes):
        started = time.perf_counter()
        results = execute_many([PROGRAM] * programs, [TESTS] * programs, timeout=5.0)
        best = max(best, programs / (time.perf_counter() - started))
        assert all(result.passed for result in results)
    return round(best, 1)


def main() -> None:
    started = time.perf_counter()
    layers = sandbox_capabilities()
    probe_seconds = time.perf_counter() - started
    report = {
        "per_execution_ms": per_execution_ms(),
        "executions_per_second": executions_per_second(),
        "max_parallel": os.cpu_count(),
        "probe_seconds": round(probe_seconds, 3),
        "interpreter": layers.interpreter,
        "layers": list(layers.layers),
        "notes": list(layers.notes),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
