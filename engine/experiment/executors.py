"""Where cells run: this process, a local process pool (default), or a Dask cluster.

Every executor takes chunks of cells (one chunk shares an instrument set and window,
so its analysis is computed once) and yields each chunk's rows as it finishes. The
payload (the candles) goes to each worker once: as the pool's initializer argument,
or scattered to every Dask worker (``broadcast=True``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from engine.errors import TapedeckError
from engine.experiment.cells import (
    Payload,
    init_worker,
    run_cells,
    run_cells_in_worker,
    warm_up,
)
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
    """Runs every chunk in this process (one worker: no pickling, no start-up)."""

    workers = 1

    def __init__(self, payload: Payload) -> None:
        self.payload = payload

    def run(self, chunks: Sequence[Sequence[Cell]]) -> Iterator[Rows]:
        for chunk in chunks:
            yield run_cells(self.payload, chunk)

    def close(self, abort: bool = False) -> None:
        pass


class PoolExecutor:
    """A local process pool; each process receives the payload once, at start."""

    def __init__(self, payload: Payload, workers: int) -> None:
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        if "fork" in methods:
            warm_up(payload)
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=init_worker, initargs=(payload,)
        )

    def run(self, chunks: Sequence[Sequence[Cell]]) -> Iterator[Rows]:
        # (an interruption leaves the pending futures to close(abort=True): cancelling
        # them here as well makes the pool's manager thread fail on them)
        pending = {self._pool.submit(run_cells_in_worker, list(chunk)) for chunk in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()

    def close(self, abort: bool = False) -> None:
        """Wait for the pool to end; ``abort`` (an interruption or an error): end the
        workers at once, since their unfinished cells are not recorded anyway."""
        if abort:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False)
        else:
            self._pool.shutdown(wait=True)


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

    def run(self, chunks: Sequence[Sequence[Cell]]) -> Iterator[Rows]:
        from distributed import as_completed

        futures = [
            self._client.submit(run_cells, self._payload, list(chunk), pure=False)
            for chunk in chunks
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
