"""How the chart shows each indicator: overlay on the price, an oscillator pane, or not at all.

One table, read by the chart, its legend, the oscillator pane and the indicator lists.
The engine's indicator registry is the place these hints belong (display hints per
indicator spec); until it declares them, this table is the only copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import InstrumentSeries


@dataclass(frozen=True, slots=True)
class Overlay:
    """A series drawn over the candles, in the colour ``slot`` (1..3) of the theme."""

    key: str  # the indicator name in the StepEvent
    label: str
    slot: int


# The overlays the default signals use: both EMAs (ema_cross) and the Bollinger bands
# (bb_breakout, bb_touch). The bands share one colour; the legend shows them as one entry.
OVERLAYS: tuple[Overlay, ...] = (
    Overlay("ema_fast", "EMA fast", 1),
    Overlay("ema_slow", "EMA slow", 2),
    Overlay("bb_upper", "BB", 3),
    Overlay("bb_middle", "BB", 3),
    Overlay("bb_lower", "BB", 3),
)


@dataclass(frozen=True, slots=True)
class Oscillator:
    """One choice of the oscillator pane.

    ``lines`` are drawn as curves (first one's value in the pane's title), ``histogram``
    as bars from zero; ``zones`` are horizontal guide levels; ``scale`` fixes the range
    (None: fit the visible values, always including the zones and zero for histograms).
    """

    name: str
    title: str
    lines: tuple[str, ...]
    labels: tuple[str, ...] = ()  # the title's name of each line's value
    histogram: str | None = None
    zones: tuple[float, ...] = ()
    scale: tuple[float, float] | None = None


OSCILLATORS: tuple[Oscillator, ...] = (
    Oscillator("rsi", "RSI 14", ("rsi",), zones=(30.0, 70.0), scale=(0.0, 100.0)),
    Oscillator(
        "macd",
        "MACD 12 26 9",
        ("macd", "macd_signal"),
        labels=("macd", "signal"),
        histogram="macd_hist",
    ),
    Oscillator(
        "stoch",
        "Stoch 14 3 3",
        ("stoch_k", "stoch_d"),
        labels=("%K", "%D"),
        zones=(20.0, 80.0),
        scale=(0.0, 100.0),
    ),
    Oscillator("adx", "ADX 14", ("adx",), zones=(25.0,), scale=(0.0, 100.0)),
)
OSCILLATOR_NAMES = tuple(o.name for o in OSCILLATORS)

# Oscillator zones for the indicator lists: (low, high), matched on the name's prefix.
ZONES: tuple[tuple[str, float, float], ...] = (
    ("rsi", 30.0, 70.0),
    ("stoch", 20.0, 80.0),
    ("mfi", 20.0, 80.0),
    ("willr", -80.0, -20.0),
    ("cci", -100.0, 100.0),
    ("bb_pct", 0.0, 1.0),
    ("bb_percent", 0.0, 1.0),
)


def oscillator(name: str) -> Oscillator:
    return next(o for o in OSCILLATORS if o.name == name)


def next_oscillator(name: str | None, delta: int = 1) -> str:
    i = OSCILLATOR_NAMES.index(name) if name in OSCILLATOR_NAMES else -delta
    return OSCILLATOR_NAMES[(i + delta) % len(OSCILLATOR_NAMES)]


def display_extras(series: InstrumentSeries) -> dict[str, np.ndarray]:
    """Indicators the oscillator pane offers that the signals do not compute (stochastic,
    ADX), over the whole series through the engine's registry. Every value at candle i
    uses candles up to i only, so the replay shows the prefix it has reached."""
    from engine.indicators import registry

    stoch = registry.compute("stoch", series)
    adx = registry.compute("adx", series)
    return {"stoch_k": stoch["k"], "stoch_d": stoch["d"], "adx": adx["adx"]}


def overlay_keys() -> Sequence[str]:
    return tuple(o.key for o in OVERLAYS)


def legend_groups(values: Mapping[str, float]) -> list[tuple[str, int, list[float]]]:
    """(label, colour slot, values) per legend entry: the bands become one 'BB' entry."""
    out: list[tuple[str, int, list[float]]] = []
    for ov in OVERLAYS:
        if ov.key not in values:
            continue
        if out and out[-1][0] == ov.label:
            out[-1][2].append(values[ov.key])
        else:
            out.append((ov.label, ov.slot, [values[ov.key]]))
    return out
