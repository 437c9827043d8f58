"""Ray actors for the sampling workers: start or join Ray, broadcast versioned weights, gather
shards in worker order, and redo the share of a worker that died.

Imported only when a job's backend is "ray" (it imports Ray at the top).

Faults. Every worker is an actor with `max_restarts`: when its process dies (a SIGKILL, a
lost node), Ray starts a new one from the same constructor arguments. Each shard a worker returns
carries the state it ended in, so the driver always holds the state each worker's next share
starts from; on a lost share it restores that state and the current weights into the restarted
actor and asks again. The redone share is therefore sampled with the same seed, the same
environments and the same weights, and the run's results are those of an undisturbed run.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayActorError

from r1lab.scale.worker import Shard, WorkerLostError, check_version

logger = logging.getLogger("r1lab.scale")
RESTART_SECONDS = 300  # how long a lost worker may take to come back (a model to load)
INLINE_BYTES = 100 * 1024  # Ray's max_direct_call_object_size: smaller objects travel inside the call


def connect(settings) -> float:
    """Start a local Ray, or join `settings.ray_address`; returns the seconds `ray.init` took
    (0 when this process is connected already, e.g. inside a Ray worker or a test's cluster).

    A local Ray is always started with explicit `num_cpus` and `object_store_memory`: left alone,
    Ray can misread a container's CPU limit and takes 30 % of RAM for its object store. The
    current directory joins the workers' PYTHONPATH, so that the reward functions and env
    packages a job names by module are found there as they are here."""
    if ray.is_initialized():
        return 0.0
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if settings.ray_address is None:
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
        # "local": a new instance even where `ray start` left a cluster behind (RAY_ADDRESS, /tmp/ray)
        options.update(address="local", num_cpus=settings.local_ray_cpus,
                       object_store_memory=settings.object_store_mb * 2**20,
                       runtime_env={"env_vars": {"PYTHONPATH": path}})
    else:
        options["address"] = settings.ray_address
    started = time.perf_counter()
    ray.init(**options)
    return time.perf_counter() - started


class WorkerGroup:
    """N actors of one worker class, called together; results come back in worker order.

    `broadcast(state, version)` puts the state in the object store once (or keeps it to pass by
    value when small); `sample(requests, version)` asks each worker for its share, handing the
    workers that do not hold them yet those weights, and checks that each shard was sampled
    with `version`."""

    def __init__(self, worker_class, arguments: list[tuple], settings, *, num_gpus: float = 0.0):
        actor = ray.remote(worker_class).options(num_cpus=settings.cpus_per_worker, num_gpus=num_gpus,
                                                 max_restarts=settings.max_restarts, max_task_retries=0)
        self.actors = [actor.remote(*args) for args in arguments]
        self.max_restarts = settings.max_restarts
        self.states: list[Any] = ray.get([a.state.remote() for a in self.actors])  # each worker's next start
        self.weights: tuple[Any, int] | None = None  # the latest broadcast: (reference or value, version)
        self.holds: list[int | None] = [None] * len(self.actors)  # the weights version sent to each worker
        self.inline: bool | None = None  # weights passed by value (small) or by reference; set by broadcast
        self.redone = 0  # shares redone after a worker died, over the run

    def __len__(self) -> int:
        return len(self.actors)

    def broadcast(self, state: Any, version: int) -> None:
        """Every worker takes `state` as weights `version`: put in the object store once (`ray.put`)
        and handed to every worker by reference, or, when they pickle to less than Ray's inline
        limit (an MLP policy's few KB), passed by value inside each call: a reference to a small
        object costs the worker one more round trip to the driver to fetch it, measured at 1-2 ms
        a call here. The size is measured at the first broadcast; a run's weights keep it.

        The weights travel with each worker's next `sample` call (`Worker.sample_with_weights`),
        not in a call of their own: one actor call fewer per worker and step. The version each
        shard carries back is the proof that it was sampled with them, checked in `sample`."""
        if self.inline is None:
            self.inline = len(pickle.dumps(state)) < INLINE_BYTES
        self.weights = (state if self.inline else ray.put(state), version)

    def _call(self, worker: int, method: str, request: Any):
        """Submit worker `worker`'s share; with the current weights when it does not hold them yet."""
        actor = self.actors[worker]
        if self.weights is None or self.holds[worker] == self.weights[1]:
            return getattr(actor, method).remote(request)
        self.holds[worker] = self.weights[1]
        return actor.sample_with_weights.remote(method, request, *self.weights)

    def restore(self, states: list[Any], *args: Any) -> list[Any]:
        """Put every worker back in `states` (a resumed run's checkpoint); their answers, in order."""
        answers = ray.get([a.restore.remote(s, *args) for a, s in zip(self.actors, states)])
        self.holds = [None] * len(self.actors)
        self.states = ray.get([a.state.remote() for a in self.actors])
        return answers

    def sample(self, requests: list[Any], version: int, method: str = "sample") -> list[Shard]:
        """Each worker's shard of one step (None requests skip their worker), in worker order."""
        calls = {w: self._call(w, method, r) for w, r in enumerate(requests) if r is not None}
        try:  # one fetch of all shards; only when a worker was lost, one at a time to find it
            shards = ray.get(list(calls.values()))
        except RayActorError:
            shards = []
            for worker, call in calls.items():
                try:
                    shards.append(ray.get(call))
                except RayActorError as error:
                    shards.append(self._redo(worker, requests[worker], method, error))
        for worker, shard in zip(calls, shards):
            check_version(shard, version)
            self.states[worker] = shard.state
        return shards

    def _redo(self, worker: int, request: Any, method: str, error: Exception) -> Shard:
        """The share of a worker that died: once Ray has restarted it, restore its last state and
        the current weights into it, then ask again. A worker that dies for good (its restarts
        spent) stops the run with WorkerLostError."""
        actor = self.actors[worker]
        logger.warning("sampling worker %d was lost mid-step (%s); redoing its share", worker, type(error).__name__)
        deadline = time.monotonic() + RESTART_SECONDS
        while True:
            try:
                ray.get(actor.pid.remote())  # up again: a restarting actor answers "unavailable"
                ray.get(actor.restore.remote(self.states[worker]))
                if self.weights is not None:
                    ray.get(actor.set_weights.remote(*self.weights))
                    self.holds[worker] = self.weights[1]
                shard = ray.get(getattr(actor, method).remote(request))
            except ActorDiedError as died:
                raise WorkerLostError(f"sampling worker {worker} died for good (max_restarts = {self.max_restarts}); "
                                      f"the step could not be completed ({died})") from None
            except RayActorError as again:  # still restarting, or lost again
                if time.monotonic() > deadline:
                    raise WorkerLostError(f"sampling worker {worker} did not come back within {RESTART_SECONDS} s "
                                          f"({again})") from None
                time.sleep(0.2)
                continue
            self.redone += 1
            return shard

    def pids(self) -> list[int]:
        return ray.get([a.pid.remote() for a in self.actors])

    def inject_fault(self, worker: int, where: str) -> None:
        ray.get(self.actors[worker].inject_fault.remote(where))

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
