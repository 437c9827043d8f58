"""The data-parallel learner: where this process stands among the learner's workers.

By default a job's learner is this one process (`SingleLearner`, whose every method returns at
once: the local path adds a function call and nothing else). With `learner_workers = N > 1` the
trainer function decorated with `data_parallel` runs in N Ray Train workers instead
(`ray_learner.py`), and on each of them `current_learner()` is a `DistributedLearner`:

    every rank    builds the same model and optimiser from the same seed and reads the same data
    rank 0        samples (its results are broadcast to the others), evaluates, writes the run
                  directory and its checkpoints; `learner_run` gives the other ranks a `Run` that
                  writes nothing and loads rank 0's checkpoint on `--resume`
    each step     every rank computes the gradient of its share of each micro-batch, and
                  `all_reduce_gradients` sums the shares; every rank then clips and steps on the
                  same full-batch gradient, so the copies never drift apart

Why a sum of shares and not DDP's mean: r1lab's losses are already sums over micro-batches,
weighted so that the sum is the full batch's loss (SFT: token sums / the step's token count;
GRPO's grpo and dr_grpo: a micro-batch's row mean x its rows / the batch's rows; dapo: token sums
/ the batch's token count). Splitting a micro-batch's rows across ranks keeps those weights, so
the summed shares are exactly the single-process gradient (up to the order of float additions).
BNPO's loss is a token mean per micro-batch by definition, so its micro-batches go whole to a rank.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any


class SingleLearner:
    """The learner is this process: rank 0 of 1."""

    rank = 0
    world_size = 1
    distributed = False

    def shard(self, rows):
        """This rank's contiguous share of `rows` (a list or a 1-D tensor): all of them here."""
        return rows

    def shard_micro_batches(self, micro_batches: list, whole: bool = False) -> list:
        """This rank's share of each micro-batch's rows (`whole`: whole micro-batches, dealt in turn)."""
        return micro_batches

    def all_reduce_gradients(self, parameters) -> None:
        """Sum the gradients of `parameters` over the ranks."""

    def all_reduce_sums(self, sums: dict[str, float], skip: tuple[str, ...] = ()) -> dict[str, float]:
        """Sum each value over the ranks (the keys in `skip` are the same on every rank already)."""
        return sums

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        return value


class DistributedLearner(SingleLearner):
    """Rank `rank` of `world_size` learner processes joined by torch.distributed (gloo or nccl)."""

    distributed = True

    def __init__(self, rank: int, world_size: int, device=None):
        self.rank, self.world_size, self.device = rank, world_size, device

    def shard(self, rows):
        start, end = len(rows) * self.rank // self.world_size, len(rows) * (self.rank + 1) // self.world_size
        return rows[start:end]

    def shard_micro_batches(self, micro_batches: list, whole: bool = False) -> list:
        if whole:
            return micro_batches[self.rank :: self.world_size]
        return [share for share in (self.shard(rows) for rows in micro_batches) if len(share)]

    def all_reduce_gradients(self, parameters) -> None:
        import torch
        import torch.distributed as dist

        trained = [p for p in parameters if p.requires_grad]
        for p in trained:
            if p.grad is None:  # a rank with no rows this step still takes part in the sum
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in trained])  # one collective, not one per tensor
        dist.all_reduce(flat)
        offset = 0
        for p in trained:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()

    def all_reduce_sums(self, sums: dict[str, float], skip: tuple[str, ...] = ()) -> dict[str, float]:
        import torch
        import torch.distributed as dist

        keys = [key for key in sums if key not in skip]
        values = torch.tensor([float(sums[key]) for key in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return {**sums, **dict(zip(keys, values.tolist()))}

    def broadcast(self, value: Any) -> Any:
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


_learner: SingleLearner = SingleLearner()


def current_learner() -> SingleLearner:
    """This process's place in the learner (a `SingleLearner` unless inside a data-parallel one)."""
    return _learner


def enter_learner(learner: SingleLearner) -> None:
    global _learner
    _learner = learner


def data_parallel(trainer):
    """Run `trainer(config, ...)` as a data-parallel learner when `config.learner_workers > 1`.

    The decorated trainer, called in the driver, hands itself with its arguments to Ray Train's
    TorchTrainer (`ray_learner.run_data_parallel`); inside a learner worker it runs as written."""

    @functools.wraps(trainer)
    def dispatch(config, *args, **kwargs):
        if getattr(config, "learner_workers", 1) > 1 and not _learner.distributed:
            from r1lab.scale.ray_learner import run_data_parallel

            return run_data_parallel(dispatch, config, *args, **kwargs)
        return trainer(config, *args, **kwargs)

    return dispatch


def learner_run(directory, job: str, config, **options):
    """The run directory of this rank: `Run(...)` itself on a single learner; inside a
    data-parallel one, rank 0's Run and, on the other ranks, one that writes nothing. On every
    rank `stop_if_requested` then follows rank 0, so that all of them stop at the same step."""
    from r1lab.runs import Run

    if not _learner.distributed:
        return Run(directory, job, config, **options)
    if _learner.rank == 0:
        run = _leader_run_class()(directory, job, config, **options)
        run.learner = _learner
        return run
    return FollowerRun(_learner, directory, job)


def _stop_together(run, step: int) -> None:
    """Every rank asks rank 0 whether a signal asked the run to stop, and all raise together."""
    from r1lab.runs import RunInterrupted, stop_requested

    signum = run.learner.broadcast(stop_requested())
    if signum is not None:
        run.close()
        raise RunInterrupted(run.shared_dir, run.job, step, signum)


@functools.cache
def _leader_run_class():
    from r1lab.runs import Run

    class LeaderRun(Run):
        """Rank 0's run: a `Run` whose stop decision the other ranks follow."""

        learner: SingleLearner

        @property
        def shared_dir(self) -> Path:
            return self.dir

        def stop_if_requested(self, step: int) -> None:
            _stop_together(self, step)

    return LeaderRun


class FollowerRun:
    """The run of a rank other than 0: metrics, samples, summaries and checkpoints go nowhere (rank
    0 writes them); `load_checkpoint` reads rank 0's newest checkpoint, so a multi-machine learner
    needs the run directory on a filesystem that every learner machine sees."""

    def __init__(self, learner: SingleLearner, directory, job: str):
        self.learner, self.shared_dir, self.job = learner, Path(directory), job
        self.dir = Path(tempfile.mkdtemp(prefix=f"r1lab-rank{learner.rank}-"))  # scratch, removed at close
        self.elapsed = 0.0

    def log(self, step: int, metrics: dict) -> None:
        pass

    def append_jsonl(self, name: str, record: dict) -> None:
        pass

    def write_summary(self, summary: dict) -> Path:
        return self.dir / "summary.json"

    def checkpoint_due(self, step: int, last: bool = False) -> bool:
        return False

    def save_checkpoint(self, step: int, state: dict) -> Path:
        return self.dir

    def latest_checkpoint(self):
        from r1lab.runs.run_dir import latest_checkpoint

        return latest_checkpoint(self.shared_dir)

    def load_checkpoint(self, path: Path | None = None) -> dict:
        import torch

        from r1lab.runs import ConfigError

        path = path or self.latest_checkpoint()
        if path is None:
            raise ConfigError(f"{self.shared_dir}: no checkpoint to resume from (learner rank {self.learner.rank})")
        return torch.load(path / "state.pt", map_location="cpu", weights_only=False)

    def stop_if_requested(self, step: int) -> None:
        _stop_together(self, step)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
