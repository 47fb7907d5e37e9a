"""Metrics against hand-computed values, edge cases, and backtesting.py's definitions."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from engine.metrics import bars_per_year_for, compute_metrics, instrument_metrics
from engine.types import ExitReason, Fill, Side, Trade

M = 60_000_000_000  # one minute in ns
D = 86_400_000_000_000  # one day in ns


def trade(inst, entry_t, exit_t, pnl, qty=1.0, entry=100.0, fees=0.0, side=Side.LONG):
    exit_price = entry + (pnl + fees) / qty * (1 if side == Side.LONG else -1)
    return Trade(inst, side, entry_t, entry, exit_t, exit_price, qty, pnl, fees, ExitReason.SIGNAL)


def fill(inst, t, fee):
    return Fill(t, inst, 1, "buy", 1.0, 100.0, fee, "entry")


def test_bars_per_year_is_365_days():
    assert bars_per_year_for("1m") == 365 * 24 * 60
    assert bars_per_year_for("1d") == 365
    assert bars_per_year_for(5 * M) == 365 * 24 * 12


def test_equity_metrics_hand_computed():
    times = np.array([1, 2, 3, 4, 5]) * D
    values = np.array([1100.0, 990.0, 1045.0, 1210.0, 1100.0])
    m = compute_metrics(times, values, [], [], initial_cash=1000.0, timeframe="1d")
    # total return = 1100 / 1000 - 1 = 10%
    assert m["total_return_pct"] == pytest.approx(10.0)
    assert m["final_equity"] == 1100.0 and m["equity_peak"] == 1210.0
    # running peak 1100, 1100, 1100, 1210, 1210 -> drawdowns 0, 10%, 5%, 0, 1 - 1100/1210
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    # the first drawdown runs from the peak at day 1 to the new peak at day 4: 3 days
    assert m["max_drawdown_duration_ns"] == 3 * D
    assert m["max_drawdown_duration_bars"] == 3
    # returns 0.1, -0.1, 55/990, 165/1045, -110/1210
    r = [0.1, -0.1, 55 / 990, 165 / 1045, -110 / 1210]
    mean = sum(r) / 5
    sd = statistics.stdev(r)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    downside = math.sqrt((0.1**2 + (110 / 1210) ** 2) / 5)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(365))
    annual = 1.1 ** (365 / 5) - 1
    assert m["annual_return_pct"] == pytest.approx(annual * 100)
    assert m["annual_volatility_pct"] == pytest.approx(sd * math.sqrt(365) * 100)
    assert m["calmar"] == pytest.approx(annual / 0.10)


def test_unrecovered_drawdown_runs_to_the_end():
    times = np.arange(1, 7) * M
    values = np.array([1000.0, 1050.0, 1000.0, 990.0, 1040.0, 1045.0])
    m = compute_metrics(times, values, [], [], initial_cash=1000.0)
    # peak 1050 at minute 2, never regained: duration minute 2 -> minute 6 = 4 minutes
    assert m["max_drawdown_duration_ns"] == 4 * M
    assert m["max_drawdown_pct"] == pytest.approx(-(1 - 990 / 1050) * 100)
    assert m["bars_per_year"] == 525_600  # inferred from the 1-minute spacing


def test_trade_metrics_hand_computed():
    times = np.arange(1, 11) * M
    trades = [
        trade("A", 1 * M, 3 * M, 100.0, qty=2.0, fees=1.0),  # basis 200: +50%
        trade("B", 3 * M, 4 * M, -50.0, qty=1.0, fees=1.0),  # basis 100: -50%
        trade("A", 5 * M, 9 * M, 30.0, qty=1.0, fees=1.0),  # +30%
        trade("B", 6 * M, 7 * M, -20.0, qty=2.0, fees=1.0, side=Side.SHORT),  # -10%
    ]
    fills = [
        fill("A", 1 * M, 0.5),
        fill("A", 3 * M, 0.5),
        fill("B", 3 * M, 0.25),
        fill("C", M, 2.0),
    ]
    values = np.full(10, 1060.0)
    m = compute_metrics(times, values, trades, fills, initial_cash=1000.0, timeframe="1m")
    assert m["n_trades"] == 4
    assert m["net_pnl"] == pytest.approx(60.0)
    assert m["win_rate_pct"] == pytest.approx(50.0)
    assert m["profit_factor"] == pytest.approx(130 / 70)
    assert m["expectancy"] == pytest.approx(15.0)
    # trade returns 0.5, -0.5, 0.3, -0.1 -> mean 0.05
    assert m["expectancy_pct"] == pytest.approx(5.0)
    assert m["best_trade_pct"] == pytest.approx(50.0)
    assert m["worst_trade_pct"] == pytest.approx(-50.0)
    # pnl mean 15, deviations 85, -65, 15, -35: var = 12900 / 3 = 4300
    assert m["sqn"] == pytest.approx(2 * 15 / math.sqrt(4300))
    # holdings 2, 1, 4, 1 minutes
    assert m["avg_holding_ns"] == pytest.approx(2 * M)
    assert m["avg_holding_bars"] == pytest.approx(2.0)
    assert m["max_holding_ns"] == 4 * M
    # samples held (entry < t <= exit): 2,3 | 4 | 6,7,8,9 | 7 -> {2,3,4,6,7,8,9} = 7 of 10
    assert m["exposure_pct"] == pytest.approx(70.0)
    assert m["fees_paid"] == pytest.approx(3.25)
    assert m["n_fills"] == 4

    per = m["per_instrument"]
    assert sorted(per) == ["A", "B", "C"]
    assert per["A"]["n_trades"] == 2 and per["A"]["net_pnl"] == pytest.approx(130.0)
    assert per["A"]["win_rate_pct"] == 100.0
    assert math.isnan(per["A"]["profit_factor"])  # no losing trade
    assert per["A"]["return_contribution_pct"] == pytest.approx(13.0)
    assert per["A"]["exposure_pct"] == pytest.approx(60.0)  # samples 2, 3, 6, 7, 8, 9
    assert per["A"]["fees_paid"] == pytest.approx(1.0)
    assert per["B"]["net_pnl"] == pytest.approx(-70.0) and per["B"]["win_rate_pct"] == 0.0
    assert per["C"]["n_trades"] == 0 and per["C"]["fees_paid"] == 2.0


def test_buy_and_hold_single_and_basket():
    times = np.arange(1, 4) * M
    values = np.array([1000.0, 1000.0, 1000.0])
    single = compute_metrics(
        times, values, [], [], initial_cash=1000.0, benchmark_close=np.array([50.0, 55.0, 60.0])
    )
    assert single["buy_hold_return_pct"] == pytest.approx(20.0)
    basket = compute_metrics(
        times,
        values,
        [],
        [],
        initial_cash=1000.0,
        benchmark_close={"A": np.array([50.0, 60.0]), "B": np.array([10.0, 9.0])},
    )
    # (20% + -10%) / 2 = 5%
    assert basket["buy_hold_return_pct"] == pytest.approx(5.0)
    assert basket["per_instrument"]["B"]["buy_hold_return_pct"] == pytest.approx(-10.0)


def test_no_trades_flat_equity_is_nan_safe():
    times = np.arange(1, 6) * M
    m = compute_metrics(times, np.full(5, 500.0), [], [], initial_cash=500.0)
    assert m["total_return_pct"] == 0.0 and m["max_drawdown_pct"] == 0.0
    assert m["max_drawdown_duration_ns"] == 0 and m["n_trades"] == 0
    assert m["exposure_pct"] == 0.0 and m["fees_paid"] == 0.0
    assert m["annual_volatility_pct"] == 0.0 and m["annual_return_pct"] == 0.0
    for key in (
        "sharpe",
        "sortino",
        "calmar",
        "win_rate_pct",
        "profit_factor",
        "expectancy",
        "sqn",
    ):
        assert math.isnan(m[key]), key
    assert m["per_instrument"] == {}


def test_wiped_out_account():
    times = np.arange(1, 3) * D
    m = compute_metrics(times, np.array([500.0, 0.0]), [], [], initial_cash=1000.0)
    assert m["total_return_pct"] == -100.0 and m["annual_return_pct"] == -100.0
    assert m["max_drawdown_pct"] == -100.0 and m["calmar"] == pytest.approx(-1.0)


def test_empty_run():
    m = compute_metrics([], [], [], [], initial_cash=100.0, timeframe="5m")
    assert m["n_bars"] == 0 and m["total_return_pct"] == 0.0 and m["final_equity"] == 100.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["exposure_pct"])


def test_instrument_metrics_function():
    trades = [trade("A", M, 2 * M, 10.0)]
    per = instrument_metrics(trades, [], initial_cash=1000.0)
    assert per["A"]["return_contribution_pct"] == pytest.approx(1.0)
    assert math.isnan(per["A"]["exposure_pct"])


@pytest.mark.filterwarnings("ignore:.*dayofweek")
def test_agrees_with_backtesting_py_definitions():
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    rng = np.random.default_rng(7)
    n = 600
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.concatenate([[100.0], close[:-1]])
    df = pd.DataFrame(
        {
            "Open": opens,
            "High": np.maximum(opens, close) * 1.002,
            "Low": np.minimum(opens, close) * 0.998,
            "Close": close,
            "Volume": np.ones(n),
        },
        index=pd.date_range("2022-01-01", periods=n, freq="1h"),
    )

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(SMA, self.data.Close, 5)
            self.slow = self.I(SMA, self.data.Close, 20)

        def next(self):
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy(size=0.5)
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell(size=0.5)

    bt = Backtest(df, Cross, cash=100_000, commission=0.001, finalize_trades=True)
    stats = bt.run()
    eq = stats["_equity_curve"]["Equity"].to_numpy()
    td = stats["_trades"]
    assert len(td) > 5
    trades = [
        Trade(
            "X",
            Side.LONG if r.Size > 0 else Side.SHORT,
            pd.Timestamp(r.EntryTime).value,
            r.EntryPrice,
            pd.Timestamp(r.ExitTime).value,
            r.ExitPrice,
            abs(r.Size),
            r.PnL,
            r.Commission,
            ExitReason.SIGNAL,
        )
        for r in td.itertuples()
    ]
    times = df.index.as_unit("ns").asi8  # pandas 3 defaults to microseconds
    warm = 19  # backtesting.py measures buy and hold from the first bar all indicators exist
    m = compute_metrics(
        times, eq, trades, [], initial_cash=eq[0], timeframe="1h", benchmark_close=close[warm:]
    )
    assert m["total_return_pct"] == pytest.approx(stats["Return [%]"], rel=1e-12)
    assert m["buy_hold_return_pct"] == pytest.approx(stats["Buy & Hold Return [%]"], rel=1e-12)
    assert m["max_drawdown_pct"] == pytest.approx(stats["Max. Drawdown [%]"], rel=1e-12)
    assert m["max_drawdown_duration_ns"] == stats["Max. Drawdown Duration"].value
    assert m["n_trades"] == stats["# Trades"]
    assert m["win_rate_pct"] == pytest.approx(stats["Win Rate [%]"], rel=1e-12)
    assert m["expectancy_pct"] == pytest.approx(stats["Expectancy [%]"], rel=1e-9)
    assert m["best_trade_pct"] == pytest.approx(stats["Best Trade [%]"], rel=1e-9)
    assert m["worst_trade_pct"] == pytest.approx(stats["Worst Trade [%]"], rel=1e-9)
    assert m["sqn"] == pytest.approx(stats["SQN"], rel=1e-9)
    assert m["avg_holding_ns"] == pytest.approx(stats["Avg. Trade Duration"].value, abs=3.6e12)
    assert m["equity_peak"] == pytest.approx(stats["Equity Peak [$]"])
    assert m["fees_paid"] == 0.0  # an empty fills list: no fees
    assert m["trade_fees"] == pytest.approx(stats["Commissions [$]"])
    # without fills the fees are the closed trades' fees
    m2 = compute_metrics(times, eq, trades, initial_cash=eq[0])
    assert m2["fees_paid"] == pytest.approx(stats["Commissions [$]"])
    assert m2["per_instrument"]["X"]["fees_paid"] == pytest.approx(stats["Commissions [$]"])


def test_annualised_by_the_calendar_time_covered_not_the_sample_count():
    # 20 daily candles spread over 30 days (gaps): the first opens on day 0, the last
    # closes on day 30; equity ends 10% up, rising in equal steps of 5 then flat.
    close_days = [1, 2, 3, 5, 6, 8, 9, 10, 13, 14, 15, 17, 18, 20, 22, 24, 25, 27, 29, 30]
    times = np.array(close_days) * D
    values = np.array([1000.0 + 5 * (i + 1) for i in range(20)])
    values[-1] = 1100.0
    m = compute_metrics(times, values, [], [], initial_cash=1000.0, timeframe="1d")
    assert m["elapsed_ns"] == 30 * D
    annual = 1.1 ** (365 / 30) - 1
    assert annual == pytest.approx(2.1887, abs=1e-4)  # the 218.87%, not 469.40%
    assert m["annual_return_pct"] == pytest.approx(annual * 100)
    assert m["bars_per_year"] == pytest.approx(20 * 365 / 30)
    prev = np.concatenate([[1000.0], values[:-1]])
    r = values / prev - 1
    sd = statistics.stdev(r)
    assert m["sharpe"] == pytest.approx(r.mean() / sd * math.sqrt(20 * 365 / 30))
    assert m["annual_volatility_pct"] == pytest.approx(sd * math.sqrt(20 * 365 / 30) * 100)


def test_gappy_minutes_do_not_overstate_sharpe():
    # 2,469 one-minute samples over 3,560 minutes: the rate is 2469/3560 of a gapless file's
    rng = np.random.default_rng(3)
    offsets = np.sort(rng.choice(np.arange(1, 3560), size=2467, replace=False))
    times = np.concatenate([[1], offsets + 1, [3560]]) * M
    values = 1000.0 * np.cumprod(1 + rng.normal(0.0001, 0.001, times.size))
    m = compute_metrics(times, values, [], [], initial_cash=1000.0, timeframe="1m")
    gapless = compute_metrics(times, values, [], [], initial_cash=1000.0, bars_per_year=525_600)
    assert m["elapsed_ns"] == 3560 * M and m["n_bars"] == 2469
    assert gapless["sharpe"] / m["sharpe"] == pytest.approx(math.sqrt(3560 / 2469))
    assert gapless["sharpe"] / m["sharpe"] == pytest.approx(1.2008, abs=1e-4)
