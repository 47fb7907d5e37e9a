"""The shared vocabulary of tapedeck (see DESIGN.md, "Vocabulary").

Conventions that every module keeps:
- Times are ``int`` nanoseconds since the Unix epoch, UTC (``numpy.int64`` in arrays).
  ``engine.timeutil`` converts them to and from text.
- A candle is known only at its close: a Signal's ``time`` is the close time of the
  candle that fired it, and everything decided at that time fills at a later candle.
- Bulk data stays columnar (:class:`InstrumentSeries`); the records below are for
  events, not for hot loops over candles.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the data layer's type, named here only for the annotation
    from engine.data.report import DataReport


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class Action(StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE = "close"
    ADJUST = "adjust"
    HOLD = "hold"


class OrderKind(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    ADJUST = "adjust"  # the record of an adjustment, applied at once, never pending


class FillSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class SizeMode(StrEnum):
    RISK = "risk"  # size is the fraction of equity put at risk between entry and stop
    EQUITY = "equity"  # size is the fraction of equity put into the position


class TrailingMode(StrEnum):
    PERCENT = "percent"  # distance and activation are fractions of price
    ATR = "atr"  # distance and activation are multiples of an ATR


class ConflictKind(StrEnum):
    SAME_INSTRUMENT = "same_instrument"  # opposite signals on one instrument
    CORRELATED = "correlated"  # opposite signals on instruments that move together


class ExitReason(StrEnum):
    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    TRAILING = "trailing"
    SIGNAL = "signal"
    TIME_LIMIT = "time_limit"
    END_OF_DATA = "end_of_data"


@dataclass(frozen=True, slots=True)
class Candle:
    instrument: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, eq=False)
class InstrumentSeries:
    """One instrument's candles, columnar. ``open_time`` is sorted, unique, int64 ns UTC.

    ``filled`` marks candles that were not in the source but forward-filled over a gap
    (flat, zero volume); it is all False unless gap filling was asked for.
    ``report`` is the data layer's DataReport (what was repaired, what gaps remain).
    """

    instrument: str
    timeframe: str
    timeframe_ns: int
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    filled: np.ndarray
    report: DataReport | None = None
    source: str = ""

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    @functools.cached_property
    def close_time(self) -> np.ndarray:
        """``open_time + timeframe``, computed once and shared (read-only): every user
        holding its own copy cost 80 MB each on 10M candles."""
        out = self.open_time + np.int64(self.timeframe_ns)
        out.flags.writeable = False
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("close_time", None)  # derived: not worth pickling
        return state

    def candle(self, i: int) -> Candle:
        return Candle(
            self.instrument,
            int(self.open_time[i]),
            int(self.open_time[i]) + self.timeframe_ns,
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
        )


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's finding at the close of one candle, with the evidence that fired it."""

    instrument: str
    time: int
    kind: str
    direction: Direction
    strength: float
    price: float
    evidence: Mapping[str, float] = field(default_factory=dict)
    count: int = 1  # how many signals of this kind the aggregator merged into this one


@dataclass(frozen=True, slots=True)
class InstrumentContext:
    """What a brain needs to know about one instrument at batch time."""

    instrument: str
    price: float
    atr: float
    change_pct: float  # close-to-close change over the context lookback, in percent
    lookback: int  # candles the change is measured over
    indicators: Mapping[str, float] = field(default_factory=dict)
    moves: tuple[float, ...] = ()  # % close-to-close moves of the last few candles, oldest first


