"""Which cells go where: tasks for a cluster, and the local pool's schedule.

Cells of one group (instrument set, window) share an analysis (indicators, signals,
batches), which costs about as much as a few cells. ``chunked`` cuts cells into tasks
that keep a group together (a cluster places them itself). ``Schedule`` places them on
a local pool one small batch at a time: a worker keeps to one group until the group has
no cells left, then takes the largest group nobody has started, so each analysis is
computed once; only when none is left does it take part of another worker's remaining
cells, and only as many as make both finish together, paying the analysis again.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.experiment.spec import Cell

CHUNK_CAP = 16  # cells per task or batch at most: bounds what a kill can lose
BATCH_SECONDS = 0.025  # the pool's batches hold about this much work (or one cell)
ANALYSIS_CELLS = 3.0  # an analysis costs about this many cells until one is measured


def groups_of(cells: Sequence[Cell]) -> OrderedDict[tuple[str, str], list[Cell]]:
    """Cells by group, groups and cells in their first order."""
    groups: OrderedDict[tuple[str, str], list[Cell]] = OrderedDict()
    for cell in cells:
        groups.setdefault(cell.group, []).append(cell)
    return groups


def chunked(cells: Sequence[Cell], workers: int, cap: int = CHUNK_CAP) -> list[list[Cell]]:
    """Cells in tasks: each task one group, so that its analysis is computed once; a group
    is split when there are too few groups to keep every worker busy, or when it is
    larger than ``cap``."""
    groups = groups_of(cells)
    if not groups:
        return []
    parts = max(1, math.ceil(2 * workers / len(groups))) if workers > 1 else 1
    out = []
    for group in groups.values():
        size = max(1, min(cap, math.ceil(len(group) / parts)))
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


@dataclass
class _Part:
    """Undispatched cells of one group that one worker runs."""

    key: tuple[str, str]
    cells: list[Cell]
    cost: float = 0.0


@dataclass
class _Worker:
    part: _Part | None = None
    queued: int = 0  # cells sent and not finished
    analysed: list[tuple[str, str]] = field(default_factory=list)  # most recent last

    def uses(self, key: tuple[str, str], keep: int) -> bool:
        """Note that the worker computes or reads this analysis; whether it had it."""
        had = key in self.analysed
        if had:
            self.analysed.remove(key)
        self.analysed.append(key)
        del self.analysed[:-keep]
        return had


class Schedule:
    """Batches of cells for numbered workers (see the module's doc).

    ``next(worker)`` gives the worker its next batch (empty: nothing left for it) and
    ``finished(worker, cells, seconds, analyses, analysis_seconds)`` reports a batch done
    with what it cost, which sizes later batches and steals. ``cost(cell)`` estimates a
    group's cells relative to each other (the window's candles): largest groups first.
    ``after``: the schedule of the same workers' previous run (a search runs several),
    whose measurements it keeps and whose analyses, still held by the workers (each
    keeps its last ``keep``), it gives back to the same workers first.
    """

    def __init__(
        self,
        cells: Sequence[Cell],
        workers: int,
        cost: Callable[[Cell], float] | None = None,
        *,
        after: Schedule | None = None,
        keep: int = 4,
    ) -> None:
        parts = [
            _Part(key, list(group), len(group) * (cost(group[0]) if cost else 1.0))
            for key, group in groups_of(cells).items()
        ]
        parts.sort(key=lambda p: -p.cost)  # stable: equal groups keep their order
        self._unstarted = parts
        self._keep = keep
        self._workers = [_Worker() for _ in range(workers)]
        self.steals = 0  # parts taken from another worker's group
        self.repeats = 0  # of which the taker computes the analysis again
        self._cell_s = 0.0  # measured seconds of cells, analyses excluded
        self._cells = 0
        self._analysis_s = 0.0
        self._analyses = 0
        if after is not None:
            for mine, theirs in zip(self._workers, after._workers, strict=False):
                mine.analysed = list(theirs.analysed)
            self._cell_s, self._cells = after._cell_s, after._cells
            self._analysis_s, self._analyses = after._analysis_s, after._analyses

    # ------------------------------------------------------------------ estimates
    def cell_seconds(self) -> float | None:
        return self._cell_s / self._cells if self._cells and self._cell_s > 0 else None

    def analysis_cells(self) -> float:
        """What an analysis costs, in cells."""
        cell = self.cell_seconds()
        if cell is None or not self._analyses:
            return ANALYSIS_CELLS
        return (self._analysis_s / self._analyses) / cell

    def batch_size(self) -> int:
        cell = self.cell_seconds()
        if cell is None:
            return 1
        return max(1, min(CHUNK_CAP, round(BATCH_SECONDS / cell)))

    # ------------------------------------------------------------------ placing
    def next(self, worker: int) -> list[Cell]:
        me = self._workers[worker]
        if me.part is None or not me.part.cells:
            me.part = self._new_part(worker)
            if me.part is None:
                return []
        size = self.batch_size()
        batch, me.part.cells = me.part.cells[:size], me.part.cells[size:]
        me.queued += len(batch)
        return batch

    def _new_part(self, worker: int) -> _Part | None:
        me = self._workers[worker]
        if self._unstarted:
            held = [p for p in self._unstarted if p.key in me.analysed]
            part = (held or self._unstarted)[0]  # the largest it holds, else the largest
            self._unstarted.remove(part)
            me.uses(part.key, self._keep)
            return part
        return self._steal(worker)

    def _steal(self, worker: int) -> _Part | None:
        """Part of the largest remaining group of another worker: k cells such that this
        worker (its queue, the analysis unless it has it, k cells) ends when the owner (its
        queue and the rest) does."""
        me = self._workers[worker]
        best: tuple[float, int, _Part] | None = None
        for i, other in enumerate(self._workers):
            part = other.part
            if i == worker or part is None or not part.cells:
                continue
            setup = 0.0 if part.key in me.analysed else self.analysis_cells()
            k = math.floor((len(part.cells) + other.queued - me.queued - setup) / 2)
            k = min(k, len(part.cells))
            if k >= 1 and (best is None or k > best[0]):
                best = (k, i, part)
        if best is None:
            return None
        k, _, victim = best
        stolen = _Part(victim.key, victim.cells[-int(k) :])
        victim.cells = victim.cells[: -int(k)]
        self.steals += 1
        if not me.uses(victim.key, self._keep):
            self.repeats += 1
        return stolen

    def finished(
        self,
        worker: int,
        cells: int,
        seconds: float,
        analyses: int = 0,
        analysis_seconds: float = 0.0,
    ) -> None:
        self._workers[worker].queued -= cells
        self._cells += cells
        self._cell_s += max(0.0, seconds - analysis_seconds)
        self._analyses += analyses
        self._analysis_s += analysis_seconds
