"""The detector registry: every ``Detector`` class under ``engine/signals/detectors/``.

Importing this module imports every module of that package, which registers its
classes (``engine.signals.base.Detector.__init_subclass__``). Detectors are ordered by
their ``rank``: that is the order of the default configuration, of ``KINDS`` and of
signals of one candle (``KIND_ORDER``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import replace

from engine.indicators import registry as indicators
from engine.indicators.registry import OSCILLATOR, OVERLAY, DisplayHint
from engine.signals import detectors as _package
from engine.signals.base import (
    ConfigView,
    Detector,
    DetectorParams,
    IndicatorUse,
    check,
    registered_detectors,
)


def _load() -> dict[str, type[Detector]]:
    for module in sorted(m.name for m in pkgutil.iter_modules(_package.__path__)):
        importlib.import_module(f"{_package.__name__}.{module}")
    found: dict[str, type[Detector]] = {}
    kinds: dict[str, str] = {}
    for cls in sorted(registered_detectors(), key=lambda c: (c.rank, c.name)):
        if cls.name in found:
            raise RuntimeError(f"two detectors are called {cls.name!r}")
        for kind in cls.kinds:
            if kind in kinds:
                raise RuntimeError(f"signal kind {kind!r} of {cls.name} is {kinds[kind]}'s")
            kinds[kind] = cls.name
        found[cls.name] = cls
    return found


DETECTORS: Mapping[str, type[Detector]] = _load()
DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTORS)  # every known detector, by rank
DEFAULT_DETECTORS: tuple[str, ...] = tuple(n for n, c in DETECTORS.items() if c.default)
KINDS: Mapping[str, tuple[str, ...]] = {n: c.kinds for n, c in DETECTORS.items()}
SIGNAL_KINDS: tuple[str, ...] = tuple(k for kinds in KINDS.values() for k in kinds)
KIND_ORDER: Mapping[str, int] = {k: i for i, k in enumerate(SIGNAL_KINDS)}  # sort key
ALIASES: Mapping[str, tuple[str, ...]] = {
    alias: tuple(n for n, c in DETECTORS.items() if alias in c.aliases)
    for c in DETECTORS.values()
    for alias in c.aliases
}


def get(name: str) -> type[Detector]:
    check(name in DETECTORS, f"unknown detector {name!r}; known: {', '.join(DETECTOR_NAMES)}")
    return DETECTORS[name]


def default_params() -> dict[str, DetectorParams]:
    """Every detector's default parameters."""
    return {name: cls.Params() for name, cls in DETECTORS.items()}


def build(config: ConfigView) -> list[Detector]:
    """The enabled detectors, in ``config.detectors`` order."""
    return [DETECTORS[n](config.params_of(n), config) for n in config.detectors]


def value_hints(config: ConfigView) -> dict[str, DisplayHint]:
    """How to show each value key the configured detectors produce (the keys of
    ``SeriesSignals.indicators`` and of ``StepEvent`` indicator values): the indicator
    registry's hint of the output behind the key (an overlay only when its inputs are
    prices), then what the detectors say of their own keys and derived values."""
    detectors = build(config)
    on_price = {"open", "high", "low", "close"}
    hints: dict[str, DisplayHint] = {}
    for use in all_uses(config, detectors):
        spec = indicators.get(use.name)
        overlay = all(s in on_price for s in use.sources)
        for output, key in zip(spec.outputs, use.outputs, strict=True):
            if not key:
                continue
            hint = indicators.display_hint(use.name, output)
            if hint.placement == OVERLAY:
                if overlay:
                    on_price.add(key)
                else:
                    hint = replace(hint, placement=OSCILLATOR)
            hints[key] = hint
    for detector in detectors:
        hints.update(detector.display_hints())
    return hints


def evidence_hints(config: ConfigView) -> dict[str, DisplayHint]:
    """How to show the evidence keys of the configured detectors' signals that are no
    value key (``Detector.evidence_hints``); a key two detectors declare (``level``)
    means the same to both."""
    hints: dict[str, DisplayHint] = {}
    for detector in build(config):
        for key, hint in detector.evidence_hints().items():
            if hints.setdefault(key, hint).decimals != hint.decimals:
                raise AssertionError(f"evidence key {key!r} shown two ways")
    return hints


def base_uses(config: ConfigView) -> tuple[IndicatorUse, ...]:
    """The ATR every instrument carries (stops, context, strength scales)."""
    return (IndicatorUse("atr", ("high", "low", "close"), {"period": config.atr_period}, ("atr",)),)


def all_uses(config: ConfigView, detectors: list[Detector]) -> tuple[IndicatorUse, ...]:
    """Every indicator to compute, each key once, in dependency order."""
    seen: dict[str, IndicatorUse] = {}
    ordered: list[IndicatorUse] = []
    for use in (*base_uses(config), *(u for d in detectors for u in d.uses)):
        keys = [k for k in use.outputs if k]
        if all(k in seen for k in keys):
            if any(seen[k] != use for k in keys):
                raise AssertionError(f"indicator key clash for {keys}")
            continue
        for k in keys:
            seen[k] = use
        ordered.append(use)
    return tuple(ordered)
