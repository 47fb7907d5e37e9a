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
import inspect
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:  # the data layer's type, named here only for the annotation
    from engine.data.report import DataReport


_C = TypeVar("_C", bound=type)


class _Factory:
    """The default of a parameter whose field has a ``default_factory`` (as in dataclasses)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _param_shape(init: Any) -> list[tuple[str, Any, bool]]:
    """An ``__init__``'s parameters after ``self``: name, kind, whether it has a default."""
    ps = list(inspect.signature(init).parameters.values())[1:]
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in ps]


def _fast_init(cls: _C) -> _C:
    """Give a frozen slots dataclass an ``__init__`` that stores each field through its
    slot's member descriptor instead of ``object.__setattr__`` by name (the generated one):
    about half the cost per record, and the engine builds ~180k of them per 1M-candle run.

    Apply it above ``@dataclass(frozen=True, slots=True)``. The signature is the generated
    one (positional and keyword, defaults, ``default_factory`` called per instance,
    keyword-only fields, ``field(init=False)`` set from its default or factory), so the
    objects are equal and freezing, repr, eq, hash, pickle, copy and
    ``dataclasses.replace`` are untouched. A class it cannot reproduce exactly (no slots, a
    ``__post_init__``, an ``InitVar``, a field named ``_fi_*``) is refused at import.
    """
    name = getattr(cls, "__qualname__", repr(cls))
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.init:
        raise TypeError(f"_fast_init: {name} is not a dataclass with a generated __init__")
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"_fast_init: {name} has no slots (use @dataclass(slots=True))")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"_fast_init: {name} has a __post_init__")
    fs = fields(cls)
    ns: dict[str, Any] = {"_fi_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for i, f in enumerate(fs):
        if f.name.startswith("_fi_"):
            raise TypeError(f"_fast_init: {name}.{f.name} clashes with the helper's names")
        slot = next((k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__), None)
        if type(slot) is not types.MemberDescriptorType:
            raise TypeError(f"_fast_init: {name}.{f.name} is not a plain slot")
        ns[f"_fi_s{i}"] = slot.__set__
        if f.default_factory is not MISSING:
            ns[f"_fi_f{i}"] = f.default_factory
        if f.default is not MISSING:
            ns[f"_fi_d{i}"] = f.default
        if not f.init:  # set as dataclasses does: from its default or factory, else unset
            if f.default_factory is not MISSING:
                body.append(f"    _fi_s{i}(_fi_self, _fi_f{i}())")
            elif f.default is not MISSING:
                body.append(f"    _fi_s{i}(_fi_self, _fi_d{i})")
            continue
        if f.default_factory is not MISSING:
            param = f"{f.name}=_fi_FACTORY"
            value = f"_fi_f{i}() if {f.name} is _fi_FACTORY else {f.name}"
        elif f.default is not MISSING:
            param, value = f"{f.name}=_fi_d{i}", f.name
        else:
            param, value = f.name, f.name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    _fi_s{i}(_fi_self, {value})")
    signature = ", ".join(["_fi_self", *positional, *(["*", *keyword] if keyword else [])])
    src = f"def __init__({signature}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(src, ns)  # the source is built above from the class's own field names
    init = ns["__init__"]
    if _param_shape(init) != _param_shape(cls.__init__):  # e.g. an InitVar: not ours to drop
        raise TypeError(f"_fast_init: {name}'s __init__ signature cannot be reproduced")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(getattr(cls.__init__, "__annotations__", {}))
    cls.__init__ = init  # type: ignore[misc]
    return cls


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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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


@_fast_init
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
