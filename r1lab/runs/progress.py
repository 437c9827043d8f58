"""A rich progress bar for long work, with a free-text field for the running figures."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressBar:
    """`with ProgressBar(total, "ppo") as bar: bar.advance(n, info="return 87.5")`.

    Disabled bars (`enabled=False`, used by tests and quiet runs) cost nothing.
    """

    def __init__(self, total: int, description: str, enabled: bool = True):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            transient=False, disable=not enabled,
        )
        self._task = self._progress.add_task(description, total=total, info="")

    def advance(self, amount: int = 1, info: str | None = None) -> None:
        if self.enabled:
            self._progress.update(self._task, advance=amount, **({"info": info} if info is not None else {}))

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()
