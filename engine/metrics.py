"""Performance metrics of a backtest, overall and per instrument.

Definitions (percentages are in percent; ratios are plain numbers; times in ns):

- The equity curve is ``equity_values`` sampled at ``equity_times`` (one sample per
  step, after the step). ``initial_cash`` is the equity before the first sample, so the
  per-period returns are ``r_i = E_i / E_{i-1} - 1`` with ``E_{-1} = initial_cash``.
- ``total_return_pct = (E_last / initial_cash - 1) * 100`` (backtesting.py "Return").
- ``buy_hold_return_pct = (close_last / close_first - 1) * 100`` of ``benchmark_close``
  (backtesting.py "Buy & Hold Return"); with several instruments, the mean of theirs
  (an equal-weight basket bought at the start).
- ``max_drawdown_pct = -max(1 - E / running_peak) * 100`` (negative or 0, as in
  backtesting.py), the running peak starting at ``initial_cash``.
  ``max_drawdown_duration_ns``: the longest time from a sample at a peak to the next
  sample at a new peak (or to the last sample if never recovered): backtesting.py's
  "Max. Drawdown Duration". ``max_drawdown_duration_bars`` is the same in samples.
- Annualisation is by the calendar time the window covers, for 24/7 markets: a year is
  365 days, ``elapsed_ns`` runs from the first candle's open to the last sample (the
  last candle's close), and ``bars_per_year = n * 365 days / elapsed`` is how many
  samples a year holds at the rate this run had them. Data with gaps therefore has fewer
  samples per year than its timeframe suggests; counting samples as if there were none
  would overstate every annual figure. ``annual_return_pct = ((E_last / initial_cash)
  ** (365 days / elapsed) - 1) * 100`` (compound growth over the elapsed time);
  ``annual_volatility_pct = std(r, ddof=1) * sqrt(bars_per_year) * 100``.
- ``sharpe = mean(r) / std(r, ddof=1) * sqrt(bars_per_year)`` (risk-free rate 0).
  ``sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year)``.
  ``calmar = annual_return / |max_drawdown|`` (as fractions). NaN when undefined
  (flat equity, no drawdown, fewer than two samples).
  These use per-bar returns; backtesting.py resamples to daily returns first, so its
  Sharpe/Sortino/Calmar differ (by design) from these.
- Trades: ``n_trades``; ``win_rate_pct`` = share of trades with net pnl > 0;
  ``profit_factor`` = gross profit / gross loss of net pnls (NaN without losing
  trades); ``expectancy`` = mean net pnl per trade (currency); ``expectancy_pct`` =
  mean trade return, a trade's return being ``pnl / (qty * entry_price)`` (net of fees,
  backtesting.py "Expectancy"); ``best_trade_pct``, ``worst_trade_pct``;
  ``sqn = sqrt(n) * mean(pnl) / std(pnl, ddof=1)`` (Van Tharp, as backtesting.py).
- ``exposure_pct``: share of equity samples at which a position was open, a trade
  covering the samples with ``entry_time < t <= exit_time`` (the candles it was held
  through; backtesting.py also counts the exit bar).
- ``avg_holding_ns`` / ``max_holding_ns``: exit time minus entry time, and in bars.
- ``fees_paid``: the sum of every fill's fee (open positions' entry fees included);
  ``trade_fees``: the fees of the closed trades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.timeutil import timeframe_to_ns
from engine.types import Fill, Trade

YEAR_NS = 365 * 86_400 * 1_000_000_000
NAN = math.nan


def bars_per_year_for(timeframe: str | int) -> float:
    """Bars in a 365-day year for a timeframe ("1m", "5m", ...) or a bar length in ns."""
    ns = timeframe_to_ns(timeframe) if isinstance(timeframe, str) else int(timeframe)
    if ns <= 0:
        raise ValueError(f"timeframe must be positive, got {timeframe!r}")
    return YEAR_NS / ns


def _ratio(num: float, den: float) -> float:
    if den == 0 or not math.isfinite(den) or not math.isfinite(num):
        return NAN
    return float(num / den)


def _pct_change(close: np.ndarray) -> float:
    close = np.asarray(close, dtype=np.float64)
    close = close[np.isfinite(close)]
    if close.size < 1 or close[0] == 0:
        return NAN
    return float((close[-1] / close[0] - 1.0) * 100.0)


def drawdown(values: np.ndarray, initial: float) -> np.ndarray:
    """``1 - E / running_peak`` per sample (0 at a peak), the peak starting at ``initial``."""
    values = np.asarray(values, dtype=np.float64)
    # in place, one array beside the values (10M samples: 80 MB, not 400 MB at once)
    peak = np.empty(values.size + 1)
    peak[0] = initial
    peak[1:] = values
    np.maximum.accumulate(peak, out=peak)
    peak = peak[1:]
    down = ~(peak > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(values, peak, out=peak)
    np.subtract(1.0, peak, out=peak)
    peak[down] = 0.0
    return peak


def _drawdown_durations(dd: np.ndarray, times: np.ndarray) -> tuple[int, int]:
    """(longest drawdown in ns, in samples): from the last sample at a peak before it to
    the first sample back at a peak, or to the last sample if it never recovered. A
    drawdown that starts at the first sample is measured from that sample."""
    n = dd.size
    under = dd > 0
    if not under.any():
        return 0, 0
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # first sample after each run
    begin = np.maximum(starts - 1, 0)
    finish = np.minimum(ends, n - 1)
    spans_ns = times[finish] - times[begin]
    spans_bars = finish - begin
    return int(spans_ns.max()), int(spans_bars.max())


def trade_metrics(trades: Sequence[Trade]) -> dict[str, float | int]:
    """Statistics of closed trades (see the module docstring for the definitions)."""
    n = len(trades)
    pnl = np.array([t.pnl for t in trades], dtype=np.float64)
    basis = np.array([t.qty * t.entry_price for t in trades], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(basis > 0, pnl / basis, np.nan)
    hold = np.array([t.exit_time - t.entry_time for t in trades], dtype=np.int64)
    gross_win = float(pnl[pnl > 0].sum()) if n else 0.0
    gross_loss = float(-pnl[pnl < 0].sum()) if n else 0.0
    std = float(pnl.std(ddof=1)) if n > 1 else NAN
    return {
        "n_trades": n,
        "net_pnl": float(pnl.sum()) if n else 0.0,
        "win_rate_pct": float((pnl > 0).mean() * 100.0) if n else NAN,
        "profit_factor": _ratio(gross_win, gross_loss),
        "expectancy": float(pnl.mean()) if n else NAN,
        "expectancy_pct": float(np.nanmean(rets) * 100.0) if n and np.isfinite(rets).any() else NAN,
        "best_trade_pct": float(np.nanmax(rets) * 100.0) if n and np.isfinite(rets).any() else NAN,
        "worst_trade_pct": float(np.nanmin(rets) * 100.0) if n and np.isfinite(rets).any() else NAN,
        "sqn": _ratio(math.sqrt(n) * float(pnl.mean()), std) if n > 1 else NAN,
        "avg_holding_ns": float(hold.mean()) if n else NAN,
        "max_holding_ns": int(hold.max()) if n else 0,
        "trade_fees": float(sum(t.fees for t in trades)),
    }


def exposure(trades: Sequence[Trade], equity_times: np.ndarray) -> float:
    """Percent of samples ``t`` with some trade holding ``entry_time < t <= exit_time``."""
    times = np.asarray(equity_times, dtype=np.int64)
    if times.size == 0:
        return NAN
    cover = np.zeros(times.size + 1, dtype=np.int64)
    if trades:
        entries = np.array([t.entry_time for t in trades], dtype=np.int64)
        exits = np.array([t.exit_time for t in trades], dtype=np.int64)
        lo = np.searchsorted(times, entries, side="right")
        hi = np.searchsorted(times, exits, side="right")
        np.add.at(cover, lo, 1)
        np.add.at(cover, hi, -1)
    held = np.cumsum(cover[:-1], out=cover[:-1]) > 0
    return float(held.mean() * 100.0)


def instrument_metrics(
    trades: Sequence[Trade],
    fills: Sequence[Fill] | None,
    *,
    initial_cash: float,
    equity_times: np.ndarray | None = None,
    benchmark_close: Mapping[str, np.ndarray] | None = None,
    bar_ns: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per instrument: the trade statistics, ``fees_paid`` (from ``fills``, or from the
    closed trades when ``fills`` is None), ``return_contribution_pct``
    (its net pnl over ``initial_cash``), ``exposure_pct`` (over ``equity_times``) and
    ``buy_hold_return_pct`` (from ``benchmark_close[instrument]``)."""
    names = sorted(
        {t.instrument for t in trades}
        | {f.instrument for f in fills or ()}
        | set(benchmark_close or {})
    )
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [t for t in trades if t.instrument == name]
        m: dict[str, Any] = trade_metrics(mine)
        if fills is None:
            m["fees_paid"] = m["trade_fees"]
            m["n_fills"] = 0
        else:
            m["fees_paid"] = float(sum(f.fee for f in fills if f.instrument == name))
            m["n_fills"] = sum(1 for f in fills if f.instrument == name)
        m["return_contribution_pct"] = _ratio(m["net_pnl"] * 100.0, initial_cash)
        m["exposure_pct"] = exposure(mine, equity_times) if equity_times is not None else NAN
        m["avg_holding_bars"] = _ratio(m["avg_holding_ns"], bar_ns) if bar_ns else NAN
        closes = (benchmark_close or {}).get(name)
        m["buy_hold_return_pct"] = _pct_change(closes) if closes is not None else NAN
        out[name] = m
    return out


