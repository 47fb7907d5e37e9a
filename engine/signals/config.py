"""Which detectors run, with which parameters, and how signals are batched.

Everything is frozen so a config can key caches and be compared. Counts (``cooldown``,
``window``, lookbacks) are in candles of the instrument (detectors) or steps of the
merged stream (aggregator). The detectors and their parameter classes come from the
registry (``engine.signals.registry``); this module knows none of them by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from engine.signals import registry
from engine.signals.base import DetectorParams, SignalConfigError, check

__all__ = [
    "DetectorParamsMap",
    "SignalConfig",
    "SignalConfigError",
    "default_signal_config",
    "parse_detectors",
]


def _timeframe_to_ns(timeframe: str) -> int:
    # engine.timeutil imports pandas (~0.2 s); only a window_duration needs it, so
    # importing engine.signals does not pay for it.
    from engine.timeutil import timeframe_to_ns

    return timeframe_to_ns(timeframe)


class DetectorParamsMap(Mapping[str, DetectorParams]):
    """Detector name -> its parameters, for every registered detector; immutable and
    hashable (a SignalConfig keys caches)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, DetectorParams] | None = None) -> None:
        merged = registry.default_params()
        for name, params in (items or {}).items():
            cls = registry.get(name)
            check(
                isinstance(params, cls.Params),
                f"{name}: parameters must be a {cls.Params.__name__}, got {type(params).__name__}",
            )
            merged[name] = params
        self._items = merged

    def __getitem__(self, name: str) -> DetectorParams:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DetectorParamsMap):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"DetectorParamsMap({self._items!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (DetectorParamsMap, (self._items,))

    def replaced(self, name: str, params: DetectorParams) -> DetectorParamsMap:
        return DetectorParamsMap({**self._items, name: params})


@dataclass(frozen=True)
class SignalConfig:
    """Detectors to run (by name, see ``registry.DETECTOR_NAMES``), the parameters of
    every detector, and the aggregation window.

    ``window``: steps of the merged stream per batch (1 = every step is its own batch).
    ``window_duration``: alternatively a span such as "15m" (windows aligned to the epoch);
    it wins over ``window`` when set. ``atr_period``: the ATR every instrument carries
    for stops and context. ``context_lookback``: candles the context's price change is
    measured over. ``correlation_lookback`` / ``correlation_threshold``: how correlated
    (Pearson, simple returns over that many merged steps) two instruments must be for
    opposite views on them to be flagged. ``emit_empty``: also emit batches for windows
    without signals (the engine may want them to review open positions).
    """

    detectors: tuple[str, ...] = registry.DEFAULT_DETECTORS
    params: DetectorParamsMap = field(default_factory=DetectorParamsMap)
    atr_period: int = 14
    window: int = 5
    window_duration: str | None = None
    context_lookback: int = 60
    correlation_lookback: int = 120
    correlation_threshold: float = 0.5
    emit_empty: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.params, DetectorParamsMap):
            object.__setattr__(self, "params", DetectorParamsMap(self.params))
        self.validate()

    def validate(self) -> None:
        known = registry.DETECTOR_NAMES
        unknown = [d for d in self.detectors if d not in known]
        check(
            not unknown,
            f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(known)}",
        )
        check(
            len(set(self.detectors)) == len(self.detectors),
            f"detector listed twice in {self.detectors}",
        )
        for name, params in self.params.items():
            params.validate(name)
        for name in ("atr_period", "window", "context_lookback"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(
            self.correlation_lookback >= 3,
            f"correlation_lookback must be >= 3, got {self.correlation_lookback}",
        )
        check(
            -1 <= self.correlation_threshold <= 1,
            f"correlation_threshold must be in [-1, 1], got {self.correlation_threshold}",
        )
        for name, params in self.params.items():
            check(params.cooldown >= 0, f"{name}.cooldown must be >= 0, got {params.cooldown}")
        if self.window_duration is not None:
            try:
                _timeframe_to_ns(self.window_duration)
            except ValueError as exc:
                raise SignalConfigError(f"window_duration: {exc}") from None
        self._validate_indicator_params()

    def _validate_indicator_params(self) -> None:
        """Indicator parameters within the ranges the indicator registry declares."""
        from engine.indicators import registry as indicators

        owners = [("atr_period", u) for u in registry.base_uses(self)]
        owners += [(d.name, u) for d in registry.build(self) for u in d.uses]
        for owner, use in owners:
            try:
                indicators.get(use.name).resolve(**use.params)
            except ValueError as exc:
                raise SignalConfigError(f"{owner}: {exc}") from None

    def params_of(self, name: str) -> Any:
        """The parameters of detector ``name`` (enabled or not)."""
        registry.get(name)
        return self.params[name]

    def plain_record(self) -> dict[str, Any]:
        """What the run log records: the shared settings, and the parameters of the
        default detectors and of every enabled one, each under its detector's name."""
        record: dict[str, Any] = {"detectors": self.detectors}
        for name in registry.DETECTOR_NAMES:
            if name in registry.DEFAULT_DETECTORS or name in self.detectors:
                record[name] = self.params[name]
        for f in fields(self):
            if f.name not in ("detectors", "params"):
                record[f.name] = getattr(self, f.name)
        return record

    @property
    def window_ns(self) -> int | None:
        """The window as a duration in ns, or None when it counts steps."""
        return None if self.window_duration is None else _timeframe_to_ns(self.window_duration)

    def with_detectors(self, names: str | Iterable[str]) -> SignalConfig:
        return replace(self, detectors=parse_detectors(names))

    def with_params(self, detector: str, **params: Any) -> SignalConfig:
        """A copy with some parameters of one detector changed, e.g. ("rsi", oversold=25)."""
        check(detector in registry.DETECTORS, f"unknown detector {detector!r}")
        current = self.params[detector]
        allowed = {f.name for f in fields(current)}
        bad = sorted(set(params) - allowed)
        check(
            not bad,
            f"unknown parameter(s) {', '.join(bad)} for {detector}; "
            f"known: {', '.join(sorted(allowed))}",
        )
        return replace(self, params=self.params.replaced(detector, replace(current, **params)))


def parse_detectors(names: str | Iterable[str]) -> tuple[str, ...]:
    """ "rsi,macd,bb" -> ("rsi", "macd", "bb_breakout", "bb_touch"), in the given order,
    duplicates removed. Raises SignalConfigError naming any unknown detector."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    known = ", ".join(registry.DETECTOR_NAMES)
    if registry.ALIASES:
        known += f" (or {' or '.join(registry.ALIASES)})"
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        for n in registry.ALIASES.get(name, (name,)):
            check(
                n in registry.DETECTORS,
                f"unknown detector {raw.strip()!r}; known: {known}",
            )
            if n not in out:
                out.append(n)
    check(bool(out), "no detector given")
    return tuple(out)


def default_signal_config() -> SignalConfig:
    """The default detectors with defaults measured on 1-minute BTC (see the module docs
    of ``engine.signals``): about 20 batches per 240 candles with ``window=5``."""
    return SignalConfig()
