"""Runtime helpers shared by every layer: lazy imports and pausing the garbage collector."""

from __future__ import annotations

import functools
import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType


@functools.cache
def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported on the first call (a dict lookup afterwards).

    numba-compiled kernels are slow to import, and the TUI starts without them."""
    return importlib.import_module(name)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building ~10^5 signals, batches or fills (acyclic records) triggers repeated full
    scans of an ever-growing heap: pausing the collector meanwhile halves the vectorised
    path's time on a million candles. Reference counting still frees everything; nothing
    created under it forms reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
