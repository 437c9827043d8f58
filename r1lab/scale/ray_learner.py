"""The data-parallel learner on Ray Train: a trainer function run as N TorchTrainer workers.

`run_data_parallel(trainer, config, ...)` (what `learner.data_parallel` calls in the driver when
`learner_workers > 1`) starts Ray Train's `TorchTrainer` with `learner_workers` workers, gloo on
CPUs and nccl on GPUs, and runs `trainer(config, ...)` in each. `learner.py` says what each rank
does; this module starts them, forwards the driver's stop request (Ctrl-C, SIGTERM) to rank 0,
and hands rank 0's return value (the summary) back.

A learner worker that dies fails the whole group (a collective cannot go on without it); the run
then resumes from its last checkpoint with `--resume`, like any interrupted run.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import tempfile
import threading
import time
from typing import Any

import ray

from r1lab.runs import RunInterrupted, stop_requested
from r1lab.scale.ray_workers import connect

logger = logging.getLogger("r1lab.scale")


@ray.remote(num_cpus=0)
class _Mailbox:
    """Rank 0's result for the driver, and the driver's stop request for rank 0."""

    def __init__(self):
        self.result, self.stop = None, None

    def put(self, result: Any) -> None:
        self.result = result

    def get(self) -> Any:
        return self.result

    def request_stop(self, signum: int) -> None:
        self.stop = signum

    def stop_request(self) -> int | None:
        return self.stop


def learner_uses_gpu(config) -> bool:
    if config.learner_use_gpu is not None:
        return bool(config.learner_use_gpu)
    return ray.cluster_resources().get("GPU", 0) > 0


def run_data_parallel(trainer, config, *args: Any, **kwargs: Any) -> Any:
    """`trainer(config, *args, **kwargs)` on `config.learner_workers` Ray Train workers; returns
    what rank 0's call returned (raises RunInterrupted when a signal stopped the run)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    init_seconds = connect(config)
    use_gpu = learner_uses_gpu(config)
    mailbox = _Mailbox.remote()

    def train_loop_per_worker(_: dict) -> None:
        _run_rank(trainer, config, args, kwargs, mailbox, use_gpu)

    # Ray Train's own records (r1lab keeps its checkpoints in the run dir): removed when the learner ends
    storage = tempfile.mkdtemp(prefix="r1lab-ray-train-")
    resources = {"CPU": config.learner_cpus, **({"GPU": 1} if use_gpu else {})}
    learner = TorchTrainer(
        train_loop_per_worker,
        scaling_config=ScalingConfig(num_workers=config.learner_workers, use_gpu=use_gpu,
                                     resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name="r1lab-learner", storage_path=storage),
    )
    started = time.perf_counter()
    failure: list[BaseException] = []

    def fit() -> None:
        try:
            learner.fit()
        except BaseException as error:  # handed to the driver's thread below
            failure.append(error)

    thread = threading.Thread(target=fit, name="r1lab-learner", daemon=True)
    thread.start()
    forwarded = False
    try:
        while thread.is_alive():  # the driver keeps its signal handling: a stop request goes to rank 0
            thread.join(0.2)
            if not forwarded and stop_requested() is not None:
                mailbox.request_stop.remote(stop_requested())
                forwarded = True
    finally:
        if not thread.is_alive():
            shutil.rmtree(storage, ignore_errors=True)
    if failure:
        raise RuntimeError(f"the data-parallel learner failed ({type(failure[0]).__name__}: {failure[0]}); "
                           "continue the run from its last checkpoint with --resume") from failure[0]
    result = ray.get(mailbox.get.remote())
    if isinstance(result, dict) and "interrupted" in result and len(result) == 1:
        step, signum, run_dir, job = result["interrupted"]
        raise RunInterrupted(run_dir, job, step, signum)
    if isinstance(result, dict) and "steps" in result:
        result = {**result, "learner_workers": config.learner_workers, "learner_use_gpu": use_gpu,
                  "ray_init_seconds": result.get("ray_init_seconds", init_seconds),
                  "learner_seconds": time.perf_counter() - started}
    return result


def _run_rank(trainer, config, args, kwargs, mailbox, use_gpu: bool) -> None:
    """One learner worker: join the group, run the trainer, and (rank 0) post its result."""
    import ray.train
    import ray.train.torch

    from r1lab.runs import interrupt
    from r1lab.scale.learner import DistributedLearner, enter_learner

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    enter_learner(DistributedLearner(rank, world, ray.train.torch.get_device() if use_gpu else None))
    if rank == 0:
        def forward_stop() -> None:  # the driver's Ctrl-C or SIGTERM, as if it had reached this process
            while True:
                signum = ray.get(mailbox.stop_request.remote())
                if signum is not None:
                    if not interrupt._requested:
                        interrupt._requested.append(signum)
                    return
                time.sleep(0.5)

        threading.Thread(target=forward_stop, name="r1lab-stop", daemon=True).start()
    else:  # the other ranks neither evaluate, nor print, nor save the model: rank 0 does
        accepted = inspect.signature(trainer).parameters
        kwargs = {**kwargs, **{key: value for key, value in (("evaluator", None), ("quiet", True)) if key in accepted}}
        if dataclasses.is_dataclass(config) and hasattr(config, "save_model"):
            config = dataclasses.replace(config, save_model=False)
    try:
        result = trainer(config, *args, **kwargs)
    except RunInterrupted as stop:
        result = {"interrupted": (stop.step, stop.signum, str(stop.run_dir), stop.job)}
    if rank == 0:
        ray.get(mailbox.put.remote(result))