def compute_metrics(
    equity_times: np.ndarray | Sequence[int],
    equity_values: np.ndarray | Sequence[float],
    trades: Sequence[Trade] = (),
    fills: Sequence[Fill] | None = None,
    *,
    initial_cash: float,
    bars_per_year: float | None = None,
    timeframe: str | int | None = None,
    benchmark_close: np.ndarray | Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """All metrics of one run (module docstring: definitions), plus ``per_instrument``.

    ``fills`` gives ``fees_paid`` (entry fees of positions still open included); without
    them it is the fees of the closed trades. Give ``bars_per_year`` or ``timeframe``
    (the step length, e.g. "1m"); without either the median spacing of ``equity_times``
    is used. ``bars_per_year`` overrides the rate computed from the elapsed time. Never
    raises on an empty or flat run: undefined values are NaN.
    """
    times = np.asarray(equity_times, dtype=np.int64)
    values = np.asarray(equity_values, dtype=np.float64)
    if times.shape != values.shape:
        raise ValueError(f"equity_times {times.shape} and equity_values {values.shape} differ")
    initial = float(initial_cash)
    n = int(values.size)

    bar_ns: int | None = None
    if timeframe is not None:
        bar_ns = timeframe_to_ns(timeframe) if isinstance(timeframe, str) else int(timeframe)
    elif n > 1:
        bar_ns = int(np.median(np.diff(times)))
    # the window runs from the first candle's open (one bar before its sample) to the last
    elapsed = int(times[-1] - times[0]) + bar_ns if n and bar_ns and bar_ns > 0 else 0
    if bars_per_year is None:
        bars_per_year = n * YEAR_NS / elapsed if elapsed > 0 else NAN

    final = float(values[-1]) if n else initial
    m: dict[str, Any] = {
        "start": int(times[0]) if n else None,
        "end": int(times[-1]) if n else None,
        "n_bars": n,
        "elapsed_ns": elapsed,
        "bars_per_year": float(bars_per_year),
        "initial_cash": initial,
        "final_equity": final,
        "equity_peak": float(max(initial, values.max())) if n else initial,
        "total_return_pct": _ratio((final - initial) * 100.0, initial),
    }

    if isinstance(benchmark_close, Mapping):
        bh = [_pct_change(c) for c in benchmark_close.values()]
        bh = [x for x in bh if math.isfinite(x)]
        m["buy_hold_return_pct"] = float(np.mean(bh)) if bh else NAN
    elif benchmark_close is not None:
        m["buy_hold_return_pct"] = _pct_change(benchmark_close)
    else:
        m["buy_hold_return_pct"] = NAN

    dd = drawdown(values, initial)
    max_dd = float(dd.max()) if n else 0.0
    m["max_drawdown_pct"] = -max_dd * 100.0 if max_dd > 0 else 0.0
    m["max_drawdown_duration_ns"], m["max_drawdown_duration_bars"] = _drawdown_durations(dd, times)
    del dd  # before the returns: one sample-sized array at a time

    if n:
        rets = np.empty(n)  # the previous values, then in place the returns
        rets[0] = initial
        rets[1:] = values[:-1]
        flat = rets == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(values, rets, out=rets)
        rets -= 1.0
        rets[flat] = 0.0
        del flat
    else:
        rets = np.zeros(0)
    bpy = float(bars_per_year)
    root = math.sqrt(bpy) if math.isfinite(bpy) and bpy > 0 else NAN
    mean = float(rets.mean()) if n else NAN
    std = float(rets.std(ddof=1)) if n > 1 else NAN
    downside = NAN
    if n:
        losses = np.minimum(rets, 0.0)
        downside = float(np.sqrt(np.mean(np.square(losses, out=losses))))
        del losses
    growth = final / initial if initial > 0 else NAN
    annual = NAN
    if n and growth <= 0:
        annual = -1.0  # wiped out
    elif n and growth > 0 and math.isfinite(bpy):
        try:
            annual = math.exp(math.log(growth) * bpy / n) - 1.0
        except OverflowError:
            annual = math.inf
    m["annual_return_pct"] = annual * 100.0
    m["annual_volatility_pct"] = std * root * 100.0
    m["sharpe"] = _ratio(mean, std) * root if std > 0 else NAN
    m["sortino"] = _ratio(mean, downside) * root if downside > 0 else NAN
    m["calmar"] = _ratio(annual, max_dd) if max_dd > 0 else NAN

    tm = trade_metrics(trades)
    m.update(tm)
    m["exposure_pct"] = exposure(trades, times)
    m["avg_holding_bars"] = _ratio(tm["avg_holding_ns"], bar_ns) if bar_ns else NAN
    # without the fills, the fees of the closed trades
    m["fees_paid"] = tm["trade_fees"] if fills is None else float(sum(f.fee for f in fills))
    m["n_fills"] = len(fills) if fills is not None else 0
    per_bench = benchmark_close if isinstance(benchmark_close, Mapping) else None
    m["per_instrument"] = instrument_metrics(
        trades,
        fills,
        initial_cash=initial,
        equity_times=times,
        benchmark_close=per_bench,
        bar_ns=bar_ns,
    )
    return m
