"""Pausing the cyclic garbage collector while building many small objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
