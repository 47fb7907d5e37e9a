"""Modules imported on first use: numba-compiled kernels are slow to import, and the TUI
starts without them."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType


@functools.cache
def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported on the first call (a dict lookup afterwards)."""
    return importlib.import_module(name)
