"""Cross-check against backtesting.py 0.6.6 on the real 1-minute BTC file.

The configuration both engines can express exactly:

- entries on an EMA crossover (fast 9 / slow 21 over the close, TA-Lib convention: seeded
  with the SMA of the first ``period`` closes). tapedeck gets them from its signals layer
  (detector ``ema`` only, no cooldown, aggregation window 1, so every crossing is its own
  batch); backtesting.py from ``backtesting.lib.crossover`` over TA-Lib's EMA. The test
  first checks that both see the crossings on the same candles;
- a decision at the close of candle t fills at the open of t+1 (backtesting.py's default,
  ``trade_on_close=False``), no slippage, no spread;
- commission 10 bps of notional on both sides (``commission=0.001`` / ``fees_bps=10``);
- fixed-fraction size: backtesting.py's ``buy(size=F)`` buys
  ``floor(F x available margin / (open x (1 + commission)))`` units at the next open.
  tapedeck's broker buys ``equity x size / open``, so the brain asks for
  ``size = F / (1 + commission)`` of equity (``size_mode="equity"``). backtesting.py trades
  whole units only: ``FractionalBacktest`` with ``fractional_unit=1e-12`` makes its unit a
  trillionth of a BTC, so the rounding is far below the tolerance;
- the long-only variant: enter long on a cross up when flat, close on a cross down;
- positions still open at the end are left open in both (tapedeck ``close_at_end=False``,
  backtesting.py ``finalize_trades=False``): the final equity values them at the last
  close in both. (backtesting.py's finalize closes at the last candle's *open*.)
- RiskGuard needs a stop: the brain sets one 45 % away (never reached between two
  crossings on this data; a stop exit would show up as a trade mismatch).

Expected: the same trades (entry and exit times and prices, exactly), the same sizes and
final equity within 1e-6 relative.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting")
talib = pytest.importorskip("talib")

from backtesting import Strategy  # noqa: E402
from backtesting.lib import FractionalBacktest, crossover  # noqa: E402

from engine.backtest import BacktestConfig, BacktestEngine  # noqa: E402
from engine.brain.persona import TradingPersona  # noqa: E402
from engine.data import load  # noqa: E402
from engine.signals import default_signal_config  # noqa: E402
from engine.types import Action, Decision, TradePlan  # noqa: E402

FAST, SLOW = 9, 21
COMMISSION = 0.001
FRACTION = 0.95
CASH = 10_000.0
UNIT = 1e-12


class CrossBrain:
    """EMA crossings to plans: long-only (close on the opposite cross) or flipping."""

    name = "cross"
    model = ""

    def __init__(self, fraction: float, fee_rate: float, flip: bool) -> None:
        self.size = fraction / (1.0 + fee_rate)
        self.flip = flip

    def decide(self, batch, portfolio, persona, on_reasoning=None) -> Decision:
        held = {p.instrument: p for p in portfolio.positions}
        plans = []
        for sig in batch.signals:
            if sig.kind not in ("ema_cross_up", "ema_cross_down"):
                continue
            want = "long" if sig.kind == "ema_cross_up" else "short"
            pos = held.get(sig.instrument)
            if pos is not None and pos.side != want:
                plans.append(TradePlan(sig.instrument, Action.CLOSE, rationale=sig.kind))
            if (pos is None or pos.side != want) and (want == "long" or self.flip):
                price = batch.context[sig.instrument].price
                plans.append(
                    TradePlan(
                        sig.instrument,
                        Action.OPEN_LONG if want == "long" else Action.OPEN_SHORT,
                        size=self.size,
                        size_mode="equity",
                        stop_loss=price * (0.55 if want == "long" else 1.45),
                        rationale=sig.kind,
                    )
                )
        return Decision(batch.time, self.name, self.model, tuple(plans), f"{len(plans)} plan(s)")


PERSONA = TradingPersona(
    name="cross", max_position_fraction=1.0, max_open_positions=1, risk_per_trade=0.5
)


def _signal_config():
    base = default_signal_config().with_params("ema", fast=FAST, slow=SLOW, cooldown=0)
    return replace(
        base,
        detectors=("ema",),
        window=1,
        window_duration=None,
    )


def _tapedeck(series, flip: bool):
    config = BacktestConfig(
        initial_cash=CASH,
        fees_bps=COMMISSION * 10_000,
        slippage_bps=0.0,
        signal=_signal_config(),
        review_positions=False,
        close_at_end=False,
    )
    brain = CrossBrain(FRACTION, COMMISSION, flip)
    return BacktestEngine([series], PERSONA, brain, config).run()


def _backtesting_py(series, flip: bool):
    index = pd.DatetimeIndex(pd.to_datetime(series.open_time, unit="ns"))
    frame = pd.DataFrame(
        {
            "Open": series.open,
            "High": series.high,
            "Low": series.low,
            "Close": series.close,
            "Volume": series.volume,
        },
        index=index,
    )
    fast = talib.EMA(series.close, FAST)
    slow = talib.EMA(series.close, SLOW)

    class MaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(lambda: fast, name="fast", overlay=False)
            self.slow = self.I(lambda: slow, name="slow", overlay=False)

        def next(self) -> None:
            up, down = crossover(self.fast, self.slow), crossover(self.slow, self.fast)
            if up:
                if self.position.is_short:
                    self.position.close()
                if not self.position.is_long:
                    self.buy(size=FRACTION)
            elif down and self.position.is_long:
                self.position.close()
                if flip:
                    self.sell(size=FRACTION)
            elif down and flip and not self.position:
                self.sell(size=FRACTION)

    bt = FractionalBacktest(
        frame,
        MaCross,
        cash=CASH,
        commission=COMMISSION,
        fractional_unit=UNIT,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    gap = fast - slow
    before = np.roll(gap, 1)
    crosses = np.flatnonzero(((before < 0) & (gap > 0)) | ((before > 0) & (gap < 0)))
    return stats, crosses


@pytest.fixture(scope="module")
def btc(btc_1m_csv):
    return load(btc_1m_csv)


def _compare(series, flip: bool) -> None:
    ours = _tapedeck(series, flip)
    stats, crosses = _backtesting_py(series, flip)
    theirs = stats["_trades"]
    # both see the same crossings (ours: the signals layer, theirs: TA-Lib + crossover)
    decided = {int(np.searchsorted(series.close_time, d.time)) for d in ours.decisions}
    assert decided == set(crosses[crosses > 0].tolist())
    assert len(theirs) > 300
    assert len(ours.trades) == len(theirs)
    entry_times = theirs["EntryTime"].astype("int64").to_numpy()
    exit_times = theirs["ExitTime"].astype("int64").to_numpy()
    assert [t.entry_time for t in ours.trades] == entry_times.tolist()
    assert [t.exit_time for t in ours.trades] == exit_times.tolist()
    np.testing.assert_allclose(
        [t.entry_price for t in ours.trades], theirs["EntryPrice"], rtol=1e-12
    )
    np.testing.assert_allclose([t.exit_price for t in ours.trades], theirs["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(
        [t.qty if t.side == "long" else -t.qty for t in ours.trades], theirs["Size"], rtol=1e-9
    )
    np.testing.assert_allclose([t.pnl for t in ours.trades], theirs["PnL"], rtol=1e-6, atol=1e-6)
    final = stats["Equity Final [$]"]
    assert math.isclose(ours.final_equity, final, rel_tol=1e-6)
    # and the whole equity curve, candle by candle (theirs starts once the EMAs are warm)
    curve = stats["_equity_curve"]["Equity"].to_numpy()
    np.testing.assert_allclose(ours.equity_values, curve, rtol=1e-6)
    # the metrics defined as backtesting.py defines them agree too
    same = {
        "total_return_pct": "Return [%]",
        "max_drawdown_pct": "Max. Drawdown [%]",
        "n_trades": "# Trades",
        "win_rate_pct": "Win Rate [%]",
        "sqn": "SQN",
        "expectancy_pct": "Expectancy [%]",
        "best_trade_pct": "Best Trade [%]",
        "worst_trade_pct": "Worst Trade [%]",
    }
    for key, label in same.items():
        assert math.isclose(ours.metrics[key], stats[label], rel_tol=1e-6), (key, label)
    # backtesting.py (finalize_trades=False) counts the commissions of closed trades only;
    # our fees_paid also holds the entry fee of a position still open at the end.
    closed_fees = sum(t.fees for t in ours.trades)
    assert math.isclose(closed_fees, stats["Commissions [$]"], rel_tol=1e-6)
    assert math.isclose(ours.metrics["fees_paid"], sum(f.fee for f in ours.fills), rel_tol=1e-12)


def test_long_only_ema_crossover_matches_backtesting_py(btc) -> None:
    _compare(btc, flip=False)


def test_flipping_ema_crossover_matches_backtesting_py(btc) -> None:
    _compare(btc, flip=True)