@dataclass(frozen=True, slots=True)
class Conflict:
    """Opposite views the aggregator saw but did not resolve (the brain's job)."""

    kind: ConflictKind
    instruments: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class SignalBatch:
    """The signals of one aggregation window, across instruments, and the market context."""

    time: int  # close time of the step that closed the window
    window_start: int
    step: int  # merged-stream step index at which the window closed
    signals: tuple[Signal, ...]
    context: Mapping[str, InstrumentContext]
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, slots=True)
class TrailingSpec:
    """A trailing stop: ``distance`` is a fraction of price (mode "percent", 0.01 = 1%)
    or a multiple of ``atr`` (mode "atr"). Trailing starts once price has moved
    ``activation`` (same unit as ``distance``) in the position's favour; 0 = at once.

    A persona's trailing is one of these without ``atr``; :meth:`bound` gives the spec a
    plan carries. The mode is not coerced: a brain may send any text, and RiskGuard
    turns an unknown mode into a correction.
    """

    mode: TrailingMode
    distance: float
    activation: float = 0.0
    atr: float | None = None  # the ATR the multiples refer to (needed for mode "atr")

    def bound(self, atr: float | None) -> TrailingSpec:
        """This spec for a plan made when the ATR was ``atr`` (kept in ATR mode only)."""
        kept = atr if self.mode == TrailingMode.ATR else None
        return TrailingSpec(self.mode, self.distance, self.activation, kept)

    def distance_price(self, reference_price: float) -> float:
        if self.mode == TrailingMode.ATR:
            return self.distance * float(self.atr or 0.0)
        return self.distance * reference_price

    def activation_price(self, reference_price: float) -> float:
        if self.mode == TrailingMode.ATR:
            return self.activation * float(self.atr or 0.0)
        return self.activation * reference_price


@dataclass(frozen=True, slots=True)
class TradePlan:
    """What a brain wants done on one instrument. Prices are absolute.

    ``size`` is the fraction of equity put at risk between entry and stop when
    ``size_mode`` is "risk", or the fraction of equity put into the position when it
    is "equity". ``entry_price`` None means a market order at the next open.
    """

    instrument: str
    action: Action
    entry_price: float | None = None
    size: float = 0.0
    size_mode: SizeMode = SizeMode.RISK
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing: TrailingSpec | None = None
    confidence: float = 0.0
    rationale: str = ""
    expiry_candles: int | None = None  # limit orders only; None = good till cancelled


@dataclass(frozen=True, slots=True)
class Decision:
    """A brain's answer to one batch, after RiskGuard: the plans, why, and at what cost."""

    time: int
    brain: str
    model: str
    plans: tuple[TradePlan, ...]
    reasoning: str
    latency_s: float = 0.0
    tokens: int = 0
    cache_hit: bool = False
    corrections: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    prompt: str | None = None
    raw_answer: str | None = None  # the model's text as it came (LLM brains)
    grounded: bool | None = None  # reasoning checked against its prompt (None: not checked)
    grounding: tuple[str, ...] = ()  # what is not grounded (empty when grounded)


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    instrument: str
    side: Side
    kind: OrderKind
    created_time: int
    plan: TradePlan
    limit_price: float | None = None
    expiry_time: int | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    time: int
    instrument: str
    order_id: int
    side: FillSide
    qty: float
    price: float
    fee: float
    reason: str  # "entry" or an ExitReason value
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order the broker refused or dropped, and why: refused at submission
    (``order_id`` 0, no order was made), replaced, cancelled, expired, or refused when
    it came to fill."""

    time: int
    instrument: str
    order_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Position:
    """A snapshot of one open position."""

    instrument: str
    side: Side
    qty: float
    entry_price: float
    entry_time: int
    stop_loss: float | None
    take_profit: float | None
    trailing: TrailingSpec | None
    trail_stop: float | None
    last_price: float
    unrealized_pnl: float
    fees_paid: float


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip."""

    instrument: str
    side: Side
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    qty: float
    pnl: float  # net of both fees
    fees: float
    exit_reason: ExitReason
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """What a brain is told about the account when it decides."""

    time: int
    step: int
    cash: float
    equity: float
    positions: tuple[Position, ...]
    pending_orders: tuple[Order, ...] = ()
    # merged-stream step at which the latest losing trade closed (persona cooldown)
    last_loss_step: int | None = None


@dataclass(frozen=True, slots=True)
class StepEvent:
    """Everything one merged step produced: what the TUI shows comes only from these.
    (The run log is written from the :class:`BacktestResult` of a whole run, which
    holds the same decisions, fills, trades and rejections.)"""

    step: int
    total_steps: int
    time: int  # close time of the step's candles
    candles: tuple[Candle, ...]
    indicators: Mapping[str, Mapping[str, float]]  # instrument -> indicator -> value
    signals: tuple[Signal, ...]
    batch: SignalBatch | None
    decisions: tuple[Decision, ...]
    fills: tuple[Fill, ...]
    trades: tuple[Trade, ...]  # closed at this step
    positions: tuple[Position, ...]
    orders: tuple[Order, ...]
    cash: float
    equity: float
    rejections: tuple[Rejection, ...] = ()  # orders refused or dropped at this step
