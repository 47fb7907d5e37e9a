"""Detectors and aggregator together over a merged stream: at once or step by step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from engine.signals.aggregator import SignalAggregator, batch_signals
from engine.signals.config import SignalConfig, default_signal_config
from engine.signals.detector import SeriesSignals, SignalDetector, detect_series
from engine.types import InstrumentContext, Signal, SignalBatch


def detect_stream(
    stream: Any, config: SignalConfig | None = None
) -> tuple[dict[str, SeriesSignals], Sequence[SignalBatch]]:
    """Vectorised: every instrument's signals and indicators, and the batches."""
    config = config or default_signal_config()
    per_instrument = {
        name: detect_series(stream.series[name], config) for name in stream.instruments
    }
    return per_instrument, batch_signals(stream, per_instrument, config)


class StreamDetector:
    """Step by step: one :class:`SignalDetector` per instrument and one aggregator.

    Feed it the merged stream's steps in order (``on_step``), then ``finish()``.
    """

    def __init__(self, instruments: Iterable[str], config: SignalConfig | None = None) -> None:
        self.config = config or default_signal_config()
        names = tuple(instruments)
        self.detectors = {n: SignalDetector(n, self.config) for n in names}
        self.aggregator = SignalAggregator.from_config(self.config, names)

    def on_step(self, step: Any) -> tuple[tuple[Signal, ...], SignalBatch | None]:
        """``step`` is an ``engine.data.stream.Step`` (index, time, candles)."""
        signals: list[Signal] = []
        contexts: dict[str, InstrumentContext] = {}
        for candle in step.candles:
            detector = self.detectors[candle.instrument]
            signals.extend(detector.update(candle))
            ctx = detector.context()
            if ctx is not None:
                contexts[candle.instrument] = ctx
        batch = self.aggregator.add(step.index, step.time, signals, contexts)
        return tuple(signals), batch

    def finish(self) -> SignalBatch | None:
        return self.aggregator.flush()

    def values(self) -> dict[str, dict[str, float]]:
        """Latest indicator values per instrument."""
        return {n: d.values for n, d in self.detectors.items()}
