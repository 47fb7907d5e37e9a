"""Candle data: loaders, validation report, windows, resampling, merged stream, sample."""

from engine.data.errors import DataError
from engine.data.loader import from_arrays, load, load_many
from engine.data.report import DataReport, Gap, Repair
from engine.data.stream import MergedStream, Step, merge
from engine.data.window import resample, select

__all__ = [
    "DataError",
    "DataReport",
    "Gap",
    "MergedStream",
    "Repair",
    "Step",
    "from_arrays",
    "load",
    "load_many",
    "merge",
    "resample",
    "select",
]
