"""The signals layer: detectors turn indicator values into Signals (with the evidence
that fired them), and the aggregator batches them by time window across instruments.

- ``detect_series(series, config) -> SeriesSignals`` (vectorised) and
  ``SignalDetector(instrument, config).update(candle)`` (step by step) give the same
  signals; the firing rules are documented in ``engine.signals.strategies``.
- ``SignalAggregator`` (step by step) and ``batch_signals`` (vectorised) give the same
  batches; windows, merging and conflicts are documented in ``engine.signals.aggregator``.
- ``detect_stream`` / ``StreamDetector`` run both over a merged stream.
"""

from engine.signals.aggregator import SignalAggregator, batch_signals, return_correlation
from engine.signals.config import (
    DETECTOR_NAMES,
    AtrExpansionConfig,
    BollingerConfig,
    EmaConfig,
    MacdConfig,
    RsiConfig,
    SignalConfig,
    SignalConfigError,
    VolumeSpikeConfig,
    default_signal_config,
    parse_detectors,
)
from engine.signals.detector import SeriesSignals, SignalDetector, detect_series
from engine.signals.pipeline import StreamDetector, detect_stream
from engine.signals.strategies import KINDS, SIGNAL_KINDS

__all__ = [
    "DETECTOR_NAMES",
    "KINDS",
    "SIGNAL_KINDS",
    "AtrExpansionConfig",
    "BollingerConfig",
    "EmaConfig",
    "MacdConfig",
    "RsiConfig",
    "SeriesSignals",
    "SignalAggregator",
    "SignalConfig",
    "SignalConfigError",
    "SignalDetector",
    "StreamDetector",
    "VolumeSpikeConfig",
    "batch_signals",
    "default_signal_config",
    "detect_series",
    "detect_stream",
    "parse_detectors",
    "return_correlation",
]
