"""What the chart draws, read from the indicators' declared display hints.

The engine declares how each indicator output is shown (``engine.indicators.registry``:
overlay or oscillator, zones, fixed scale, centre line, decimals) and which value keys
the configured detectors produce (``engine.signals.registry.value_hints``). This module
turns that into the chart's overlays (with legend labels and colours), the oscillator
pane's choices, and a hint per value key for the indicator lists; nothing here guesses
from names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from engine.indicators import registry
from engine.indicators.registry import OSCILLATOR, OVERLAY, DisplayHint
from engine.types import InstrumentSeries

# Oscillators the pane offers beyond the ones the signals compute (the four:
# RSI, MACD, stochastic, ADX); they are computed for display with their default params.
EXTRA_OSCILLATORS = ("stoch", "adx")
# The registry says where an output goes, not how: these outputs are drawn as bars.
HISTOGRAM_OUTPUTS = {("macd", "hist")}
# Short legend names (the registry's titles are sentences).
SHORT_NAMES = {"bbands": "BB", "stoch": "Stoch"}
N_COLOURS = 3  # the theme's chart-ma-1..3


@dataclass(frozen=True, slots=True)
class Overlay:
    """A series drawn over the candles, in the colour ``slot`` (1..3) of the theme;
    overlays of one indicator (the bands) share a label, a colour and a legend entry."""

    key: str  # the value key in the StepEvent
    label: str
    slot: int


@dataclass(frozen=True, slots=True)
class Oscillator:
    """One choice of the oscillator pane.

    ``lines`` are drawn as curves (their values in the pane's title, named by
    ``labels``), ``histogram`` as bars from zero; ``zones`` are horizontal guide levels;
    ``scale`` fixes the range (None: fit the visible values, the zones and zero).
    """

    name: str
    title: str
    lines: tuple[str, ...]
    labels: tuple[str, ...] = ()
    histogram: str | None = None
    zones: tuple[float, ...] = ()
    scale: tuple[float, float] | None = None


@dataclass(frozen=True)
class ChartHints:
    overlays: tuple[Overlay, ...]
    oscillators: tuple[Oscillator, ...]
    values: Mapping[str, DisplayHint]  # every value key's hint (signals' and extras')
    # the hints of signal evidence keys that are no value key (a previous RSI, a level)
    evidence: Mapping[str, DisplayHint] = field(default_factory=dict)

    def oscillator(self, name: str) -> Oscillator:
        return next(o for o in self.oscillators if o.name == name)

    def next_oscillator(self, name: str | None, delta: int = 1) -> str:
        names = [o.name for o in self.oscillators]
        i = names.index(name) if name in names else -delta
        return names[(i + delta) % len(names)]


def _title(name: str, params: Mapping[str, object]) -> str:
    short = SHORT_NAMES.get(name, name.upper())
    values = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in params.values())
    return f"{short} {values}".strip()


def _guides(hint: DisplayHint) -> tuple[float, ...]:
    return tuple(v for v in (hint.low, hint.high) if v is not None)


def _oscillator(
    name: str,
    params: Mapping[str, object],
    keys: Sequence[tuple[str, str]],
    values: Mapping[str, DisplayHint],
) -> Oscillator | None:
    """From (output, value key) pairs of one indicator use; None if it is no oscillator.
    A key's hint in ``values`` (the detectors' own levels) wins over the registry's."""
    hints = [values.get(key) or registry.display_hint(name, out) for out, key in keys]
    if not hints or any(h.placement != OSCILLATOR for h in hints):
        return None
    first = hints[0]
    if first.scale is None and first.centre is None and not _guides(first):
        return None  # a level in price units (ATR): nothing an oscillator pane shows
    lines = [(out, key) for out, key in keys if (name, out) not in HISTOGRAM_OUTPUTS]
    hist = next((key for out, key in keys if (name, out) in HISTOGRAM_OUTPUTS), None)
    return Oscillator(
        name=name,
        title=_title(name, params),
        lines=tuple(k for _, k in lines),
        labels=tuple(out for out, _ in lines) if len(lines) > 1 else (),
        histogram=hist,
        zones=_guides(first),
        scale=first.scale,
    )


