"""The simulated broker: orders, fills, positions, stops, trailing, one shared cash wallet.

Rules (DESIGN.md, "Time and fills"):

- A plan submitted at time ``t`` (the close of a candle) only fills in a candle whose
  ``open_time >= t``: market orders at that candle's open, limit orders when a later
  candle touches or trades through the limit (a buy limit when ``low <= limit``, as in
  backtesting.py): at the limit, or at the open when the candle opens beyond it in the
  order's favour. A new entry order on an instrument replaces a pending one; an entry
  while a position is open there is refused unless a close is pending. Limit orders
  expire after ``expiry_candles`` candles of their instrument (counted from the first
  candle they could fill in).
- Each candle of an instrument is processed in this order:
  1. a position over its holding limit closes at the open (``time_limit``): entered in
     candle ``k`` with a limit of ``N`` candles, it leaves at the open of ``k + N``;
  2. a pending close order closes the position at the open (``signal``);
  3. a pending entry order fills (market at the open; limit at the open or the limit);
     an entry whose candle opens already beyond its stop (or target) is refused;
  4. stop / trailing stop / take profit are checked against the candle: a gap through a
     stop or target fills at the open; otherwise a stop fills at the stop price and a
     target at the target price. When one candle touches both, ``intrabar="stop_first"``
     takes the stop; ``"open_distance"`` assumes the extreme nearer the open came first
     (ties: stop). Both cases mark the exit ``ambiguous``. A position entered inside the
     candle at its limit price checks only its stop in that candle (price reached the
     stop after the fill for certain; whether it reached the target after the fill is
     unknowable);
  5. the trailing stop ratchets from the candle's extreme (high for long, low for
     short; the close for a position entered inside the candle), once the extreme has
     moved ``activation`` in the position's favour; it never moves back.
- Fees: ``fees_bps`` of notional on every fill. Slippage: ``slippage_bps`` against the
  trader on market fills (entries, closes, time limit, end of data) and stop / trailing
  fills; none on limit entries and take profits.
- Sizing at fill time, with the fill price as entry: ``size_mode="risk"``:
  ``qty = equity * size / |entry - stop|``; ``"equity"``: ``qty = equity * size / entry``;
  capped by ``max_position_fraction * equity / entry`` and by the cash available:
  ``qty * entry * (1 / leverage + fee_rate) <= cash``. Longs and shorts both lock
  ``notional / leverage`` of cash as margin; the position's value is
  ``margin + direction * (price - entry) * qty``. Equity is cash plus positions valued at
  the latest price the broker knows for each instrument (``mark``).

Refusals at submission are returned as text; they, and refusals, expiries and
cancellations later on, are recorded in ``Broker.rejections`` (which the backtest hands
on in ``StepEvent.rejections``, ``BacktestResult.rejections`` and the run log).
``max_holding_candles`` comes from ``BrokerConfig`` or, per order, from
``submit(..., max_holding_candles=...)``.

Fill times: a fill at a candle's open carries the candle's ``open_time``; a fill inside
the candle (limit, stop, target) carries its ``close_time``, when it had surely happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from engine.risk import entry_problem, is_number, is_price, trailing_problem
from engine.runtime import lazy_module
from engine.types import (
    Action,
    ExitReason,
    Fill,
    FillSide,
    InstrumentSeries,
    Order,
    OrderKind,
    Position,
    Rejection,
    Side,
    SizeMode,
    Trade,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)

INTRABAR_POLICIES = ("stop_first", "open_distance")
# Relative tolerance that makes the vectorised event search conservative: a candle within
# this distance of a trigger is reported as an event and then checked exactly.
_EVENT_TOL = 1e-9
# Up to this many skipped candles, a trail's catch-up takes their extreme in Python.
_SHORT = 32
# A fill's reason text for each exit reason (the enum's value, without the property lookup)
_REASON_TEXT = {r: r.value for r in ExitReason}
# ``ndarray.max`` / ``min`` without the Python wrapper in between (the same reduction)
_MAX = np.maximum.reduce
_MIN = np.minimum.reduce
_EVENT_SEARCH = "engine.broker.event_search"  # compiled (numba): imported on first use


@dataclass(frozen=True)
class BrokerConfig:
    initial_cash: float = 10_000.0
    fees_bps: float = 10.0
    slippage_bps: float = 5.0
    intrabar: str = "stop_first"  # or "open_distance"
    leverage: float = 1.0
    max_holding_candles: int = 0  # default holding limit for orders; 0 = none

    def __post_init__(self) -> None:
        if self.intrabar not in INTRABAR_POLICIES:
            raise ValueError(f"intrabar must be one of {INTRABAR_POLICIES}, got {self.intrabar!r}")
        for name in ("initial_cash", "fees_bps", "slippage_bps", "leverage"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.leverage <= 0:
            raise ValueError(f"leverage must be > 0, got {self.leverage!r}")
        if self.max_holding_candles < 0:
            raise ValueError("max_holding_candles must be >= 0")


@dataclass(slots=True)
class _Pending:
    order: Order
    is_close: bool
    max_position_fraction: float
    max_holding: int
    first_index: int | None = None  # first candle index the order could fill in


@dataclass(slots=True)
class _Pos:
    instrument: str
    side: Side
    sign: float
    qty: float
    entry_price: float
    entry_time: int
    entry_index: int
    order_id: int
    margin: float
    entry_fee: float
    stop_loss: float | None
    take_profit: float | None
    trailing: TrailingSpec | None
    trail_stop: float | None
    extreme: float  # most favourable price seen (high for long, low for short)
    max_holding: int
    last_index: int


def _arm(pend: _Pending, index: int, open_time: int, close_time: int) -> None:
    """A pending order not yet armed meets the candle ``index``: from the first candle
    that opens at or after its decision, it can fill."""
    order = pend.order
    if open_time >= order.created_time:
        pend.first_index = index
        exp = order.plan.expiry_candles
        if order.kind == OrderKind.LIMIT and exp is not None:
            # for display: the open time of the first candle it can no longer fill in
            expiry = int(open_time) + exp * (int(close_time) - int(open_time))
            pend.order = replace(order, expiry_time=expiry)


def _trail_from_extreme(pos: _Pos, extreme: float) -> float | None:
    """The trailing level implied by ``extreme``, or None while not yet activated.

    The event search (``_first_exit``) repeats these float operations, in the same order.
    """
    return _trail_level(pos.trailing, pos.sign, pos.entry_price, extreme)


def _trail_level(
    spec: TrailingSpec | None, sign: float, entry_price: float, extreme: float
) -> float | None:
    """``_trail_from_extreme`` for a position with trailing ``spec``, direction ``sign``
    and entry ``entry_price``."""
    if spec is None:
        return None
    if sign > 0:
        if extreme < entry_price + spec.activation_price(entry_price):
            return None
        return extreme - spec.distance_price(extreme)
    if extreme > entry_price - spec.activation_price(entry_price):
        return None
    return extreme + spec.distance_price(extreme)


def _first_exit(pos: _Pos, high: np.ndarray, low: np.ndarray, start: int, stop: int) -> int:
    """``engine.broker.event_search.first_exit`` for ``pos``: the kernel repeats the float
    operations of ``_trail_from_extreme`` and of ``Broker._check_exits``."""
    long = pos.sign > 0
    far = -math.inf if long else math.inf  # a stop that is never reached
    spec = pos.trailing
    if spec is None:
        atr_mode = False
        distance = atr_distance = activation = 0.0
    else:
        atr_mode = spec.mode == TrailingMode.ATR
        distance = spec.distance
        atr_distance = spec.distance_price(0.0) if atr_mode else 0.0
        entry = pos.entry_price
        activation = (
            entry + spec.activation_price(entry) if long else entry - spec.activation_price(entry)
        )
    stop_loss, trail_stop, target = pos.stop_loss, pos.trail_stop, pos.take_profit
    scan_from = pos.last_index + 1
    return int(
        lazy_module(_EVENT_SEARCH).first_exit(
            high,
            low,
            scan_from if scan_from < start else start,  # min(scan_from, start)
            start,
            stop,
            long,
            pos.extreme,
            far if stop_loss is None else stop_loss,
            spec is not None,
            atr_mode,
            distance,
            atr_distance,
            activation,
            far if trail_stop is None else trail_stop,
            -far if target is None else target,
            _EVENT_TOL,
        )
    )


class Broker:
    """One account: a cash wallet shared by all instruments, at most one position and one
    pending entry order per instrument."""

    def __init__(
        self, config: BrokerConfig | None = None, instruments: Iterable[str | InstrumentSeries] = ()
    ) -> None:
        self.config = config or BrokerConfig()
        names = [i.instrument if isinstance(i, InstrumentSeries) else str(i) for i in instruments]
        self.instruments: tuple[str, ...] = tuple(sorted(set(names)))
        self.fee_rate = self.config.fees_bps / 10_000.0
        self.slip_rate = self.config.slippage_bps / 10_000.0
        self.cash: float = float(self.config.initial_cash)
        self.trades: list[Trade] = []
        self.fills: list[Fill] = []
        self.rejections: list[Rejection] = []
        self._positions: dict[str, _Pos] = {}
        self._entries: dict[str, _Pending] = {}
        self._closes: dict[str, _Pending] = {}
        self._marks: dict[str, float] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._next_id = 1

    # ------------------------------------------------------------------ state
    def mark(self, prices: Mapping[str, float]) -> None:
        """Tell the broker the latest prices (used to value positions for equity/sizing)."""
        for name, price in prices.items():
            self.mark_price(name, price)

    def mark_price(self, instrument: str, price: float) -> None:
        """``mark`` for one instrument."""
        if is_number(price):
            self._marks[instrument] = float(price)

    def equity(self, prices: Mapping[str, float] | None = None) -> float:
        """Cash plus every open position valued at ``prices`` (or the latest known marks)."""
        if prices:
            self.mark(prices)
        held = self._positions
        if not held:
            return self.cash + 0  # what adding the sum of no position gives
        marks = self._marks
        if len(held) == 1:  # sum() of one value: 0 + the value
            for p in held.values():
                entry = p.entry_price
                return self.cash + (
                    0 + (p.margin + p.sign * (marks.get(p.instrument, entry) - entry) * p.qty)
                )
        return self.cash + sum(
            [
                p.margin + p.sign * (marks.get(p.instrument, p.entry_price) - p.entry_price) * p.qty
                for p in self._positions.values()
            ]
        )

    def positions(self, prices: Mapping[str, float] | None = None) -> tuple[Position, ...]:
        if prices:
            self.mark(prices)
        held = self._positions
        if not held:
            return ()
        marks = self._marks
        out = []
        for name in sorted(held) if len(held) > 1 else held:
            p = held[name]
            entry = p.entry_price
            last = marks.get(name, entry)
            out.append(
                Position(  # (positional: the fields in their order)
                    name,
                    p.side,
                    p.qty,
                    entry,
                    p.entry_time,
                    p.stop_loss,
                    p.take_profit,
                    p.trailing,
                    p.trail_stop,
                    last,
                    p.sign * (last - entry) * p.qty,
                    p.entry_fee,
                )
            )
        return tuple(out)

    def orders(self) -> tuple[Order, ...]:
        """Pending orders (entries and closes), in id order."""
        entries, closes = self._entries, self._closes
        if not entries and not closes:
            return ()
        if len(entries) + len(closes) == 1:  # (nothing to sort)
            for p in (entries or closes).values():
                return (p.order,)
        pend = [*entries.values(), *closes.values()]
        return tuple(sorted((p.order for p in pend), key=lambda o: o.id))

    def has_position(self, instrument: str) -> bool:
        return instrument in self._positions

    @property
    def flat(self) -> bool:
        """No open position."""
        return not self._positions

    @property
    def idle(self) -> bool:
        """No open position and no pending order."""
        return not self._positions and not self._entries and not self._closes

    @property
    def held(self) -> list[str]:
        """Instruments with an open position (in the order they were opened)."""
        return list(self._positions)

    @property
    def trailing(self) -> list[str]:
        """Instruments whose open position has a trailing stop."""
        held = self._positions
        if not held:
            return []
        return [name for name, p in held.items() if p.trailing is not None]

    def holdings(self) -> list[tuple[str, float]]:
        """(instrument, signed quantity) of every open position: the equity's exposure."""
        return [(name, p.sign * p.qty) for name, p in self._positions.items()]

    def has_entry(self, instrument: str) -> bool:
        """Whether an entry order is pending on ``instrument``."""
        return instrument in self._entries

    def is_active(self, instrument: str) -> bool:
        """Whether ``on_candle`` can still do anything for ``instrument`` (a position or
        a pending order there)."""
        return (
            instrument in self._positions
            or instrument in self._entries
            or instrument in self._closes
        )

    def catch_up(self, instrument: str, index: int) -> None:
        """Bring the position on ``instrument`` up to its candle ``index``: ratchet its
        extreme and trailing stop over the candles skipped as quiet (no-op when it has
        seen that candle). What a brain sees, and where an adjusted trail starts, is then
        what processing every candle would give."""
        pos = self._positions.get(instrument)
        if pos is not None and pos.last_index < index:
            self._catch_up(pos, index + 1)

    # ------------------------------------------------------------------ orders
    def _reject(self, time: int, instrument: str, order_id: int, reason: str) -> str:
        self.rejections.append(Rejection(int(time), instrument, order_id, reason))
        return reason

    def submit(
        self,
        plan: TradePlan,
        time: int,
        step: int = 0,
        max_position_fraction: float = 1.0,
        *,
        max_holding_candles: int | None = None,
    ) -> Order | str:
        """Accept a plan decided at ``time`` (a candle's close). Returns the order, or the
        reason it was refused. ``adjust`` applies at once (returns an order record of kind
        "adjust" that is never pending); ``close`` fills at the instrument's next open."""
        inst = plan.instrument
        if inst not in self.instruments:
            return self._reject(time, inst, 0, f"unknown instrument {inst!r}")
        action = plan.action
        if action == Action.HOLD:
            return self._reject(time, inst, 0, "hold: nothing to submit")
        if action == Action.ADJUST:
            why = self.apply_adjust(plan)
            if why is not None:
                return self._reject(time, inst, 0, why)
            target = self._positions.get(inst) or self._entries[inst].order
            return Order(self._new_id(), inst, target.side, OrderKind.ADJUST, int(time), plan)
        if action == Action.CLOSE:
            return self._submit_close(plan, time)
        if action != Action.OPEN_LONG and action != Action.OPEN_SHORT:
            return self._reject(time, inst, 0, f"unknown action {action!r}")
        why = entry_problem(plan, max_position_fraction)
        if why is not None:
            return self._reject(time, inst, 0, why)
        if inst in self._positions and inst not in self._closes:
            return self._reject(time, inst, 0, f"a position on {inst} is already open")
        side = Side.LONG if action == Action.OPEN_LONG else Side.SHORT
        holding = (
            self.config.max_holding_candles if max_holding_candles is None else max_holding_candles
        )
        replaced = self._entries.pop(inst, None)
        if replaced is not None:
            self._reject(time, inst, replaced.order.id, "replaced by a newer order")
        entry = plan.entry_price
        order = Order(  # (positional: the fields in their order)
            self._new_id(),
            inst,
            side,
            OrderKind.MARKET if entry is None else OrderKind.LIMIT,
            int(time),
            plan,
            None if entry is None else float(entry),
        )
        self._entries[inst] = _Pending(order, False, float(max_position_fraction), int(holding))
        return order

    def _new_id(self) -> int:
        oid = self._next_id
        self._next_id += 1
        return oid

    def _submit_close(self, plan: TradePlan, time: int) -> Order | str:
        inst = plan.instrument
        cancelled = self._entries.pop(inst, None)
        if cancelled is not None:
            self._reject(time, inst, cancelled.order.id, "cancelled by a close plan")
        if inst not in self._positions:
            msg = f"no open position on {inst}"
            if cancelled is not None:
                msg += f"; pending order {cancelled.order.id} cancelled"
            return self._reject(time, inst, 0, msg)
        pos = self._positions[inst]
        order = Order(self._new_id(), inst, pos.side, OrderKind.MARKET, int(time), plan)
        self._closes[inst] = _Pending(order, True, 1.0, 0)
        return order

    def apply_adjust(self, plan: TradePlan) -> str | None:
        """Move the stop / target / trailing of the open position (or of the pending entry
        order) on ``plan.instrument``; a None field is left as it is. Returns the reason
        when refused (wrong side of the latest price, no position), else None."""
        inst = plan.instrument
        pos = self._positions.get(inst)
        for name in ("stop_loss", "take_profit"):
            v = getattr(plan, name)
            if v is not None and not is_price(v):
                return f"{name} must be a positive price, got {v!r}"
        if pos is None:
            pend = self._entries.get(inst)
            if pend is None:
                return f"no open position or pending order on {inst} to adjust"
            new_plan = replace(
                pend.order.plan,
                stop_loss=plan.stop_loss
                if plan.stop_loss is not None
                else pend.order.plan.stop_loss,
                take_profit=(
                    plan.take_profit
                    if plan.take_profit is not None
                    else pend.order.plan.take_profit
                ),
                trailing=plan.trailing if plan.trailing is not None else pend.order.plan.trailing,
            )
            why = entry_problem(new_plan, pend.max_position_fraction)
            if why is not None:
                return why
            pend.order = replace(pend.order, plan=new_plan)
            return None
        last = self._marks.get(inst, pos.entry_price)
        long = pos.sign > 0
        if plan.stop_loss is not None and (
            plan.stop_loss >= last if long else plan.stop_loss <= last
        ):
            return f"stop {plan.stop_loss} is on the wrong side of the price {last}"
        if plan.take_profit is not None and (
            plan.take_profit <= last if long else plan.take_profit >= last
        ):
            return f"take profit {plan.take_profit} is on the wrong side of the price {last}"
        spec = plan.trailing
        if spec is not None:
            if spec.mode == TrailingMode.ATR and spec.atr is None:
                if pos.trailing is None or pos.trailing.atr is None:
                    return "an ATR trailing stop needs its atr value to adjust a position"
                spec = replace(spec, atr=pos.trailing.atr)
            # (what entry_problem says of a plan that is the position with this trailing)
            why = trailing_problem(spec)
            if why is not None:
                return why
            new_level = _trail_level(spec, pos.sign, pos.entry_price, pos.extreme)
            old = pos.trail_stop
            if old is not None and (
                new_level is None or (new_level < old if long else new_level > old)
            ):
                # DESIGN.md rule 4: an adjust may tighten a trail, never loosen it. (No
                # levels in the text: it must read the same whether quiet candles were
                # stepped through or skipped.)
                what = "no trail yet" if new_level is None else "a looser trail"
                return f"a trail never moves back: the new trailing would give {what}"
        if plan.stop_loss is not None:
            pos.stop_loss = float(plan.stop_loss)
        if plan.take_profit is not None:
            pos.take_profit = float(plan.take_profit)
        if spec is not None:
            # A new trail starts from the position's extreme so far, never looser than the
            # trail it replaces (checked above).
            pos.trailing = spec
            pos.trail_stop = _trail_from_extreme(pos, pos.extreme)
        return None

    # ------------------------------------------------------------------ fills
    def _slip(self, price: float, buy: bool) -> float:
        return price * (1.0 + self.slip_rate) if buy else price * (1.0 - self.slip_rate)

    def _exit(
        self, pos: _Pos, time: int, price: float, reason: ExitReason, ambiguous: bool, order_id: int
    ) -> Fill:
        qty, sign, inst, entry_fee = pos.qty, pos.sign, pos.instrument, pos.entry_fee
        fee = qty * price * self.fee_rate
        gross = sign * (price - pos.entry_price) * qty
        self.cash += pos.margin + gross - fee
        time = int(time)
        side = FillSide.SELL if sign > 0 else FillSide.BUY
        # (positional: the fields in their order)
        fill = Fill(time, inst, order_id, side, qty, price, fee, _REASON_TEXT[reason], ambiguous)
        self.fills.append(fill)
        self.trades.append(
            Trade(
                inst,
                pos.side,
                pos.entry_time,
                pos.entry_price,
                time,
                price,
                qty,
                gross - entry_fee - fee,
                entry_fee + fee,
                reason,
                ambiguous,
            )
        )
        del self._positions[inst]
        self._closes.pop(inst, None)
        return fill

    def close_position(
        self, instrument: str, time: int, price: float, reason: str | ExitReason = "signal"
    ) -> Fill | None:
        """Close now at ``price`` (a market fill: slippage applies). None if flat."""
        pos = self._positions.get(instrument)
        if pos is None:
            return None
        self._marks[instrument] = float(price)
        fill_price = self._slip(float(price), buy=pos.sign < 0)
        return self._exit(pos, time, fill_price, ExitReason(reason), False, pos.order_id)

    def close_all(
        self, time: int, prices: Mapping[str, float], reason: str | ExitReason = "end_of_data"
    ) -> list[Fill]:
        """Cancel every pending order and close every position (in instrument order)."""
        for pend in [*self._entries.values(), *self._closes.values()]:
            self._reject(time, pend.order.instrument, pend.order.id, f"cancelled: {reason}")
        self._entries.clear()
        self._closes.clear()
        out = []
        for name in sorted(self._positions):
            price = prices.get(name, self._marks.get(name, self._positions[name].entry_price))
            fill = self.close_position(name, time, float(price), reason)
            if fill is not None:
                out.append(fill)
        return out

    def _open(
        self,
        pend: _Pending,
        index: int,
        time: int,
        price: float,
        atr: float,
        market_price: float,
    ) -> Fill | str:
        """Open a position at ``price`` (the fill price); ``market_price`` is the price
        the market traded at (the open, before slippage), checked against stop/target."""
        order = pend.order
        plan = order.plan
        long = order.side == Side.LONG
        sign = 1.0 if long else -1.0
        stop, target = plan.stop_loss, plan.take_profit
        ref = market_price
        if stop is not None and (ref <= stop if long else ref >= stop):
            return f"the market at {ref} is already beyond the stop {stop}"
        if target is not None and (ref >= target if long else ref <= target):
            return f"the market at {ref} is already beyond the take profit {target}"
        if stop is not None and (price <= stop if long else price >= stop):
            return f"the fill price {price} would be beyond the stop {stop}"
        equity = self.equity()
        if plan.size_mode == SizeMode.RISK:
            qty = equity * plan.size / abs(price - float(stop))  # type: ignore[arg-type]
        else:
            qty = equity * plan.size / price
        # (``if cap < qty: qty = cap`` is ``qty = min(qty, cap)``, NaN included)
        cap = pend.max_position_fraction * equity / price
        if cap < qty:
            qty = cap
        leverage = self.config.leverage
        per_unit = price * (1.0 / leverage + self.fee_rate)
        cap = self.cash / per_unit
        if cap < qty:
            qty = cap
        if not math.isfinite(qty) or qty <= 0:
            return f"no cash to open (cash {self.cash:.2f}, equity {equity:.2f})"
        trailing = plan.trailing
        if trailing is not None and trailing.mode == TrailingMode.ATR and trailing.atr is None:
            if not is_price(atr):
                return "an ATR trailing stop needs an ATR value at fill time"
            trailing = replace(trailing, atr=float(atr))
        notional = qty * price
        fee = notional * self.fee_rate
        margin = notional / leverage
        self.cash -= margin + fee
        time = int(time)
        inst, oid = order.instrument, order.id
        self._positions[inst] = _Pos(  # (positional: the fields in their order)
            inst,
            order.side,
            sign,
            qty,
            price,
            time,
            index,
            oid,
            margin,
            fee,
            None if stop is None else float(stop),
            None if target is None else float(target),
            trailing,
            None,  # trail_stop
            price,  # extreme
            pend.max_holding,
            index,  # last_index
        )
        fill = Fill(
            time, inst, oid, FillSide.BUY if long else FillSide.SELL, qty, price, fee, "entry"
        )
        self.fills.append(fill)
        return fill

    def on_candle(
        self,
        instrument: str,
        index: int,
        open_time: int,
        close_time: int,
        open: float,
        high: float,
        low: float,
        close: float,
        atr: float = math.nan,
    ) -> list[Fill]:
        """Process one candle of ``instrument`` (its candle ``index``); returns its fills.

        The three phases in order; with several instruments in one step the engine runs
        each phase for every instrument before the next (``DESIGN.md`` rule 6), so that
        nothing inside one candle pays for a fill at another's open."""
        fills = self.on_open_exits(instrument, index, open_time, close_time, open)
        fills += self.on_open_entries(instrument, index, open_time, open, atr)
        fills += self.on_inside(
            instrument, index, open_time, close_time, open, high, low, close, atr
        )
        return fills

    def on_open_exits(
        self, instrument: str, index: int, open_time: int, close_time: int, open: float
    ) -> list[Fill]:
        """Phase 1, at the candle's open: the holding limit, a pending close and a stop or
        target the open gapped through."""
        o = float(open)
        self._marks[instrument] = o
        pos = self._positions.get(instrument)
        if pos is not None and index > pos.last_index + 1:
            self._catch_up(pos, index)

        close = self._closes.get(instrument)
        if close is not None and close.first_index is None:
            _arm(close, index, open_time, close_time)
        pend = self._entries.get(instrument)
        if pend is not None and pend.first_index is None:
            _arm(pend, index, open_time, close_time)
        if pos is None and close is None:
            return []

        fills: list[Fill] = []
        if pos is not None and pos.max_holding > 0 and index >= pos.entry_index + pos.max_holding:
            fills.append(
                self._exit(
                    pos,
                    open_time,
                    self._slip(o, pos.sign < 0),
                    ExitReason.TIME_LIMIT,
                    False,
                    pos.order_id,
                )
            )
            pos = None
            close = None  # (the exit dropped the pending close)
        pend = close
        if pend is not None and pend.first_index is not None:
            del self._closes[instrument]
            if pos is not None:
                price = self._slip(o, pos.sign < 0)
                fills.append(
                    self._exit(pos, open_time, price, ExitReason.SIGNAL, False, pend.order.id)
                )
                pos = None
        if pos is not None:
            fill = self._exit_at_open(pos, o, open_time)
            if fill is not None:
                fills.append(fill)
        return fills

    def on_open_entries(
        self, instrument: str, index: int, open_time: int, open: float, atr: float = math.nan
    ) -> list[Fill]:
        """Phase 2, at the open: a pending entry that fills there (market, or a limit the
        open is through), sized with the cash every phase-1 exit freed; an expired limit
        goes."""
        o = float(open)
        pend = self._entries.get(instrument)
        if pend is None or pend.first_index is None or instrument in self._positions:
            return []
        order = pend.order
        exp = order.plan.expiry_candles
        if order.kind == OrderKind.LIMIT and exp is not None and index >= pend.first_index + exp:
            del self._entries[instrument]
            self._reject(open_time, instrument, order.id, f"expired after {exp} candles")
            return []
        long = order.side == Side.LONG
        if order.kind == OrderKind.MARKET:
            price = self._slip(o, buy=long)
        else:
            limit = float(order.limit_price)  # type: ignore[arg-type]
            if not ((o <= limit) if long else (o >= limit)):
                return []  # it may still fill inside the candle (phase 3)
            price = o
        del self._entries[instrument]
        result = self._open(pend, index, open_time, price, atr, o)
        if isinstance(result, str):
            self._reject(open_time, instrument, order.id, result)
            return []
        fills = [result]
        exit_fill = self._exit_at_open(self._positions[instrument], o, open_time)
        if exit_fill is not None:
            fills.append(exit_fill)
        return fills

    def on_inside(
        self,
        instrument: str,
        index: int,
        open_time: int,
        close_time: int,
        open: float,
        high: float,
        low: float,
        close: float,
        atr: float = math.nan,
    ) -> list[Fill]:
        """Phase 3, inside the candle (recorded at its close): a limit entry the candle
        trades through, then stop and target against high and low, then the trail's
        ratchet from the candle's extreme."""
        fills: list[Fill] = []
        o, h, lo, c = float(open), float(high), float(low), float(close)
        pos = self._positions.get(instrument)
        entered_inside = False
        pend = self._entries.get(instrument)
        if pend is not None and pend.first_index is not None and pos is None:
            order = pend.order
            long = order.side == Side.LONG
            limit = float(order.limit_price)  # type: ignore[arg-type]
            if order.kind == OrderKind.LIMIT and ((lo <= limit) if long else (h >= limit)):
                del self._entries[instrument]
                result = self._open(pend, index, close_time, limit, atr, limit)
                if isinstance(result, str):
                    self._reject(close_time, instrument, order.id, result)
                else:
                    fills.append(result)
                    pos = self._positions[instrument]
                    entered_inside = True
        if pos is not None:
            fill = self._exit_inside(pos, o, h, lo, close_time, entered_inside)
            if fill is not None:
                fills.append(fill)
            else:
                ext = c if entered_inside else (h if pos.sign > 0 else lo)
                self._ratchet(pos, ext)
                pos.last_index = index
        self._marks[instrument] = c
        return fills

    def _ratchet(self, pos: _Pos, extreme: float) -> None:
        # (``b if b > a else a`` is ``max(a, b)``, NaN included; likewise for min)
        long = pos.sign > 0
        ext = pos.extreme
        if (extreme > ext) if long else (extreme < ext):
            pos.extreme = ext = extreme
        spec = pos.trailing
        if spec is None:
            return
        level = _trail_level(spec, pos.sign, pos.entry_price, ext)
        if level is not None:
            trail = pos.trail_stop
            if trail is None or ((level > trail) if long else (level < trail)):
                pos.trail_stop = level

    def _catch_up(self, pos: _Pos, index: int) -> None:
        """Ratchet over candles the engine skipped (quiet by next_event_index)."""
        first = pos.last_index + 1
        if index <= first:
            return
        arrays = self._arrays.get(pos.instrument)
        if arrays is None:
            return
        long = pos.sign > 0
        seg = arrays[0][first:index] if long else arrays[1][first:index]
        if len(seg):
            values = seg.tolist() if len(seg) <= _SHORT else None
            # a few values: Python's max, unless one is NaN (numpy's max propagates it)
            if values is not None and (total := sum(values)) == total:
                extreme = max(values) if long else min(values)
            else:
                extreme = float(_MAX(seg) if long else _MIN(seg))
            self._ratchet(pos, extreme)
        pos.last_index = index - 1

    def _active_stop(self, pos: _Pos) -> tuple[float | None, ExitReason]:
        """The stop that counts: the trail once it is tighter than the stop loss."""
        stop, trail = pos.stop_loss, pos.trail_stop
        if trail is not None and (
            stop is None or ((trail > stop) if pos.sign > 0 else (trail < stop))
        ):
            return trail, ExitReason.TRAILING
        return stop, ExitReason.STOP

    def _exit_at_open(self, pos: _Pos, o: float, open_time: int) -> Fill | None:
        """A stop or target the open gapped through fills at the open."""
        long = pos.sign > 0
        stop, reason = self._active_stop(pos)
        if stop is not None and (o <= stop if long else o >= stop):
            return self._exit(pos, open_time, self._slip(o, not long), reason, False, pos.order_id)
        target = pos.take_profit
        if target is not None and (o >= target if long else o <= target):
            return self._exit(pos, open_time, o, ExitReason.TAKE_PROFIT, False, pos.order_id)
        return None

    def _exit_inside(
        self,
        pos: _Pos,
        o: float,
        h: float,
        lo: float,
        close_time: int,
        entered_inside: bool,
    ) -> Fill | None:
        """Stop and target against the candle's high and low (the open is past)."""
        long = pos.sign > 0
        stop, reason = self._active_stop(pos)
        target = None if entered_inside else pos.take_profit
        stop_hit = stop is not None and (lo <= stop if long else h >= stop)
        target_hit = target is not None and (h >= target if long else lo <= target)
        if stop_hit and target_hit:
            take_target = False
            if self.config.intrabar == "open_distance":
                to_target = (h - o) if long else (o - lo)
                to_stop = (o - lo) if long else (h - o)
                take_target = to_target < to_stop
            if take_target:
                return self._exit(
                    pos, close_time, float(target), ExitReason.TAKE_PROFIT, True, pos.order_id
                )
            return self._exit(
                pos, close_time, self._slip(float(stop), not long), reason, True, pos.order_id
            )
        if stop_hit:
            return self._exit(
                pos, close_time, self._slip(float(stop), not long), reason, False, pos.order_id
            )
        if target_hit:
            return self._exit(
                pos, close_time, float(target), ExitReason.TAKE_PROFIT, False, pos.order_id
            )
        return None

    # ------------------------------------------------------------------ event search
    def next_event_index(
        self,
        instrument: str,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        start: int,
        stop: int,
    ) -> int:
        """The first candle index in ``[start, stop)`` at which ``on_candle`` could do
        anything for ``instrument`` (fill, expire, trigger an exit, hit the holding limit),
        else ``stop``. Never later than the true event; may be earlier (then that candle
        simply does nothing). The arrays are the instrument's whole columns, indexed by
        candle index; candles before ``start`` must all have been processed or skipped as
        quiet (the broker ratchets trailing stops over skipped candles from them).

        One compiled pass over the candles (``engine.broker.event_search``), stopping at the
        first candle that may trigger: a quiet stretch costs one call whatever its length."""
        self._arrays[instrument] = (high, low)
        start, stop = int(start), int(stop)
        if start >= stop:
            return stop
        if instrument in self._closes:
            return start
        pend = self._entries.get(instrument)
        pos = self._positions.get(instrument)
        if pos is None and pend is None:
            return stop
        if pos is not None:
            limit = stop
            if pos.max_holding > 0:
                limit = min(limit, max(start, pos.entry_index + pos.max_holding))
            return _first_exit(pos, high, low, start, limit)
        if pend.order.kind == OrderKind.MARKET or pend.first_index is None:  # type: ignore[union-attr]
            return start
        order = pend.order  # type: ignore[union-attr]
        limit = stop
        exp = order.plan.expiry_candles
        if exp is not None:
            limit = min(limit, max(start, pend.first_index + exp))  # type: ignore[union-attr]
        if order.limit_price is None:
            return limit
        return int(
            lazy_module(_EVENT_SEARCH).first_touch(
                high, low, start, limit, order.side == Side.LONG, order.limit_price, _EVENT_TOL
            )
        )
