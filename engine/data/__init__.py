"""Candle data: loaders, validation report, windows, resampling, merged stream, sample."""

from engine.data.errors import DataError
from engine.data.loader import load, load_many
from engine.data.report import DataReport, Gap, Repair
from engine.data.window import resample, select

__all__ = ["DataError", "DataReport", "Gap", "Repair", "load", "load_many", "resample", "select"]
