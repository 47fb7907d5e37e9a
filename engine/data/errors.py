"""The data layer's user-facing error."""

from __future__ import annotations

from engine.errors import TapedeckError


class DataError(TapedeckError):
    """A structural problem in a data file that no repair can fix.

    The message names the file, where (line of a CSV, row of other formats), the
    column and what was expected, so a user can fix the file.
    """
