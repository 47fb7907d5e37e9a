"""Which detectors run, with which parameters, and how signals are batched.

Everything is a frozen dataclass so a config can key caches and be compared. Counts
(``cooldown``, ``window``, lookbacks) are in candles of the instrument (detectors) or
steps of the merged stream (aggregator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from engine.errors import TapedeckError


class SignalConfigError(TapedeckError, ValueError):
    """A signal configuration a user gave that cannot be used."""


def _timeframe_to_ns(timeframe: str) -> int:
    # engine.timeutil imports pandas (~0.2 s); only a window_duration needs it, so
    # importing engine.signals does not pay for it.
    from engine.timeutil import timeframe_to_ns

    return timeframe_to_ns(timeframe)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise SignalConfigError(what)


@dataclass(frozen=True)
class RsiConfig:
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    rearm: float = 5.0  # leave the zone by this many points before it can fire again
    depth: float = 10.0  # points inside the zone at which strength reaches 1
    cooldown: int = 30

    def validate(self) -> None:
        _check(self.period >= 1, f"rsi.period must be >= 1, got {self.period}")
        _check(
            0 < self.oversold < self.overbought < 100,
            f"rsi levels need 0 < oversold < overbought < 100, got "
            f"{self.oversold} and {self.overbought}",
        )
        _check(self.rearm >= 0, f"rsi.rearm must be >= 0, got {self.rearm}")
        _check(self.depth > 0, f"rsi.depth must be > 0, got {self.depth}")


@dataclass(frozen=True)
class MacdConfig:
    fast: int = 12
    slow: int = 26
    signal: int = 9
    against: str = "signal"  # the line MACD must cross: "signal" or "zero"
    strength_atr: float = 0.2  # |change of the crossing gap| in ATRs giving strength 1
    cooldown: int = 30

    def validate(self) -> None:
        _check(
            1 <= self.fast < self.slow,
            f"macd needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}",
        )
        _check(self.signal >= 1, f"macd.signal must be >= 1, got {self.signal}")
        _check(
            self.against in ("signal", "zero"),
            f"macd.against must be 'signal' or 'zero', got {self.against!r}",
        )
        _check(self.strength_atr > 0, f"macd.strength_atr must be > 0, got {self.strength_atr}")


@dataclass(frozen=True)
class EmaConfig:
    fast: int = 9
    slow: int = 21
    gap_atr: float = 0.25  # |fast - slow| in ATRs giving the gap half of strength
    slope_atr: float = 0.25  # fast EMA's one-candle move in ATRs giving the slope half
    cooldown: int = 30

    def validate(self) -> None:
        _check(
            1 <= self.fast < self.slow,
            f"ema needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}",
        )
        _check(self.gap_atr > 0 and self.slope_atr > 0, "ema.gap_atr and ema.slope_atr must be > 0")


@dataclass(frozen=True)
class BollingerConfig:
    period: int = 20
    nbdev: float = 2.0
    cooldown: int = 30

    def validate(self, name: str) -> None:
        _check(self.period >= 2, f"{name}.period must be >= 2, got {self.period}")
        _check(self.nbdev > 0, f"{name}.nbdev must be > 0, got {self.nbdev}")


@dataclass(frozen=True)
class AtrExpansionConfig:
    period: int = 14
    average: int = 50  # SMA of ATR the current ATR is compared with
    threshold: float = 1.5  # ATR / average at which it fires
    rearm: float = 1.2  # ratio it must fall back under before it can fire again
    cooldown: int = 30

    def validate(self) -> None:
        _check(self.period >= 1, f"atr.period must be >= 1, got {self.period}")
        _check(self.average >= 1, f"atr.average must be >= 1, got {self.average}")
        _check(self.threshold > 1, f"atr.threshold must be > 1, got {self.threshold}")
        _check(
            0 < self.rearm <= self.threshold,
            f"atr.rearm must be in (0, threshold], got {self.rearm}",
        )


@dataclass(frozen=True)
class VolumeSpikeConfig:
    window: int = 20  # candles before the current one that make the baseline
    threshold: float = 4.0  # z-score at which it fires
    rearm: float = 1.0  # z-score it must fall back under before it can fire again
    cooldown: int = 30

    def validate(self) -> None:
        _check(self.window >= 2, f"volume.window must be >= 2, got {self.window}")
        _check(self.threshold > 0, f"volume.threshold must be > 0, got {self.threshold}")
        _check(
            self.rearm <= self.threshold,
            f"volume.rearm must be <= threshold, got {self.rearm}",
        )


DETECTOR_NAMES: tuple[str, ...] = (
    "rsi",
    "macd",
    "ema",
    "bb_breakout",
    "bb_touch",
    "atr",
    "volume",
)

# "bb" is a convenience name for both Bollinger detectors.
_ALIASES: Mapping[str, tuple[str, ...]] = {"bb": ("bb_breakout", "bb_touch")}


@dataclass(frozen=True)
class SignalConfig:
    """Detectors to run (by name, see :data:`DETECTOR_NAMES`), their parameters, and the
    aggregation window.

    ``window``: steps of the merged stream per batch (1 = every step is its own batch).
    ``window_duration``: alternatively a span such as "15m" (windows aligned to the epoch);
    it wins over ``window`` when set. ``atr_period``: the ATR every instrument carries
    for stops and context. ``context_lookback``: candles the context's price change is
    measured over. ``correlation_lookback`` / ``correlation_threshold``: how correlated
    (Pearson, simple returns over that many merged steps) two instruments must be for
    opposite views on them to be flagged. ``emit_empty``: also emit batches for windows
    without signals (the engine may want them to review open positions).
    """

    detectors: tuple[str, ...] = DETECTOR_NAMES
    rsi: RsiConfig = field(default_factory=RsiConfig)
    macd: MacdConfig = field(default_factory=MacdConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    bb_breakout: BollingerConfig = field(default_factory=BollingerConfig)
    bb_touch: BollingerConfig = field(default_factory=BollingerConfig)
    atr: AtrExpansionConfig = field(default_factory=AtrExpansionConfig)
    volume: VolumeSpikeConfig = field(default_factory=VolumeSpikeConfig)
    atr_period: int = 14
    window: int = 5
    window_duration: str | None = None
    context_lookback: int = 60
    correlation_lookback: int = 120
    correlation_threshold: float = 0.5
    emit_empty: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        unknown = [d for d in self.detectors if d not in DETECTOR_NAMES]
        _check(
            not unknown,
            f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(DETECTOR_NAMES)}",
        )
        _check(
            len(set(self.detectors)) == len(self.detectors),
            f"detector listed twice in {self.detectors}",
        )
        self.rsi.validate()
        self.macd.validate()
        self.ema.validate()
        self.bb_breakout.validate("bb_breakout")
        self.bb_touch.validate("bb_touch")
        self.atr.validate()
        self.volume.validate()
        for name in ("atr_period", "window", "context_lookback"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(
            self.correlation_lookback >= 3,
            f"correlation_lookback must be >= 3, got {self.correlation_lookback}",
        )
        _check(
            -1 <= self.correlation_threshold <= 1,
            f"correlation_threshold must be in [-1, 1], got {self.correlation_threshold}",
        )
        for name in DETECTOR_NAMES:
            cooldown = getattr(self, name).cooldown
            _check(cooldown >= 0, f"{name}.cooldown must be >= 0, got {cooldown}")
        if self.window_duration is not None:
            try:
                _timeframe_to_ns(self.window_duration)
            except ValueError as exc:
                raise SignalConfigError(f"window_duration: {exc}") from None
        self._validate_indicator_params()

    def _validate_indicator_params(self) -> None:
        """Indicator parameters within the ranges the indicator registry declares."""
        from engine.indicators import registry
        from engine.signals.strategies import base_uses, build_strategies

        owners = [("atr_period", u) for u in base_uses(self)]
        owners += [(s.name, u) for s in build_strategies(self) for u in s.uses]
        for owner, use in owners:
            try:
                registry.get(use.name).resolve(**use.params)
            except ValueError as exc:
                raise SignalConfigError(f"{owner}: {exc}") from None

    @property
    def window_ns(self) -> int | None:
        """The window as a duration in ns, or None when it counts steps."""
        return None if self.window_duration is None else _timeframe_to_ns(self.window_duration)

    def with_detectors(self, names: str | Iterable[str]) -> SignalConfig:
        return replace(self, detectors=parse_detectors(names))

    def with_params(self, detector: str, **params: Any) -> SignalConfig:
        """A copy with some parameters of one detector changed, e.g. ("rsi", oversold=25)."""
        _check(detector in DETECTOR_NAMES, f"unknown detector {detector!r}")
        current = getattr(self, detector)
        allowed = {f.name for f in fields(current)}
        bad = sorted(set(params) - allowed)
        _check(
            not bad,
            f"unknown parameter(s) {', '.join(bad)} for {detector}; "
            f"known: {', '.join(sorted(allowed))}",
        )
        return replace(self, **{detector: replace(current, **params)})


def parse_detectors(names: str | Iterable[str]) -> tuple[str, ...]:
    """ "rsi,macd,bb" -> ("rsi", "macd", "bb_breakout", "bb_touch"), in the given order,
    duplicates removed. Raises SignalConfigError naming any unknown detector."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        expanded = _ALIASES.get(name, (name,))
        for n in expanded:
            _check(
                n in DETECTOR_NAMES,
                f"unknown detector {raw.strip()!r}; known: {', '.join(DETECTOR_NAMES)} (or bb)",
            )
            if n not in out:
                out.append(n)
    _check(bool(out), "no detector given")
    return tuple(out)


def default_signal_config() -> SignalConfig:
    """Every detector with defaults measured on 1-minute BTC (see the module docs of
    ``engine.signals``): about 20 batches per 240 candles with ``window=5``."""
    return SignalConfig()
