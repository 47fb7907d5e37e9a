"""Runtime helpers shared by every layer: lazy imports, pausing the garbage collector,
handing freed memory back."""

from __future__ import annotations

import functools
import gc
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any


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
    created under it forms reference cycles.

    On leaving, what was made meanwhile moves to the oldest generation unscanned
    (``freeze`` then ``unfreeze``): else the first allocation after re-enabling scans the
    ~10^5 new records as young objects, and again as they age (0.1 s after a scalper's
    million-candle replay). A full collection still scans them, as any old object."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def program_main(main: Callable[[Sequence[str] | None], int]) -> Callable[..., int]:
    """``main(argv)`` as a program's entry point: called without ``argv`` (the process's
    own arguments, the process exits next) it ends with ``skip_final_collection``;
    called from Python with arguments (tests), it is ``main`` itself."""

    @functools.wraps(main)
    def entry(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        finally:
            if argv is None:
                skip_final_collection()

    return entry


def skip_final_collection() -> None:
    """Called when a command has done its work and only the interpreter's exit is left:
    the exit's garbage collections walk every object still alive, and numba's typing
    and lowering registries make that 0.25-0.35 s (a third of a second on every
    command that computed an indicator). Frozen objects are left out of every
    collection; the operating system takes the memory back. Files and the decision
    cache are closed by then; atexit handlers and weakref finalizers still run."""
    gc.freeze()


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). What the analysis freed in medium-sized blocks stays in the heap
    otherwise, where Python's own object arenas cannot reuse it (10M candles: ~0.1 GB)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes  # here: ctypes.util imports subprocess (~10 ms at every start)
            import ctypes.util

            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


class StderrBar:
    """A rich progress display on stderr, shown for ``mode`` "always", or "auto" on a
    terminal; the base of every long command's progress bar (subclasses pick columns)."""

    transient = False  # True: the bar disappears when done

    def __init__(self, mode: str, *, auto: bool = True) -> None:
        self.enabled = mode == "always" or (mode == "auto" and auto and sys.stderr.isatty())
        self.bar: Any = None  # the rich Progress while shown

    def columns(self) -> tuple[Any, ...]:
        """Description, bar, done of total, time remaining."""
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        return (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )

    def __enter__(self) -> Any:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(
                *self.columns(), console=Console(stderr=True), transient=self.transient
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
