"""Timing shared by the benchmarks: the median wall-clock time of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], repeats: int, *, warmup: bool = False) -> tuple[float, T]:
    """(median seconds of ``repeats`` calls of ``fn``, the last call's result).

    ``warmup`` makes one untimed call first (imports, page cache, compiled kernels)."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out  # type: ignore[return-value]


def median_seconds(fn: Callable[[], object], repeats: int, *, warmup: bool = False) -> float:
    """The median seconds of ``repeats`` calls of ``fn`` (see ``timed``)."""
    return timed(fn, repeats, warmup=warmup)[0]
