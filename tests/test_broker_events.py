"""next_event_index: processing only the candles it returns gives exactly the fills,
trades and refusals of processing every candle (the engine's fast path relies on it)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.broker import Broker, BrokerConfig
from engine.types import Action, TradePlan, TrailingSpec

X = "XUSD"


@st.composite
def candles(draw):
    n = draw(st.integers(10, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # half-unit prices make exact touches of stops and limits common
    close = 100.0 + 0.5 * np.cumsum(rng.integers(-4, 5, n))
    opens = np.concatenate([[100.0], close[:-1]]) + 0.5 * rng.integers(-2, 3, n)
    hi = np.maximum(opens, close) + 0.5 * rng.integers(0, 4, n)
    lo = np.minimum(opens, close) - 0.5 * rng.integers(0, 4, n)
    return opens, hi, lo, close


@st.composite
def plans(draw, n: int, instruments: tuple[str, ...] = ("XUSD",)):
    schedule = {}
    for idx in draw(st.lists(st.integers(0, n - 1), max_size=12, unique=True)):
        inst = draw(st.sampled_from(instruments))
        action = draw(
            st.sampled_from([Action.OPEN_LONG, Action.OPEN_SHORT, Action.CLOSE, Action.ADJUST])
        )
        sign = 1 if action == Action.OPEN_LONG else -1
        off = lambda: 0.5 * draw(st.integers(1, 12))  # noqa: E731
        ref = 100.0
        limit = draw(st.one_of(st.none(), st.just(ref - sign * off())))
        base = limit if limit is not None else ref
        trailing = draw(
            st.one_of(
                st.none(),
                st.builds(
                    TrailingSpec,
                    st.just("percent"),
                    st.sampled_from([0.01, 0.02, 0.05]),
                    st.sampled_from([0.0, 0.01, 0.03]),
                ),
                st.builds(
                    TrailingSpec,
                    st.just("atr"),
                    st.sampled_from([1.0, 2.0]),
                    st.sampled_from([0.0, 1.0]),
                    st.sampled_from([None, 1.5]),
                ),
            )
        )
        stop = draw(st.one_of(st.none(), st.just(base - sign * off())))
        target = draw(st.one_of(st.none(), st.just(base + sign * off())))
        if action == Action.ADJUST:
            plan = TradePlan(inst, action, stop_loss=None, take_profit=None, trailing=trailing)
        elif action == Action.CLOSE:
            plan = TradePlan(inst, action)
        else:
            plan = TradePlan(
                inst,
                action,
                entry_price=limit,
                size=0.3,
                size_mode="equity",
                stop_loss=stop,
                take_profit=target,
                trailing=trailing,
                expiry_candles=draw(st.one_of(st.none(), st.integers(1, 5))),
            )
        schedule[idx] = (plan, draw(st.sampled_from([0, 0, 3, 7])))
    return schedule


def _submit(b: Broker, i: int, close: np.ndarray, schedule: dict) -> None:
    plan, holding = schedule[i]
    b.catch_up(X, i)  # as the engine's run() does before asking the brain
    b.mark({X: float(close[i])})
    b.submit(plan, 60 * (i + 1), i, 0.9, max_holding_candles=holding)


def _feed(b: Broker, i: int, o, h, lo, c) -> None:
    b.on_candle(X, i, 60 * i, 60 * (i + 1), o[i], h[i], lo[i], c[i], 1.0 + 0.1 * (i % 5))


def _run_stepping(cfg, data, schedule):
    o, h, lo, c = data
    b = Broker(cfg, [X])
    for i in range(len(o)):
        _feed(b, i, o, h, lo, c)
        if i in schedule:
            _submit(b, i, c, schedule)
    b.close_all(60 * len(o), {X: float(c[-1])})
    return b


def _skip_quiet(n, schedule, window, next_event, process, submit) -> list[int]:
    """Drive a broker as the engine's run() does: process only the steps next_event
    returns, searching at most ``window`` steps at a time and resuming from where a quiet
    search ended without processing anything (so skipped candles move trailing stops);
    submit each scheduled plan after its step. Returns the processed steps."""
    processed = []
    i = 0
    while i < n:
        s = min((k for k in schedule if k >= i), default=n)
        bound = min(s + 1, n, i + window)
        e = next_event(i, bound)
        assert i <= e <= bound
        if e < bound:
            process(e)
            processed.append(e)
            if e == s:
                submit(s)
            i = e + 1
        elif bound == s + 1:
            submit(s)
            i = s + 1
        elif bound == n:
            break
        else:
            i = bound
    return processed


def _run_skipping(cfg, data, schedule, window=64):
    o, h, lo, c = data
    n = len(o)
    b = Broker(cfg, [X])
    processed = _skip_quiet(
        n,
        schedule,
        window,
        lambda i, bound: b.next_event_index(X, o, h, lo, i, bound),
        lambda i: _feed(b, i, o, h, lo, c),
        lambda i: _submit(b, i, c, schedule),
    )
    b.close_all(60 * n, {X: float(c[-1])})
    return b, processed


@settings(max_examples=120, deadline=None)
@given(
    data=candles(),
    seed=st.data(),
    intrabar=st.sampled_from(["stop_first", "open_distance"]),
    window=st.sampled_from([1, 3, 64, 1000]),
)
def test_skipping_quiet_candles_gives_identical_results(data, seed, intrabar, window):
    schedule = seed.draw(plans(len(data[0])))
    cfg = BrokerConfig(fees_bps=7.0, slippage_bps=3.0, intrabar=intrabar)
    full = _run_stepping(cfg, data, schedule)
    fast, _ = _run_skipping(cfg, data, schedule, window)
    assert fast.fills == full.fills
    assert fast.trades == full.trades
    assert fast.rejections == full.rejections
    assert fast.cash == full.cash
    # the wallet balances: flat at the end, cash = initial + every trade's net pnl, and
    # the fees of the fills are the fees of the trades
    assert full.positions() == () and full.equity() == full.cash
    pnl = sum(t.pnl for t in full.trades)
    assert full.cash == pytest.approx(cfg.initial_cash + pnl, rel=1e-12, abs=1e-9)
    fees = sum(f.fee for f in full.fills)
    assert fees == pytest.approx(sum(t.fees for t in full.trades), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("gap", [1, 5, 32, 33, 200])
@pytest.mark.parametrize("nan_at", [None, 0, 2])
def test_trail_catch_up_takes_numpys_extreme_over_any_gap(monkeypatch, gap, nan_at):
    """Up to 32 skipped candles, the catch-up takes their extreme in Python; the trail it
    leaves is numpy's, bit for bit, a NaN among them included (numpy's max keeps it)."""
    import engine.broker.broker as broker_module

    n = gap + 10
    rng = np.random.default_rng(gap)
    h = 100.0 + rng.random(n) * 3
    lo = h - 2.0
    if nan_at is not None:
        h[2 + nan_at] = math.nan
    o = h - 1.0

    def after_catch_up(short: int) -> tuple[float, float | None]:
        monkeypatch.setattr(broker_module, "_SHORT", short)
        b = Broker(BrokerConfig(fees_bps=0, slippage_bps=0), [X])
        trail = TrailingSpec("percent", 0.01)
        b.submit(TradePlan(X, Action.OPEN_LONG, size=0.5, size_mode="equity", trailing=trail), 0)
        b.next_event_index(X, o, h, lo, 1, n)  # the broker keeps the columns
        b.on_candle(X, 1, 60, 120, o[1], h[1], lo[1], 99.0)
        b.catch_up(X, 1 + gap)  # candles 2 .. 1 + gap skipped as quiet
        pos = b._positions[X]
        return pos.extreme, pos.trail_stop

    python, numpy = after_catch_up(32), after_catch_up(0)
    np.testing.assert_array_equal(np.array(python, dtype=float), np.array(numpy, dtype=float))
    if nan_at is None:
        assert python[0] == max(h[1 : 2 + gap])


def test_event_search_skips_quiet_candles():
    # a long with stop 90 and target 120 over candles ranging 95..105: nothing happens
    n = 1000
    o = np.full(n, 100.0)
    h = np.full(n, 105.0)
    lo = np.full(n, 95.0)
    lo[700] = 89.0
    b = Broker(BrokerConfig(fees_bps=0, slippage_bps=0), [X])
    b.submit(
        TradePlan(
            X, Action.OPEN_LONG, size=0.5, size_mode="equity", stop_loss=90.0, take_profit=120.0
        ),
        60,
    )
    assert b.next_event_index(X, o, h, lo, 1, n) == 1  # a pending market order: at once
    b.on_candle(X, 1, 60, 120, 100, 105, 95, 100)
    assert b.next_event_index(X, o, h, lo, 2, n) == 700
    assert b.next_event_index(X, o, h, lo, 2, 500) == 500


def test_event_search_trailing_uses_running_extreme():
    # long entered at 100 with a 5% trail; highs climb to 120 at candle 10, then the low
    # of candle 12 is 114.5 >= 120 * 0.95 = 114 (quiet) and candle 13's low 113.9 hits
    n = 20
    o = np.full(n, 100.0)
    h = np.full(n, 101.0)
    lo = np.full(n, 99.0)
    h[2:11] = np.linspace(104, 120, 9)
    lo[2:11] = h[2:11] - 4.0  # always above the trail of the previous high
    o[2:11] = h[2:11] - 2.0
    h[11:] = 116.0
    o[11:] = 115.0
    lo[11:13] = 114.5
    lo[13:] = 113.9
    b = Broker(BrokerConfig(fees_bps=0, slippage_bps=0), [X])
    b.submit(
        TradePlan(
            X,
            Action.OPEN_LONG,
            size=0.5,
            size_mode="equity",
            trailing=TrailingSpec("percent", 0.05),
        ),
        60,
    )
    b.on_candle(X, 1, 60, 120, o[1], h[1], lo[1], 100.0)
    e = b.next_event_index(X, o, h, lo, 2, n)
    assert e == 13
    (fill,) = b.on_candle(X, 13, 780, 840, o[13], h[13], lo[13], 115.0)
    assert fill.reason == "trailing" and fill.price == 120.0 - 0.05 * 120.0


Y = "YUSD"


def _step(b: Broker, t: int, cols: dict) -> None:
    """One merged step over two instruments, marking prices as the engine does: the
    other instruments at their previous close, each at its open while later ones fill."""
    if t > 0:
        b.mark({k: float(v[3][t - 1]) for k, v in cols.items()})
    for name in sorted(cols):
        o, h, lo, c = cols[name]
        b.on_candle(name, t, 60 * t, 60 * (t + 1), o[t], h[t], lo[t], c[t], 1.0)
        b.mark({name: float(o[t])})
    b.mark({k: float(v[3][t]) for k, v in cols.items()})


def _submit2(b: Broker, t: int, cols: dict, schedule: dict) -> None:
    plan, holding = schedule[t]
    for name in cols:  # as the engine's run() does before asking the brain
        b.catch_up(name, t)
    b.mark({k: float(v[3][t]) for k, v in cols.items()})
    b.submit(plan, 60 * (t + 1), t, 0.9, max_holding_candles=holding)


@settings(max_examples=60, deadline=None)
@given(x=candles(), y=candles(), seed=st.data())
def test_two_instruments_share_the_wallet_and_skip_exactly(x, y, seed):
    n = min(len(x[0]), len(y[0]))
    cols = {X: tuple(a[:n] for a in x), Y: tuple(a[:n] * 0.01 for a in y)}
    schedule = seed.draw(plans(n, (X, Y)))
    # Y trades near 1.0: rescale its plan prices
    for k, (plan, hold) in list(schedule.items()):
        if plan.instrument == Y:
            f = 0.01
            tr = plan.trailing
            if tr is not None and tr.atr is not None:
                tr = replace(tr, atr=tr.atr * f)
            plan = replace(
                plan,
                entry_price=None if plan.entry_price is None else plan.entry_price * f,
                stop_loss=None if plan.stop_loss is None else plan.stop_loss * f,
                take_profit=None if plan.take_profit is None else plan.take_profit * f,
                trailing=tr,
                size=0.9,  # with X at 0.3 the wallet runs short: the cash cap bites
            )
            schedule[k] = (plan, hold)
    cfg = BrokerConfig(fees_bps=10.0, slippage_bps=2.0)
    full = Broker(cfg, [X, Y])
    for t in range(n):
        _step(full, t, cols)
        if t in schedule:
            _submit2(full, t, cols, schedule)
    fast = Broker(cfg, [X, Y])
    _skip_quiet(
        n,
        schedule,
        2,  # short searches: resume from quiet horizons
        lambda i, bound: min(fast.next_event_index(k, *v[:3], i, bound) for k, v in cols.items()),
        lambda t: _step(fast, t, cols),
        lambda t: _submit2(fast, t, cols, schedule),
    )
    last = {k: float(v[3][-1]) for k, v in cols.items()}
    full.close_all(60 * n, last)
    fast.close_all(60 * n, last)
    assert fast.fills == full.fills
    assert fast.trades == full.trades
    assert fast.rejections == full.rejections
    assert fast.cash == full.cash
