"""The progress bar of long headless runs: rich, on stderr, one task per persona."""

from __future__ import annotations

from collections.abc import Callable

from engine.runtime import StderrBar

PROGRESS_MIN_STEPS = 20_000  # "auto" shows a progress bar from this many steps on


class Progress(StderrBar):
    """A rich progress bar on stderr, one task per persona; silent when not wanted."""

    transient = True

    def __init__(self, mode: str, total_steps: int) -> None:
        super().__init__(mode, auto=total_steps >= PROGRESS_MIN_STEPS)

    def callback(self, label: str, total: int) -> Callable[[int, int], None] | None:
        if self.bar is None:
            return None
        task = self.bar.add_task(label, total=total)

        def update(done: int, n: int) -> None:
            self.bar.update(task, completed=done, total=n)

        return update
