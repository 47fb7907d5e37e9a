"""Running an experiment: cells to an executor, rows to the store.

``ExperimentRunner.run_configs`` runs every cell of the given configurations that the
results folder does not hold yet and returns all their rows; grid and random search
call it once, Optuna once per batch of trials (``engine.experiment.search``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.experiment.cells import Payload, load_sets, span_of
from engine.experiment.executors import make_executor
from engine.experiment.spec import Cell, Config, Experiment
from engine.experiment.store import ResultStore
from engine.runtime import StderrBar


class CellProgress(StderrBar):
    """Cells done of total with the rate and ETA on stderr; silent when not wanted."""

    def __init__(self, mode: str, total: int) -> None:
        super().__init__(mode)
        self.total = total
        self._task: Any = None

    def columns(self) -> tuple[Any, ...]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return (
            TextColumn("cells"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )

    def __enter__(self) -> CellProgress:
        super().__enter__()
        if self.bar is not None:
            self._task = self.bar.add_task("cells", total=self.total, rate="")
        return self

    def advance(self, n: int, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self._task, advance=n, rate=f"{rate:.2f} cells/s")

    def grow(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self._task, total=total)


class ExperimentRunner:
    """One experiment's data, executor and results folder (use as a context manager)."""

    def __init__(
        self,
        experiment: Experiment,
        out: str | Path,
        *,
        workers: int | None = None,
        cluster: str | None = None,
        progress: str = "auto",
    ) -> None:
        self.experiment = experiment
        sets = load_sets(experiment.instrument_sets, experiment.timeframe)
        self.spans = {name: span_of(series) for name, series in sets.items()}
        self.payload = Payload(
            sets=sets,
            files=experiment.instrument_sets,
            backtest=dict(experiment.backtest),
            brain_options=experiment.brain_options,
        )
        self.all_cells = experiment.cells(self.spans)
        meta = {
            "name": experiment.name,
            "source": str(Path(experiment.source).resolve()) if experiment.source else "",
            "search": experiment.search.method,
            "objective": experiment.search.objective,
            "cells_in_grid": len(self.all_cells),
            # what a cell's replay needs besides its row (engine.experiment.replay)
            "backtest": dict(experiment.backtest),
            "brain_options": {k: dict(v) for k, v in experiment.brain_options.items()},
            "timeframe": experiment.timeframe,
        }
        self.store = ResultStore(out, [c.id for c in self.all_cells], meta)
        self._executor_args = (workers, cluster)
        self._executor: Any = None
        self.progress = CellProgress(progress, 0)
        self.ran = 0  # cells run by this process (not resumed)
        self.seconds = 0.0

    def __enter__(self) -> ExperimentRunner:
        self._executor = make_executor(self.payload, *self._executor_args)
        self.progress.__enter__()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.progress.__exit__(exc_type, *exc)
        if self._executor is not None:
            self._executor.close(abort=exc_type is not None)
        self.store.flush(only_if_pending=True)  # an interrupted run keeps its finished cells

    @property
    def workers(self) -> int:
        return int(self._executor.workers) if self._executor is not None else 1

    def cells_of(self, configs: Sequence[Config]) -> list[Cell]:
        return self.experiment.cells(self.spans, configs)

    def run_configs(self, configs: Sequence[Config]) -> list[dict[str, Any]]:
        """Run what is missing of these configurations' cells; all their rows."""
        cells = self.cells_of(configs)
        done = self.store.done()
        todo = [c for c in cells if c.id not in done]
        self.progress.grow(self.progress.total + len(cells))
        self.progress.advance(len(cells) - len(todo), 0.0)
        started = time.perf_counter()
        ran = 0
        for rows in self._executor.run(todo):
            self.store.add(rows)
            ran += len(rows)
            elapsed = time.perf_counter() - started
            self.progress.advance(len(rows), ran / elapsed if elapsed > 0 else 0.0)
        self.store.flush(only_if_pending=True)
        self.ran += ran
        self.seconds += time.perf_counter() - started
        ids = {c.id for c in cells}
        return [row for cell_id, row in self.store.rows.items() if cell_id in ids]
