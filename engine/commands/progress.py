"""The progress bar of long headless runs: rich, on stderr, one task per persona."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

PROGRESS_MIN_STEPS = 20_000  # "auto" shows a progress bar from this many steps on


class Progress:
    """A rich progress bar on stderr, one task per persona; silent when not wanted."""

    def __init__(self, mode: str, total_steps: int) -> None:
        self.enabled = mode == "always" or (
            mode == "auto" and total_steps >= PROGRESS_MIN_STEPS and sys.stderr.isatty()
        )
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, label: str, total: int) -> Callable[[int, int], None] | None:
        if self._progress is None:
            return None
        task = self._progress.add_task(label, total=total)

        def update(done: int, n: int) -> None:
            self._progress.update(task, completed=done, total=n)

        return update