def extra_keys(name: str) -> list[tuple[str, str]]:
    """(output, value key) of an extra oscillator: ``stoch_k``, ``stoch_d``, ``adx``."""
    outputs = registry.get(name).outputs
    return [(out, name if len(outputs) == 1 else f"{name}_{out}") for out in outputs]


@cache
def chart_hints(signal_config: object) -> ChartHints:
    """The chart's overlays and oscillators for a signal configuration."""
    from engine.signals.registry import all_uses, build, evidence_hints, value_hints

    values = dict(value_hints(signal_config))
    overlays: list[Overlay] = []
    oscillators: list[Oscillator] = []
    for use in all_uses(signal_config, build(signal_config)):
        outputs = registry.get(use.name).outputs
        keys = [(out, key) for out, key in zip(outputs, use.outputs, strict=True) if key]
        if not keys:
            continue
        if all(values.get(key) is not None and values[key].placement == OVERLAY for _, key in keys):
            slot = len({o.label for o in overlays}) % N_COLOURS + 1
            label = _title(use.name, use.params)
            overlays.extend(Overlay(key, label, slot) for _, key in keys)
            continue
        osc = _oscillator(use.name, use.params, keys, values)
        if osc is not None and all(o.name != osc.name for o in oscillators):
            oscillators.append(osc)
    for name in EXTRA_OSCILLATORS:
        spec = registry.get(name)
        keys = extra_keys(name)
        for out, key in keys:
            values.setdefault(key, registry.display_hint(name, out))
        osc = _oscillator(name, spec.resolve(), keys, values)
        if osc is not None and all(o.name != name for o in oscillators):
            oscillators.append(osc)
    return ChartHints(tuple(overlays), tuple(oscillators), values, evidence_hints(signal_config))


@cache
def default_hints() -> ChartHints:
    """The hints of the default signal configuration (what the replay computes); built
    once (a configuration validates its parameters when made)."""
    from engine.backtest import BacktestConfig

    return chart_hints(BacktestConfig().signal)


def display_extras(series: InstrumentSeries) -> dict[str, np.ndarray]:
    """The extra oscillators over the whole series, through the engine's registry. Every
    value at candle i uses candles up to i only, so the replay shows the prefix it has
    reached."""
    out: dict[str, np.ndarray] = {}
    for name in EXTRA_OSCILLATORS:
        result = registry.compute(name, series)
        for o, key in extra_keys(name):
            out[key] = result[o]
    return out


def legend_groups(
    overlays: Sequence[Overlay], values: Mapping[str, float]
) -> list[tuple[str, int, list[float]]]:
    """(label, colour slot, values) per legend entry: the bands become one entry."""
    out: list[tuple[str, int, list[float]]] = []
    for ov in overlays:
        if ov.key not in values:
            continue
        if out and out[-1][0] == ov.label:
            out[-1][2].append(values[ov.key])
        else:
            out.append((ov.label, ov.slot, [values[ov.key]]))
    return out


def zone(key: str, value: float) -> str | None:
    """'low' / 'high' when a value is in its declared zone (RSI oversold, ADX trending)."""
    hint = default_hints().values.get(key)
    if hint is None or value is None or not math.isfinite(value):
        return None
    return hint.zone(value)


def decimals(key: str) -> int | None:
    """The declared decimals of a value in points (RSI: 1); None for prices."""
    hint = default_hints().values.get(key)
    return None if hint is None else hint.decimals


def evidence_decimals(key: str) -> int | None:
    """``decimals`` of a key of a signal's evidence: the detector's own hint for it (a
    previous RSI, the level crossed), else its value key's."""
    hints = default_hints()
    hint = hints.evidence.get(key) or hints.values.get(key)
    return None if hint is None else hint.decimals
