"""Where cells run: this process, a local process pool (default), or a Dask cluster.

Every executor takes cells and yields the rows of each batch of them as it finishes,
keeping the cells that share an analysis (one instrument set and window) together
(``engine.experiment.schedule``). The payload (the candles) goes to each worker once:
inherited by the pool's forked processes (pickled to them once where there is no
fork), or scattered to every Dask worker (``broadcast=True``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from engine.errors import TapedeckError
from engine.experiment.cells import (
    ANALYSES_KEPT,
    Payload,
    pool_worker,
    run_cells,
    warm_up,
    window_candles,
)
from engine.experiment.schedule import Schedule, chunked
from engine.experiment.spec import Cell

Rows = list[dict[str, Any]]


class ClusterError(TapedeckError):
    """A cluster that cannot be reached or used."""


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


class InlineExecutor:
    """Runs the cells in this process, a group at a time (no pickling, no start-up)."""

    workers = 1

    def __init__(self, payload: Payload) -> None:
        self.payload = payload

    def run(self, cells: Sequence[Cell]) -> Iterator[Rows]:
        for chunk in chunked(cells, 1):
            yield run_cells(self.payload, chunk)

    def close(self, abort: bool = False) -> None:
        pass


class PoolError(TapedeckError):
    """A local worker process that failed or ended unexpectedly."""


class PoolExecutor:
    """A local process pool placed by a ``Schedule``: each worker receives the payload
    once, at start (inherited when forked), then small batches of cells over its own
    pipe, two at a time so that it never waits for the parent between batches."""

    DEPTH = 2  # batches sent to a worker and not answered yet

    def __init__(self, payload: Payload, workers: int) -> None:
        self.workers = workers
        self.payload = payload
        self.steals = 0  # parts of a group taken by another worker (see Schedule)
        self.analyses = 0  # analyses the workers computed
        self._last: Schedule | None = None  # the previous run's (the workers' analyses)
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        if "fork" in methods:
            warm_up(payload)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        # The workers' collections leave what they inherit alone (no copy-on-write of
        # the parent's pages, nothing to scan twice); the parent takes its objects back.
        gc.freeze()
        try:
            for _ in range(workers):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=pool_worker, args=(theirs, payload), daemon=True)
                proc.start()
                theirs.close()  # so that a worker's death reads as the end of its pipe
                self._conns.append(mine)
                self._procs.append(proc)
        finally:
            gc.unfreeze()

    def run(self, cells: Sequence[Cell]) -> Iterator[Rows]:
        candles = window_candles(self.payload)
        schedule = Schedule(
            cells,
            self.workers,
            cost=lambda c: candles(c.instruments, c.window),
            after=self._last,
            keep=ANALYSES_KEPT,
        )
        self._last = schedule
        queued: list[deque[int]] = [deque() for _ in range(self.workers)]

        def feed(worker: int) -> None:
            while len(queued[worker]) < self.DEPTH:
                batch = schedule.next(worker)
                if not batch:
                    return
                self._conns[worker].send(batch)
                queued[worker].append(len(batch))

        for worker in range(self.workers):
            feed(worker)
        try:
            while any(queued):
                busy = {self._conns[w]: w for w in range(self.workers) if queued[w]}
                for conn in wait(list(busy)):
                    worker = busy[conn]  # type: ignore[index]
                    rows, seconds, made, analysis_s = self._receive(worker)
                    schedule.finished(worker, queued[worker].popleft(), seconds, made, analysis_s)
                    self.analyses += made
                    feed(worker)  # before the parent's own work on the rows
                    yield rows
        finally:
            self.steals += schedule.steals

    def _receive(self, worker: int) -> tuple[Rows, float, int, float]:
        try:
            message = self._conns[worker].recv()
        except (EOFError, OSError):
            proc = self._procs[worker]
            proc.join(1.0)
            raise PoolError(
                f"worker process {proc.pid} ended unexpectedly (exit code {proc.exitcode})"
            ) from None
        if message[0] == "error":
            raise PoolError(f"worker process {self._procs[worker].pid} failed: {message[1]}")
        return message[1], message[2], message[3], message[4]

    def close(self, abort: bool = False) -> None:
        """Let the workers end; ``abort`` (an interruption or an error): end them at once,
        since their unfinished cells are not recorded anyway."""
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if abort:
                proc.terminate()
            else:
                try:
                    conn.send(None)
                except OSError:  # already gone
                    proc.terminate()
        for conn, proc in zip(self._conns, self._procs, strict=True):
            proc.join(5.0)
            if proc.is_alive():  # pragma: no cover (a worker stuck in a cell)
                proc.kill()
                proc.join()
            conn.close()


class DaskExecutor:
    """An existing Dask distributed scheduler; the payload is scattered to every worker."""

    def __init__(self, payload: Payload, address: str, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ClusterError(
                "--cluster needs Dask distributed: pip install 'distributed>=2024.1'"
            ) from None
        try:
            self._client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        info = self._client.scheduler_info()
        self.workers = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        if self.workers == 0:
            self._client.close()
            raise ClusterError(f"the Dask scheduler at {address} has no workers")
        self._payload = self._client.scatter(payload, broadcast=True, hash=False)

    def run(self, cells: Sequence[Cell]) -> Iterator[Rows]:
        from distributed import as_completed

        futures = [
            self._client.submit(run_cells, self._payload, chunk, pure=False)
            for chunk in chunked(cells, self.workers)
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()

    def close(self, abort: bool = False) -> None:
        self._client.close()


def make_executor(payload: Payload, workers: int | None, cluster: str | None) -> Any:
    if cluster:
        return DaskExecutor(payload, cluster)
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        return InlineExecutor(payload)
    return PoolExecutor(payload, workers)
