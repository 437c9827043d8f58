"""The run directory every job writes, and the one a `--resume` reads back.

    DIR/config.yaml          the resolved config (what `--resume` rebuilds the job from)
    DIR/metrics.jsonl        one JSON object per logged step: {"step": ..., "time": ..., metric: value}
    DIR/tensorboard/         TensorBoard event files with the same scalars
    DIR/checkpoints/step-N/  checkpoints, each written to a temporary folder and renamed into place
    DIR/summary.json         the job's final figures, written last
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from r1lab.runs.config import ConfigError
from r1lab.runs.interrupt import RunInterrupted, stop_requested

logger = logging.getLogger("r1lab.runs")
RUN_FILES = ("metrics.jsonl", "samples.jsonl", "summary.json", "tensorboard", "checkpoints", "plots", "report.html")


def default_run_dir(job: str) -> Path:
    """runs/JOB-DATE-TIME-XXXX: the random suffix keeps two jobs started in the same second apart."""
    return Path("runs") / f"{job}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to its destination, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=_jsonable)
        handle.write("\n")
    os.replace(tmp, path)


def read_config_file(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    data = yaml.safe_load(path.read_text())
    return data.get("config", {}) if isinstance(data, dict) else {}


class Run:
    """One training run's directory: metrics, TensorBoard scalars, checkpoints and the summary.

    `Run(dir, job, config)` starts a run. The directory may exist, but if it holds another run's
    metrics, that run must have no checkpoint (it is then started again in place, with a warning)
    unless `overwrite` clears it. `Run(dir, job, config, resume=True)` continues a run, dropping
    metric lines logged after the checkpoint it resumes from, so that the curves (and TensorBoard,
    through a purge event) have no duplicated steps, and counting its time from the first start.

    Checkpoints are due every `config.checkpoint_every` steps, every `config.checkpoint_minutes`
    minutes, at the last step, and when a stop was requested by a signal (see `interrupt.py`).
    """

    def __init__(self, directory: str | Path, job: str, config: Any, *, resume: bool = False,
                 overwrite: bool = False, tensorboard: bool = True, keep_checkpoints: int = 2):
        self.dir = Path(directory)
        self.job = job
        self.keep_checkpoints = keep_checkpoints
        self.checkpoint_every = int(getattr(config, "checkpoint_every", 0) or 0)
        self.checkpoint_seconds = 60.0 * float(getattr(config, "checkpoint_minutes", 0) or 0)
        self._tensorboard = tensorboard
        self._writer = None
        self._purge_step: int | None = None
        self._started = time.perf_counter()
        self._last_checkpoint = self._started
        self._elapsed_before = 0.0  # time of the segments before a resume
        metrics = self.dir / "metrics.jsonl"
        if not resume and metrics.exists() and metrics.stat().st_size > 0:
            self._clear_previous_run(overwrite)
        self.dir.mkdir(parents=True, exist_ok=True)
        config_dict = config if isinstance(config, dict) else _config_dict(config)
        if not resume:
            text = yaml.safe_dump({"job": job, "config": config_dict}, sort_keys=False)
            (self.dir / "config.yaml").write_text(text)
        self._metrics = open(metrics, "a")  # noqa: SIM115 (held open for the run's life)

    def _clear_previous_run(self, overwrite: bool) -> None:
        if latest_checkpoint(self.dir) is not None and not overwrite:
            raise ConfigError(f"{self.dir} already holds a run with checkpoints; continue it with --resume {self.dir}, "
                              "start it again with --overwrite, or choose a new --run-dir")
        if not overwrite:
            logger.warning("%s holds the metrics of a run that never checkpointed: starting it again in place", self.dir)
        for name in RUN_FILES:
            path = self.dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    # ---- metrics -------------------------------------------------------------------------
    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl and the numeric values to TensorBoard."""
        record = {"step": step, "time": round(time.perf_counter() - self._started, 4)}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        writer = self._tb()
        if writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    writer.add_scalar(key, value, step)

    def append_jsonl(self, name: str, record: dict[str, Any]) -> None:
        """Append a record to another JSONL table in the run dir (sample completions, evaluations)."""
        with open(self.dir / name, "a") as handle:
            handle.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.dir / "summary.json"
        write_json_atomic(path, summary)
        return path

    @property
    def elapsed(self) -> float:
        """Seconds since the run first started, across resumes."""
        return self._elapsed_before + time.perf_counter() - self._started

    # ---- when to checkpoint, and stopping on a signal ---------------------------------------
    def checkpoint_due(self, step: int, last: bool = False) -> bool:
        """True at the last step, every `checkpoint_every` steps, once `checkpoint_minutes` have
        passed since the last checkpoint, and when a signal asked the run to stop."""
        return (last or stop_requested() is not None
                or (self.checkpoint_every > 0 and step % self.checkpoint_every == 0)
                or (self.checkpoint_seconds > 0 and time.perf_counter() - self._last_checkpoint >= self.checkpoint_seconds))

    def stop_if_requested(self, step: int) -> None:
        """After the checkpoint of `step`: raise RunInterrupted if a signal asked the run to stop."""
        signum = stop_requested()
        if signum is not None:
            self.close()
            raise RunInterrupted(self.dir, self.job, step, signum)

    # ---- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path:
        """Save `state` (anything `torch.save` takes) as checkpoints/step-N, atomically.

        The state is written into a temporary folder beside the destination, then renamed
        into place; a crash leaves only the temporary folder, and the previous checkpoint whole.
        """
        root = self.dir / "checkpoints"
        root.mkdir(exist_ok=True)
        final = root / f"step-{step:09d}"
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, "job": self.job, "elapsed": self.elapsed}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in sorted(root.glob("step-*"))[: -self.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        self._last_checkpoint = time.perf_counter()
        return final

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.dir)

    def load_checkpoint(self, path: Path | None = None) -> dict[str, Any]:
        """Load the newest checkpoint (or `path`) and trim metrics logged after it."""
        path = path or self.latest_checkpoint()
        if path is None:
            raise ConfigError(f"{self.dir}: no checkpoint to resume from")
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        meta = json.loads((path / "meta.json").read_text())
        step = meta["step"]
        self._truncate_metrics(after_step=step)
        self._elapsed_before = meta.get("elapsed", 0.0)
        self._started = self._last_checkpoint = time.perf_counter()
        self._purge_step = step + 1  # TensorBoard drops the events the interrupted run logged after it
        return state

    def _truncate_metrics(self, after_step: int) -> None:
        self._metrics.close()
        path = self.dir / "metrics.jsonl"
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= after_step]
        path.write_text("".join(line + "\n" for line in kept))
        self._metrics = open(path, "a")  # noqa: SIM115

    # ---- lifetime ------------------------------------------------------------------------
    def _tb(self):
        if not self._tensorboard:
            return None
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # slow import, paid only when logging

            self._writer = SummaryWriter(log_dir=str(self.dir / "tensorboard"), purge_step=self._purge_step)
        return self._writer

    def close(self) -> None:
        self._metrics.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no metrics.jsonl (is it a run directory?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config_dict(config: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()  # numpy scalars
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    return value


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoints/step-N folder of a run (names are zero-padded, so they sort), or None."""
    found = sorted((Path(run_dir) / "checkpoints").glob("step-*"))
    return found[-1] if found else None
